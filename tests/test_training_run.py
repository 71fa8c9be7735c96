"""One truth for a training run: counters, history, colours and titles never go stale."""

import math

import numpy as np
import pytest

from designer.overlays.gradient_overlay import DEFAULT_RANGE
from designer.training import session as states
from designer.training.run import RunHistory
from engine.core.registry import get as get_op
from tests.gui import EXAMPLES, make_window, on_worker, open_example


@pytest.fixture
def window(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    yield win
    win.training.shutdown()


def weights(qtbot, session) -> dict:
    return on_worker(qtbot, session, lambda program, trainer: program.state_dict())


def train_to_the_end(qtbot, session) -> None:
    session.play()
    qtbot.waitUntil(lambda: session.state == states.FINISHED, timeout=20000)


# -- the run's history, without Qt -------------------------------------------------------------
def test_smoothed_loss_stays_within_the_losses_it_averages():
    history = RunHistory()
    losses = np.array([0.9, 0.5, 0.3, 0.15, 0.078])
    history.add_losses(1, losses)
    smoothed = history.smoothed.view()[1]
    for k in range(len(losses)):
        assert losses[:k + 1].min() - 1e-12 <= smoothed[k] <= losses[:k + 1].max() + 1e-12
    assert smoothed[0] == losses[0]  # the first point is the first loss, not a blend with 0


def test_history_skips_steps_it_already_has():
    history = RunHistory()
    history.add_losses(1, np.array([1.0, 2.0, 3.0]))
    history.add_losses(3, np.array([3.0, 4.0]))  # overlaps step 3
    np.testing.assert_array_equal(history.losses.view()[0], [1, 2, 3, 4])


# -- from the window ---------------------------------------------------------------------------
def test_smoothed_loss_after_five_full_batch_steps_is_within_their_range(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json", batch_size=0, lr=0.5)
    for _ in range(5):
        with qtbot.waitSignal(session.report, timeout=5000):
            session.step()
    history = window.training.run.history
    steps, losses = history.losses.view()
    np.testing.assert_array_equal(steps, [1, 2, 3, 4, 5])
    smoothed = history.smoothed_loss()
    assert losses.min() <= smoothed <= losses.max(), (smoothed, losses)
    assert f"{smoothed:.3g}" in window.training.plot.summary.text()


def test_new_document_starts_a_fresh_run(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json", epochs=25)
    train_to_the_end(qtbot, session)
    run = window.training.run
    assert run.step == 250 and run.epoch == 25
    graph = (EXAMPLES / "xor_mlp.json").read_text()

    window.controller.new()  # File → New, then build the graph again by pasting it
    assert run.step == 0 and run.last_report is None and len(run.history.losses) == 0
    window.controller.paste_json(graph)
    block = window.document.training()
    block.update(epochs=3)
    window.controller.set_training(block)
    session.compile_now()
    qtbot.waitUntil(lambda: session.state == states.READY, timeout=5000)
    train_to_the_end(qtbot, session)
    assert run.epoch == 3 and run.step == 30
    np.testing.assert_array_equal(run.history.losses.view()[0], np.arange(1, 31))
    assert window.training.panel.counter_label.text() == "epoch 3 / 3 · step 30"
    assert on_worker(qtbot, session, lambda p, t: t.step_count) == 30


def test_predictions_count_the_run_steps_across_an_edit(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json", epochs=2)
    train_to_the_end(qtbot, session)
    block = window.document.training()
    block["lr"] = 0.02  # a new Trainer on the kept weights: the run keeps counting
    window.controller.set_training(block)
    session.compile_now()
    qtbot.waitUntil(lambda: session.state == states.PAUSED, timeout=5000)
    with qtbot.waitSignal(session.report, timeout=5000):
        session.step()
    view = window.lab_training.predictions
    view.request(now=True)
    qtbot.waitUntil(lambda: view.last is not None and view.last.step == 21, timeout=5000)


def test_a_diverged_run_leaves_no_scale_behind(qtbot, window):
    session = open_example(qtbot, window, "sine_regression.json", optimizer="sgd", lr=1e6)
    session.play()
    qtbot.waitUntil(lambda: session.state == states.DIVERGED, timeout=10000)
    overlay, plot = window.training.overlay, window.training.plot
    assert overlay.range != DEFAULT_RANGE  # the diverged gradients set a huge scale
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    qtbot.waitUntil(lambda: session.state == states.READY, timeout=5000)
    assert overlay.range == DEFAULT_RANGE
    assert len(window.training.run.history.losses) == 0
    xs, _ys = plot.anchor.getData()
    assert xs is None or len(xs) == 0
    with qtbot.waitSignal(session.report, timeout=5000):
        session.step()
    lo, hi = plot.loss_item.getViewBox().viewRange()[1]
    assert hi < 10, "the loss axis still spans the diverged run"
    assert overlay.range[1] <= 2


def test_undo_then_redo_gives_back_the_trained_weights(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json", epochs=30)
    block = window.document.training()
    block["dataset_params"] = {"noise": 0.05}  # the edit that undo will take back
    window.controller.set_training(block)
    session.compile_now()
    qtbot.waitUntil(lambda: session.state == states.READY, timeout=5000)
    train_to_the_end(qtbot, session)
    trained, run = weights(qtbot, session), window.training.run
    steps, epoch = run.step, run.epoch
    assert steps == 300

    window.controller.undo_stack.undo()  # Ctrl+Z: the dataset change goes
    session.compile_now()
    after_undo = weights(qtbot, session)  # unchanged nodes keep their trained weights
    for key in trained:
        np.testing.assert_array_equal(after_undo[key], trained[key], err_msg=key)

    window.controller.undo_stack.redo()  # Ctrl+Shift+Z: exactly the trained revision
    session.compile_now()
    after_redo = weights(qtbot, session)
    for key in trained:
        np.testing.assert_array_equal(after_redo[key], trained[key], err_msg=key)
    assert on_worker(qtbot, session, lambda p, t: t.step_count) == steps  # its own counters
    with qtbot.waitSignal(session.report, timeout=5000):
        session.step()
    assert run.step == steps + 1 and run.epoch == epoch


def test_parameter_titles_show_the_engines_current_values(qtbot, window):
    session = open_example(qtbot, window, "chain_rule.json")
    titles = {n: window.scene.nodes[n].title for n in ("a", "b", "c")}
    assert titles == {"a": "θ = 0.5", "b": "θ = -1", "c": "θ = 2"}
    for _ in range(12):
        session.step()
    qtbot.waitUntil(lambda: window.training.run.step == 12, timeout=5000)
    qtbot.waitUntil(lambda: window.training.run.last_report.step == 12, timeout=5000)
    state = weights(qtbot, session)
    parameter = get_op("Parameter")
    for node in ("a", "b", "c"):
        value = float(state[f"{node}.value"].reshape(-1)[0])
        assert math.isfinite(value)
        want = parameter.summary({"value": value})
        assert window.scene.nodes[node].title == want
        assert window.scene.nodes[node].title != titles[node]
    window.training.panel.reset_action.trigger()  # a fresh run: the initial values again
    qtbot.waitUntil(lambda: window.scene.nodes["a"].title == "θ = 0.5", timeout=5000)


def test_play_on_a_finished_run_says_it_continues(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json", epochs=2)
    train_to_the_end(qtbot, session)
    notices = []
    session.notice.connect(notices.append)
    session.play()
    qtbot.waitUntil(lambda: bool(notices), timeout=5000)
    assert "up to epoch 4" in notices[0] and "Reset Weights" in notices[0]


def test_the_smoothed_curve_is_drawn_where_its_losses_are_not_behind_them():
    """A falling loss: each smoothed point sits at the weighted mean step of the losses it
    averages, so on a straight line it lies exactly on the line (a trailing average drawn
    at the newest step would sit above a falling curve)."""
    history = RunHistory()
    steps = np.arange(1, 201)
    losses = 5.0 - 0.02 * steps
    history.add_losses(1, losses[:70])
    history.add_losses(71, losses[70:])  # in two reports, as the worker sends them
    x, y = history.smoothed.view()
    assert np.allclose(y, 5.0 - 0.02 * x, atol=1e-9)
    assert x[0] == 1.0 and np.all(np.diff(x) > 0)
    assert 18.0 < steps[-1] - x[-1] < 20.0  # about the window's mean age behind the last step
