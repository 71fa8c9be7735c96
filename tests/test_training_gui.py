"""Live training from the GUI: Play/Pause/Step, the loss plot, wire labels, divergence, close."""

import math
import multiprocessing
import time

import numpy as np
import pytest
from PySide6.QtGui import QTextDocument

from designer.controller import Controller
from designer.overlays.gradient_overlay import format_magnitude, format_number
from designer.resources import resource_path
from designer.training import session as states
from designer.training.setup import headline
from engine.core.stats import summarize
from tests.gui import make_window, on_worker, open_example

EXAMPLES = resource_path("examples")


@pytest.fixture
def window(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1300, 850))
    yield win
    win.training.shutdown()




def test_xor_trains_from_the_gui(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")
    window.training.panel.play_action.trigger()
    assert session.state == states.RUNNING
    qtbot.waitUntil(lambda: session.state == states.FINISHED, timeout=20000)
    history = window.training.run.history
    report = session.last_report
    assert report.step == 1500 and report.epoch == 150
    assert len(history.losses) == report.step  # every step loss is in the run
    x, _ = history.losses.view()
    assert x[0] == 1 and x[-1] == report.step
    assert history.smoothed.view()[1][-1] < 0.05
    assert history.epochs[-1][1].loss < 0.05
    assert history.epochs[-1][1].accuracy > 0.95
    assert "Finished" in window.training.state_label.text()
    counter = window.training.panel.counter_label  # not cut off by the loss beside it
    assert counter.width() >= counter.fontMetrics().horizontalAdvance(counter.text())
    # Every wire that carries a gradient is coloured and labelled.
    labelled = [item for item in window.scene.edges.values() if item.overlay is not None]
    assert len(labelled) >= 5
    window.training.panel.reset_action.trigger()
    qtbot.waitUntil(lambda: len(history.losses) == 0, timeout=3000)


def test_play_after_finish_counts_to_the_new_target(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json", epochs=3)
    window.training.panel.play_action.trigger()
    qtbot.waitUntil(lambda: session.state == states.FINISHED, timeout=10000)
    assert "epoch 3 / 3" in window.training.panel.counter_label.text()
    window.training.panel.play_action.trigger()  # Play again: three more epochs
    qtbot.waitUntil(lambda: session.state == states.FINISHED
                    and session.last_report.epoch == 6, timeout=10000)
    assert "epoch 6 / 6" in window.training.panel.counter_label.text()


def test_loss_summary_is_not_cut_off(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json", epochs=2, validation_split=0.2)
    window.training.panel.play_action.trigger()
    qtbot.waitUntil(lambda: session.state == states.FINISHED, timeout=10000)
    label = window.training.plot.summary
    qtbot.waitUntil(lambda: "val acc" in label.text(), timeout=3000)
    doc = QTextDocument()  # the label is rich text: measure what it shows, not its markup
    doc.setDefaultFont(label.font())
    doc.setDocumentMargin(0)
    doc.setHtml(label.text())
    margins = label.contentsMargins()

    def all_shown() -> bool:
        doc.setTextWidth(label.width() - margins.left() - margins.right())
        # Entries never break inside (it wraps between them), and every line is shown.
        return (doc.idealWidth() <= doc.textWidth()
                and doc.size().height() <= label.height() - margins.top() - margins.bottom() + 1)

    qtbot.waitUntil(all_shown, timeout=3000)  # (the layout gives a second line a turn later)


def test_pause_stops_after_the_current_step_and_step_is_one_step(qtbot, window):
    session = open_example(qtbot, window, "spirals_classifier.json", epochs=0)
    session.play()
    qtbot.waitUntil(lambda: session.last_report is not None and session.last_report.step > 50,
                    timeout=5000)
    with qtbot.waitSignal(session.report, timeout=2000,
                          check_params_cb=lambda r: not r.running) as blocker:
        t0 = time.perf_counter()
        session.pause()
        assert session.state == states.PAUSED  # the GUI shows it at once
    # The worker saw the request between two steps and said when (bench/gui_training.py
    # measures how soon: the pause latency row).
    assert blocker.args[0].stopped_at >= t0  # perf_counter is system-wide on Linux
    stopped_at = blocker.args[0].step
    qtbot.wait(150)
    assert on_worker(qtbot, session, lambda p, t: t.step_count) == stopped_at  # no more steps
    with qtbot.waitSignal(session.report, timeout=2000):
        window.training.panel.step_action.trigger()
    assert session.last_report.step == stopped_at + 1


def test_close_while_training_leaves_no_thread_or_process(qtbot, window):
    session = open_example(qtbot, window, "spirals_classifier.json", epochs=0)
    session.play()
    qtbot.waitUntil(lambda: session.last_report is not None, timeout=5000)
    process, reader = session.link.process, session.link.reader
    assert process.is_alive() and reader.isRunning()
    window.close()
    assert not process.is_alive() and not reader.isRunning()
    assert process not in multiprocessing.active_children()


def test_wire_label_is_the_engine_trace_value(qtbot, window):
    session = open_example(qtbot, window, "chain_rule.json")
    overlay = window.training.overlay
    with qtbot.waitSignal(session.report, timeout=3000):
        session.step()
    program = on_worker(qtbot, session, lambda p, t: p)  # a copy of the live program
    assert program.dtype == np.float64
    # Gradients (the default): every wire shows dL/dwire, exactly for one number.
    checked = 0
    for k, edge in enumerate(program.edges):
        grad = program.edge_grads[k]
        if grad is None:
            continue
        item = window.scene.edges[edge]
        want = (format_number(float(grad.reshape(-1)[0])) if grad.size == 1
                else format_magnitude(summarize(grad).mean_abs))
        assert item.value_label.text().endswith(want), (edge.key, item.value_label.text())
        if grad.size == 1:  # hovering shows the exact number, all digits
            assert f"∂L/∂wire: {float(grad.reshape(-1)[0])!r}" in item.toolTip(), edge.key
        checked += 1
    assert checked >= 8
    # Forward values: the scalar wire x -> f.a shows the sample fed in.
    window.training.legend.mode_combo.setCurrentIndex(1)
    assert overlay.mode == "value"
    k = next(k for k, e in enumerate(program.edges) if e.key == "x.out->f.a")
    value = float(program.edge_value(k).reshape(-1)[0])
    assert window.scene.edges[program.edges[k]].value_label.text() == format_number(value)


def test_divergence_shows_the_message_and_keeps_good_weights(qtbot, window):
    session = open_example(qtbot, window, "sine_regression.json", optimizer="sgd", lr=1e6)
    messages = []
    session.diverged.connect(lambda text, node: messages.append((text, node)))
    session.play()
    qtbot.waitUntil(lambda: session.state == states.DIVERGED, timeout=10000)
    text, node = messages[0]
    assert "diverged" in text and "last good weights" in text and "lower learning rate" in text
    assert node in {n.id for n in window.document.nodes()} and f"'{node}'" in text
    panel = window.training.panel
    assert panel.problem_label.isVisibleTo(panel) and "diverged" in panel.problem_label.text()
    theta, before, loss = on_worker(qtbot, session, lambda p, t: (
        p.theta.copy(), t.weights_before_step.copy(), t.evaluate(t.train_set)[0]))
    assert theta.size and np.isfinite(theta).all()
    # The kept weights are exactly those the last finite step started from.
    assert np.array_equal(theta, before)
    assert math.isfinite(loss)


def test_invalid_graph_says_why(qtbot, window):
    window.controller.new()
    window.controller.add_node("Input", (0.0, 0.0))
    session = window.training.session
    session.compile_now()
    problems = []
    session.problem.connect(problems.append)
    session.play()
    assert session.state == states.INVALID
    assert problems and "cannot be trained" in problems[-1]
    # The status bar names the first problem, not just the sentence introducing the list.
    status = window.statusBar().currentMessage()
    assert status.startswith("The graph cannot be trained yet: ") and not status.endswith(":")
    assert headline("Why:\n• one\n• two\n• three") == "Why: one (+2 more)"
    assert headline("Plain message.\nDetails") == "Plain message."


def test_settings_edits_go_through_undo(qtbot, window):
    open_example(qtbot, window, "xor_mlp.json")
    panel = window.training.panel
    panel.lr_spin.stepBy(1)  # 0.05 -> 0.1 on the 1-2-5 ladder
    assert window.document.training()["lr"] == pytest.approx(0.1)
    panel.batch_combo.setCurrentIndex(0)
    panel.batch_combo.activated.emit(0)
    assert window.document.training()["batch_size"] == 0
    window.controller.undo_stack.undo()
    window.controller.undo_stack.undo()
    assert window.document.training()["lr"] == pytest.approx(0.05)
    assert panel.lr_spin.value() == pytest.approx(0.05)
    assert panel.batch_combo.currentIndex() == 2


def test_run_on_worker_reads_the_live_program(qtbot, tmp_path):
    """Panels read the program through the worker thread; errors come back as text."""
    from designer.resources import resource_path
    from designer.training.session import TrainingSession

    controller = Controller(recovery_dir=tmp_path)
    controller.open(resource_path("examples", "chain_rule.json"))
    session = TrainingSession(controller)
    try:
        qtbot.waitUntil(lambda: session.num_parameters == 3, timeout=5000)
        results, errors = [], []
        session.run_on_worker(lambda program, trainer: program.num_parameters, results.append)
        session.run_on_worker(lambda program, trainer: 1 / 0, results.append, errors.append)
        qtbot.waitUntil(lambda: bool(results and errors), timeout=5000)
        assert results == [3]
        assert "ZeroDivisionError" in errors[0]
    finally:
        assert session.shutdown()


def test_training_process_leaves_a_core_to_the_window(qtbot, tmp_path):
    """The worker's BLAS pools use all cores but one: a product split over the core the
    window paints on waits for it (the Predictions grid: 32 ms instead of 1.2 ms)."""
    from designer.resources import resource_path
    from designer.training.session import TrainingSession
    from designer.training.worker_process import blas_threads

    assert [blas_threads(n) for n in (0, 1, 2, 8)] == [1, 1, 1, 7]
    controller = Controller(recovery_dir=tmp_path)
    controller.open(resource_path("examples", "chain_rule.json"))
    session = TrainingSession(controller)
    try:
        qtbot.waitUntil(lambda: session.num_parameters == 3, timeout=5000)
        got = []

        def pools(program, trainer):
            from threadpoolctl import threadpool_info

            from engine.core import chunked

            return [pool["num_threads"] for pool in threadpool_info()
                    if pool["user_api"] == "blas"] + [chunked._settings["ways"]]

        session.run_on_worker(pools, got.append)
        qtbot.waitUntil(lambda: bool(got), timeout=5000)
        assert got[0] and set(got[0]) == {blas_threads()}  # Adam's chunk threads too
    finally:
        assert session.shutdown()


def test_structural_edit_keeps_the_weights_of_unchanged_nodes(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")
    for _ in range(5):
        session.step()
    qtbot.waitUntil(lambda: session.last_report is not None and session.last_report.step == 5,
                    timeout=5000)

    def weights():
        got = []
        session.run_on_worker(lambda program, trainer: program.state_dict(), got.append)
        qtbot.waitUntil(lambda: bool(got), timeout=5000)
        return got[0]

    before = weights()
    window.controller.add_node("Constant", (0.0, 300.0))  # a structural edit: recompiles
    window.controller.set_param("out", "units", 1)  # unchanged value: no edit
    session.compile_now()
    # Commands reach the worker in order: the next job runs after the recompile.
    after = weights()
    assert set(after) == set(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    # A changed node starts afresh: other shapes, new weights.
    window.controller.set_param("h1", "units", 4)
    session.compile_now()
    qtbot.waitUntil(lambda: weights()["h1.weight"].shape == (4, 2), timeout=5000)
    np.testing.assert_array_equal(weights()["out.bias"], before["out.bias"])  # shape still fits


def test_pause_then_play_at_once_keeps_training(qtbot, window):
    """The last report of a paused run must not pause the run started right after it."""
    session = open_example(qtbot, window, "spirals_classifier.json", epochs=0)
    session.play()
    qtbot.waitUntil(lambda: session.last_report is not None and session.last_report.running,
                    timeout=5000)
    session.pause()
    session.play()  # within the same event-loop turn
    qtbot.wait(300)
    assert session.state == states.RUNNING
    step = session.last_report.step
    qtbot.waitUntil(lambda: session.last_report.step > step + 10, timeout=5000)
    assert session.running
    session.pause()
