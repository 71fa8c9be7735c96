"""The PyTorch training folder from the GUI, and its checkpoints opened back in the window."""

import numpy as np
import pytest

from designer.training import session as states
from engine.export.torch_training import import_train_script
from tests.gui import make_window
from tests.test_export_gui import export_with_dialog, live_weights, train_xor

torch = pytest.importorskip("torch")


@pytest.fixture
def windows(qtbot, tmp_path):
    wins = [make_window(qtbot, tmp_path, "one"), make_window(qtbot, tmp_path, "two")]
    yield wins
    for win in wins:
        win.models.wait()
        win.training.shutdown()


def test_dialog_exports_a_training_folder_whose_checkpoint_opens_and_continues(
        qtbot, windows, tmp_path):
    window, window2 = windows
    train_xor(qtbot, window, 5)
    out = tmp_path / "xor_torch"
    dialog, result = export_with_dialog(qtbot, window, "torch", out)
    assert dialog.result() == dialog.DialogCode.Accepted
    assert {f.name for f in result.files} == {"model.py", "weights.safetensors", "train.py",
                                              "gradscape.json", "data.npz", "README.md"}
    assert "train.py" in result.message and "trained.gsmodel" in result.message
    assert window.errors == []

    # train.py starts from the exported (live) weights and trains 12 steps with PyTorch.
    train = import_train_script(out)
    run = train.Run(train.parse_args([]))
    exported = run.engine_state()
    for key, value in live_weights(qtbot, window.training.session).items():
        np.testing.assert_array_equal(exported[key], value)
    losses = [run.step() for _ in range(12)]
    checkpoint = tmp_path / "trained.gsmodel"
    run.save(str(checkpoint))

    with qtbot.waitSignal(window2.models.restored, timeout=5000):
        assert window2.open_path(checkpoint, ask=False)
    s2 = window2.training.session
    qtbot.waitUntil(lambda: s2.last_report is not None, timeout=3000)
    assert s2.last_report.step == 12 and s2.state == states.PAUSED
    assert "step 12" in window2.training.panel.counter_label.text()
    history = window2.training.run.history
    np.testing.assert_allclose(history.losses.view()[1], losses)
    restored = live_weights(qtbot, s2)
    for key, value in run.engine_state().items():
        np.testing.assert_array_equal(restored[key], value)

    # Step 13 in the app is train.py's step 13, with every edge's gradient to inspect.
    expected = run.step()
    s2.step()
    qtbot.waitUntil(lambda: s2.last_report.step == 13, timeout=3000)
    assert s2.last_report.loss == pytest.approx(expected, rel=1e-5)
    report = s2.last_report
    for edge, grad in zip(report.edges, report.grads, strict=True):
        assert (grad is None) == (edge.src == "y"), edge  # every wire but the target's
