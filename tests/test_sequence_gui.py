"""Learn → Attention and Learn → Generate Text on the tiny GPT example."""

from __future__ import annotations

import numpy as np

from designer.lab.sequence_tools import attention_snapshot, snapshot_for_sampling
from tests.gui import make_window, on_worker, open_example


def _train_steps(qtbot, session, n):
    for _ in range(n):
        before = on_worker(qtbot, session, _step_count)
        session.step()
        qtbot.waitUntil(lambda b=before: on_worker(qtbot, session, _step_count) > b,
                        timeout=10000)


def _attn1_head3_sample1(program, trainer):
    return program.kernels[program.index["block1/attn"]].attn[1, 3].copy()


def _step_count(program, trainer):
    return 0 if trainer is None else trainer.step_count


def test_attention_view_shows_a_head_with_characters(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    session = open_example(qtbot, win, "tiny_gpt.json", batch_size=4)
    _train_steps(qtbot, session, 2)
    dialog = win.sequence_lab.show_attention()
    view = dialog.view
    assert view.node_box.count() == 2 and view.node_box.currentText() == "block1/attn"
    qtbot.waitUntil(lambda: view.result is not None, timeout=10000)
    r = view.result
    assert r["attn"].shape == (32, 32) and r["grad"].shape == (32, 32)
    np.testing.assert_allclose(r["attn"].sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(np.triu(r["attn"], 1) == 0)  # causal: nothing from later characters
    assert len(r["chars"]) == 32 and r["step"] == 2
    # the same numbers as the engine's kernel, for the chosen head and sample
    view.head_box.setValue(3)
    view.sample_box.setValue(1)
    qtbot.waitUntil(lambda: view.result["head"] == 3 and view.result["sample"] == 1,
                    timeout=10000)
    direct = on_worker(qtbot, session, _attn1_head3_sample1)
    np.testing.assert_array_equal(view.result["attn"], direct)
    ticks = view.plots[0].getAxis("bottom")._tickLevels[0]
    assert [label for _pos, label in ticks] == [{" ": "␣", "\n": "↵"}.get(c, c)
                                                for c in view.result["chars"]]
    dialog.close()


def test_generate_samples_from_the_live_weights(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, "g")
    session = open_example(qtbot, win, "tiny_gpt.json", batch_size=4)
    _train_steps(qtbot, session, 1)
    dialog = win.sequence_lab.show_generate()
    view = dialog.view
    view.length.setValue(25)
    view.prompt.setText("The ")
    view.start()
    qtbot.waitUntil(lambda: view.runs == 1, timeout=15000)
    assert len(view.text) == 25
    assert view.output.toPlainText() == "The " + view.text
    assert "step 1" in view.status.text()
    vocab = set(on_worker(qtbot, session, snapshot_for_sampling)["vocab"])
    assert set(view.text) <= vocab
    first = view.text
    view.start()  # same seed, same weights: the same text
    qtbot.waitUntil(lambda: view.runs == 2, timeout=15000)
    assert view.text == first
    view.prompt.setText("€")  # not in the training text
    view.start()
    qtbot.waitUntil(lambda: "not in the model's vocabulary" in view.status.text(), timeout=10000)
    dialog.close()


def test_worker_functions_answer_without_a_program():
    assert snapshot_for_sampling(None, None) is None
    assert attention_snapshot("a", 0, 0, None, None) is None
