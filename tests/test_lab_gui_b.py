"""Learning lab windows: loss landscape, optimizer race, learning-rate sweep (offscreen)."""

import math
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMenu

from designer.lab.background import running_jobs
from designer.lab.lr_sweep_view import region_bands
from designer.resources import resource_path
from engine.lab.lr_sweep import lr_sweep
from engine.training.trainer import TrainConfig, load_data
from tests.gui import make_window, on_worker, open_example

EXAMPLES = resource_path("examples")


@pytest.fixture
def window(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1300, 850))
    yield win
    win.optimization_lab.shutdown()
    win.training.shutdown()






def eval_loss(program, trainer):
    was = program._training
    program.set_training(False)
    try:
        return float(program.forward(trainer.x, trainer.y))
    finally:
        program.set_training(was)


def compute(qtbot, view, timeout=10000):
    view.compute()
    assert view.busy
    qtbot.waitUntil(lambda: not view.busy, timeout=timeout)


def test_learn_menu_has_the_three_tools(window):
    menu = window.menuBar().findChild(QMenu, "learn_menu")
    assert menu is not None
    texts = [a.text() for a in menu.actions()]
    for want in ("Loss &Landscape…", "Optimizer &Race…", "Learning-Rate &Sweep…"):
        assert want in texts
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.index("&Learn") == titles.index("&Help") - 1


def test_landscape_centre_is_the_current_loss(qtbot, window):
    session = open_example(qtbot, window, "chain_rule.json")
    for _ in range(3):  # move away from the initial weights first
        session.step()
    qtbot.waitUntil(lambda: session.last_report is not None and session.last_report.step == 3,
                    timeout=3000)
    view = window.optimization_lab.show_landscape().view
    qtbot.waitUntil(lambda: view.param_x.count() >= 3, timeout=3000)
    view.set_mode("params")
    view.select_parameters("a", "c")
    view.resolution.setValue(5)
    compute(qtbot, view)
    expected = on_worker(qtbot, session, eval_loss)
    theta = on_worker(qtbot, session, lambda p, t: p.theta.copy())
    z = view.plot.losses
    assert z.shape == (5, 5) and np.isfinite(z).all()
    assert z[2, 2] == pytest.approx(expected, rel=1e-9)
    assert view.plane.center_loss == pytest.approx(expected, rel=1e-9)
    # Parameter axes show the real values: the centre is at (a, c) of the live program.
    a, c = view.plane.origin
    assert a == pytest.approx(theta[0]) and c == pytest.approx(theta[-1])
    # Random directions through the same weights: same centre value.
    view.set_mode("random")
    view.resolution.setValue(7)
    compute(qtbot, view)
    assert view.plot.losses[3, 3] == pytest.approx(expected, rel=1e-9)


def landscape_of_a_and_c(qtbot, window):
    """The chain example's loss mapped over its parameters a and c (5 × 5)."""
    session = open_example(qtbot, window, "chain_rule.json")
    view = window.optimization_lab.show_landscape().view
    qtbot.waitUntil(lambda: view.param_x.count() >= 3, timeout=3000)
    view.set_mode("params")
    view.select_parameters("a", "c")
    view.resolution.setValue(5)
    compute(qtbot, view)
    return session, view


def test_landscape_path_follows_training(qtbot, window):
    session, view = landscape_of_a_and_c(qtbot, window)
    session.play()
    qtbot.waitUntil(lambda: len(view.path_thetas) >= 2, timeout=5000)
    session.pause()
    assert "training path" in view.plot.paths
    xs, ys = view.path_xy
    assert xs[0] == pytest.approx(view.plane.origin[0])  # starts at the centre


def test_gui_stays_responsive_while_a_landscape_computes(qtbot, window):
    open_example(qtbot, window, "spirals_classifier.json")
    view = window.optimization_lab.show_landscape().view
    view.resolution.setValue(201)  # ~40,000 forward passes: a few seconds
    ticks = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    heartbeat.start()
    view.compute()
    qtbot.waitUntil(lambda: view.plane is not None, timeout=5000)
    t0 = time.perf_counter()
    qtbot.wait(500)
    assert view.busy, "the landscape finished too soon to measure"
    view.cancel()  # cancelling works mid-way, the rows so far stay
    heartbeat.stop()
    elapsed = time.perf_counter() - t0
    during = [t for t in ticks if t >= t0]
    gaps = np.diff(during) if len(during) > 1 else np.array([elapsed])
    assert len(during) >= 15
    assert gaps.max() < 0.25, f"the GUI thread was blocked for {gaps.max() * 1000:.0f} ms"
    done_rows = int(np.isfinite(view.plot.losses).all(axis=1).sum())
    assert 1 <= done_rows < 201
    qtbot.waitUntil(lambda: not (view.job or running_jobs()), timeout=3000)


def test_race_starts_from_identical_weights_and_shows_every_curve(qtbot, window):
    open_example(qtbot, window, "xor_mlp.json")
    view = window.optimization_lab.show_race().view
    view.table.setRowCount(0)
    view.add_contender("GD", "sgd", 0.1, 0)
    view.add_contender("Momentum", "momentum", 0.05, 16)
    view.add_contender("Adam", "adam", 0.01, 16)
    view.epochs.setValue(3)
    view.start()
    qtbot.waitUntil(lambda: view.race is not None, timeout=15000)
    assert len(view.initial_thetas) == 3
    for theta in view.initial_thetas[1:]:
        np.testing.assert_array_equal(theta, view.initial_thetas[0])
    assert [c.label for c in view.race.contenders] == ["GD", "Momentum", "Adam"]
    assert len(view.curves) == 3
    for k, curve in enumerate(view.curves):
        x, y = curve.getData()
        assert len(x) > 0, f"curve {k} is empty"
        assert x[-1] == pytest.approx(3.0)  # three epochs of data seen
    legend = [label.text for _sample, label in view.legend.items]
    assert legend == ["GD", "Momentum", "Adam"]
    # Steps: GD takes one per epoch, batch 16 takes ceil(n / 16).
    steps = [c.steps for c in view.race.contenders]
    assert steps[0] == 3 and steps[1] == steps[2] > 3
    # Paths on a landscape through the shared start weights.
    view.paths_box.setChecked(True)
    qtbot.waitUntil(lambda: view.landscape.plane is not None and view.landscape_job is None,
                    timeout=15000)
    np.testing.assert_array_equal(view.landscape.plane.center, view.initial_thetas[0])
    assert set(view.landscape.paths) == {"GD", "Momentum", "Adam"}


def test_lr_sweep_regions_come_from_the_engine_and_apply_is_undoable(qtbot, window):
    open_example(qtbot, window, "xor_mlp.json")
    view = window.optimization_lab.show_sweep().view
    view.lr_from.setValue(0.001)
    view.lr_to.setValue(10.0)
    view.count.setValue(5)
    view.steps.setValue(30)
    view.run()
    qtbot.waitUntil(lambda: view.result is not None and view.job is None, timeout=15000)
    config = TrainConfig.from_block(window.document.training())
    engine_result = lr_sweep(window.document.spec(), load_data(config), config,
                             view.learning_rates(), 30)
    assert view.result.regions == engine_result.regions
    assert view.result.best_lr == engine_result.best_lr
    assert len(view.bands) == len(region_bands(view.result))
    shaded = {band.toolTip() for band in view.bands}
    assert shaded == set(engine_result.regions)
    # The best rate is pre-selected; a click on another point picks that one.
    assert view.chosen_lr == pytest.approx(engine_result.best_lr, rel=1e-2)
    k = next(i for i, r in enumerate(engine_result.regions)
             if math.isfinite(engine_result.final_losses[i]) and i != 0)
    points = view.curve.scatter.points()
    view._on_clicked(view.curve, [p for p in points
                                  if abs(p.pos().x() - math.log10(view.result.lrs[k])) < 1e-6])
    assert view.chosen_lr == pytest.approx(view.result.lrs[k], rel=1e-2)
    old_lr = window.document.training()["lr"]
    count = window.controller.undo_stack.count()
    view.apply_button.click()
    assert window.document.training()["lr"] == view.chosen_lr != old_lr
    assert window.controller.undo_stack.count() == count + 1
    window.controller.undo_stack.undo()
    assert window.document.training()["lr"] == old_lr


def test_region_bands_merge_neighbours():
    class R:
        lrs = (0.001, 0.01, 0.1, 1.0)
        regions = ("too small (slow)", "good", "good", "too large (diverging)")

    bands = region_bands(R())
    assert [b[2] for b in bands] == ["too small (slow)", "good", "too large (diverging)"]
    assert bands[0][1] == pytest.approx(10 ** -2.5)
    assert bands[1][1] == pytest.approx(10 ** -0.5)


def test_landscape_dots_each_step_and_draws_the_descent_arrow(qtbot, window):
    session, view = landscape_of_a_and_c(qtbot, window)
    qtbot.waitUntil(lambda: view.arrow is not None, timeout=5000)
    for k in range(1, 4):
        session.step()
        qtbot.waitUntil(lambda k=k: len(view.path_thetas) == k + 1, timeout=5000)
    line, _dot = view.plot.paths["training path"]
    assert len(line.scatter.data) == 4  # a dot at the start and one per step
    qtbot.waitUntil(lambda: view.arrow is not None and np.array_equal(
        view.arrow[0], view.path_thetas[-1]), timeout=5000)
    theta, end = view.arrow

    def full_gradient(p, t):
        p.set_training(False)
        p.forward(t.x, t.y)
        p.backward()
        return p.grad.copy(), t.optimizer.lr

    grad, lr = on_worker(qtbot, session, full_gradient)
    np.testing.assert_allclose(end, theta - lr * grad, rtol=1e-12, atol=1e-15)
    assert view.plot.arrow_line.isVisible()
    xs, ys = view.plot.arrow_line.getData()
    a, b = view.plane.project(np.stack([theta, end]))
    np.testing.assert_allclose(xs, a) and np.testing.assert_allclose(ys, b)


def test_a_diverging_contender_does_not_stretch_the_axis(qtbot, window):
    open_example(qtbot, window, "xor_mlp.json")
    view = window.optimization_lab.show_race().view
    view.smooth_box.setChecked(False)
    view._reset_curves(["calm", "wild"])
    view.losses = [[np.array([0.25, 0.2, 0.1])], [np.array([0.3, 5.0, 1e9, np.inf])]]
    view.samples = [[np.array([1.0, 2.0, 3.0])], [np.array([1.0, 2.0, 3.0, 4.0])]]
    view.n_samples = 1
    assert view.y_cap() == pytest.approx(3.0)  # 10 × the highest starting loss
    _x, wild = view.series(1)
    assert wild.tolist() == [0.3]  # 5, 1e9 and ∞ are off the scale, not on the axis
    assert view.series(0)[1].tolist() == [0.25, 0.2, 0.1]
    spin = view.epochs
    assert spin.property("number_guard") and spin.focusPolicy() == Qt.FocusPolicy.StrongFocus
