"""Step-by-step backprop, the Weights dock and the Predictions dock."""

import numpy as np
import pytest

from designer.lab.backprop_stepper import BACKWARD_DONE, FORWARD_DONE, UPDATED
from designer.resources import resource_path
from designer.training import session as states
from engine.cli.main import trace_dict
from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.lab import stepper
from engine.training.trainer import TrainConfig, Trainer, load_data
from tests.gui import make_window, on_worker, open_example

EXAMPLES = resource_path("examples")


@pytest.fixture
def window(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1500, 900))
    qtbot.waitUntil(lambda: not win.lab_training._tabs_pending, timeout=2000)
    yield win
    win.training.shutdown()






# -- engine helper -------------------------------------------------------------------------
def _chain_trainer():
    spec = load_graph(EXAMPLES / "chain_rule.json")
    cfg = TrainConfig.from_block(spec.training)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed, input_grads=True)
    return program, Trainer(program, load_data(cfg), cfg)


def test_preview_matches_the_next_real_step_and_keeps_the_batch_order():
    program, trainer = _chain_trainer()
    twin_p, twin = _chain_trainer()
    for _ in range(12):  # crosses an epoch boundary (10 samples, batch 1)
        preview = stepper.preview_step(program, trainer)
        idx = stepper.next_batch(trainer)
        np.testing.assert_array_equal(preview.batch, idx)
        before = stepper.snapshot(program)
        report = trainer.step()
        twin.step()  # normal training, no previews
        assert report.loss == preview.loss
        np.testing.assert_array_equal(program.theta, twin_p.theta)
        update = stepper.describe_update(program, trainer, before, report.loss)
        for u in update.params:
            e = next(e for e in program.entries if e.key == u.key)
            old = before[1][e.offset:e.offset + e.size]
            assert u.delta.scalar == float(program.param_value(e).reshape(-1)[0] - old[0])
    assert update.plain_sgd


# -- step by step in the GUI ---------------------------------------------------------------
def test_step_forward_backward_update_on_chain_rule(qtbot, window):
    session = open_example(qtbot, window, "chain_rule.json")
    st = window.lab_training.stepper
    st.set_delay(0)
    st.forward_action.trigger()
    qtbot.waitUntil(lambda: st.phase == FORWARD_DONE, timeout=5000)
    assert window.lab_training.backprop_dock.isVisible()
    order = on_worker(qtbot, session, lambda p, t: p.topological_edges())
    assert st.visited == order
    st.backward_action.trigger()
    qtbot.waitUntil(lambda: st.phase == BACKWARD_DONE, timeout=5000)
    assert st.visited == list(reversed(order))

    # The numbers shown equal the engine's trace of the same batch (float64, exact).
    def trace(p, t):
        idx = stepper.next_batch(t)
        return trace_dict(p, t.x[idx], t.y[idx])

    expected = on_worker(qtbot, session, trace)
    preview = st.preview
    assert preview.loss == expected["loss"]
    by_key = {f"{e['from']}->{e['to']}": e for e in expected["edges"]}
    for stage in preview.forward:
        assert stage.data.scalar == np.ravel(by_key[stage.edge.key]["value"]["values"])[0]
    for stage in preview.backward:
        grad = by_key[stage.edge.key]["grad"]
        if grad is None:
            assert stage.data is None
        else:
            assert stage.data.scalar == np.ravel(grad["values"])[0]
    labels = {e: window.scene.edges[e].value_label.text() for e in window.scene.edges}
    h_to_loss = next(e for e in labels if e.key == "h.out->loss.prediction")
    assert labels[h_to_loss] == st.shown[preview.backward[0].index]

    before = on_worker(qtbot, session, lambda p, t: p.theta.copy())
    st.apply_action.trigger()
    qtbot.waitUntil(lambda: st.phase == UPDATED, timeout=5000)
    after = on_worker(qtbot, session, lambda p, t: (p.theta.copy(), list(p.entries)))
    theta, entries = after
    for u in st.update.params:
        e = next(e for e in entries if e.key == u.key)
        assert u.delta.scalar == float(theta[e.offset] - before[e.offset])
        assert u.new.scalar == float(theta[e.offset])
        assert u.old.scalar == float(before[e.offset])
        grad = next(g for g in preview.params if g.key == u.key).grad.scalar
        assert u.grad.scalar == grad
        assert u.new.scalar == pytest.approx(u.old.scalar - st.update.lr * grad, abs=1e-15)
    assert session.last_report.step == st.update.step
    table = window.lab_training.backprop.table
    assert table.rowCount() == 3 and table.item(0, 0).text() == "a.value"
    names = [a.text() for a in window.training.menu.actions()]
    assert {"Step &Forward", "Step &Backward", "&Apply Update"} <= set(names)
    rows = dict(window.shortcut_rows())
    assert rows["Step Forward"] == "F7" and rows["Apply Update"] == "F9"


# -- weights -------------------------------------------------------------------------------
def test_weights_heatmap_holds_the_selected_dense_weights(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")
    lab = window.lab_training
    lab.weights_dock.raise_()
    window.scene.select_nodes(["h1"])
    view = lab.weights
    with qtbot.waitSignal(session.report, timeout=5000):  # the step's report asks for a fetch
        session.step()
    qtbot.waitUntil(lambda: "weight" in view.images and view.node == "h1"
                    and not view.fetch.wanted and not view.fetch.in_flight, timeout=5000)
    weight, grad = on_worker(qtbot, session, lambda p, t: next(
        (p.param_value(e).copy(), p.param_grad(e).copy())
        for e in p.entries if e.key == "h1.weight"))
    np.testing.assert_array_equal(view.images["weight"][0].image, weight)
    np.testing.assert_array_equal(view.images["weight"][1].image, grad)
    assert view.images["weight"][0].image.shape == (8, 2)


# -- predictions ---------------------------------------------------------------------------
def test_decision_regions_and_confusion_matrix(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")
    view = window.lab_training.predictions
    window.lab_training.predictions_dock.raise_()
    for _ in range(5):
        session.step()
    qtbot.waitUntil(lambda: view.last is not None and view.last.step == 5, timeout=5000)
    res = view.last
    assert res.kind == "regions"
    assert res.probs.shape[:2] == (80, 80)
    assert res.confusion.sum() == len(res.train_x)  # xor has no validation set
    pts = [(0, 0), (17, 63), (79, 79), (40, 5)]
    xy = np.array([[res.grid_x[c], res.grid_y[r]] for r, c in pts])
    pred = on_worker(qtbot, session, lambda p, t: np.array(p.predict(xy), dtype=float))
    want = (pred[:, 0] > 0.5).astype(int)
    got = [int(res.probs[r, c].argmax()) for r, c in pts]
    assert got == list(want)


def test_new_graph_clears_the_predictions(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")
    view = window.lab_training.predictions
    window.lab_training.predictions_dock.raise_()
    session.step()
    qtbot.waitUntil(lambda: view.last is not None and view.last.step == 1, timeout=5000)
    window.controller.new()
    qtbot.waitUntil(lambda: not view.fetch.in_flight, timeout=5000)
    qtbot.wait(200)
    assert session.state == states.EMPTY
    assert view.last is None and not view.plot.isVisible()


def test_validation_set_is_used_again_after_a_graph_without_one(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")  # no validation set
    view = window.lab_training.predictions
    window.lab_training.predictions_dock.raise_()
    session.step()
    qtbot.waitUntil(lambda: view.last is not None and view.last.step == 1, timeout=5000)
    assert view.last.confusion_set == "training"
    session = open_example(qtbot, window, "spirals_classifier.json")
    session.step()
    qtbot.waitUntil(lambda: view.last is not None and view.last.step == 1
                    and view.last.confusion_set == "validation", timeout=5000)
    assert view.source.currentIndex() == 0


def test_switching_prediction_kinds_does_not_widen_the_dock(qtbot, window):
    dock = window.lab_training.predictions_dock
    view = window.lab_training.predictions
    dock.raise_()
    session = open_example(qtbot, window, "digits_cnn.json")  # sample images
    session.step()
    # the first CNN of a fresh checkout compiles the conv kernels (numba caches them on disk)
    qtbot.waitUntil(lambda: view.last is not None and view.last.kind == "images", timeout=60000)
    qtbot.wait(100)
    before = dock.width()
    session = open_example(qtbot, window, "residual_block.json")  # decision regions
    session.step()
    qtbot.waitUntil(lambda: view.last is not None and view.last.kind == "regions", timeout=5000)
    qtbot.wait(100)
    assert dock.width() <= max(before, dock.minimumSizeHint().width())


def test_digits_samples_and_confusion_matrix(qtbot, window):
    session = open_example(qtbot, window, "digits_cnn.json")
    view = window.lab_training.predictions
    window.lab_training.predictions_dock.raise_()
    session.step()
    qtbot.waitUntil(lambda: view.last is not None and view.last.step == 1, timeout=5000)
    res = view.last
    assert res.kind == "images" and res.confusion.shape == (10, 10)
    val = on_worker(qtbot, session, lambda p, t: len(t.val_set))
    assert res.confusion_set == "validation" and res.confusion.sum() == val
    assert res.images.shape[1:] == (8, 8) and len(res.images) == len(res.image_pred)


# -- naming what backward computes ---------------------------------------------------------
def test_backward_stages_say_upstream_times_local_and_small_dense_shows_delta_x():
    program, trainer = _chain_trainer()
    preview = stepper.preview_step(program, trainer)
    into_loss, *rest = preview.backward
    assert into_loss.why.startswith("local ") and "loss's own derivative" in into_loss.why
    named = [st for st in rest if st.why.startswith("upstream ")]
    assert named
    for st in named:
        u, loc, pr = (float(t.replace("−", "-")) for t in
                      st.why.removeprefix("upstream ").replace(" × local ", " ").split(" = ")[0]
                      .split() + [st.why.rsplit(" = ", 1)[1]])
        assert pr == pytest.approx(u * loc, rel=1e-5)
        assert pr == pytest.approx(st.data.scalar, rel=1e-5)

    spec = load_graph(EXAMPLES / "xor_mlp.json")
    cfg = TrainConfig.from_block({**spec.training, "batch_size": 1, "dtype": "float64"})
    p = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    pv = stepper.preview_step(p, Trainer(p, load_data(cfg), cfg))
    dense = {d.node: d for d in pv.dense}
    assert set(dense) == {"h1", "out"}
    for d in dense.values():
        delta = np.reshape(d.delta.values, d.delta.shape)
        x = np.reshape(d.x.values, d.x.shape)
        np.testing.assert_allclose(delta.T @ x, np.reshape(d.grad_w.values, d.grad_w.shape),
                                   rtol=1e-12)


def test_stepper_legend_table_and_rule(qtbot, window):
    open_example(qtbot, window, "xor_mlp.json", batch_size=1, optimizer="sgd", lr=0.5)
    st = window.lab_training.stepper
    overlay = window.training.overlay
    st.set_delay(0)
    st.forward_action.trigger()
    qtbot.waitUntil(lambda: st.phase == FORWARD_DONE, timeout=5000)
    assert "value" in overlay.title() and "∂L" not in overlay.title()
    st.backward_action.trigger()
    qtbot.waitUntil(lambda: st.phase == BACKWARD_DONE, timeout=5000)
    assert "∂L/∂wire" in overlay.title()
    panel = window.lab_training.backprop
    assert "∂L/∂W of out = δᵀ·x" in panel.dense.text()
    st.apply_action.trigger()
    qtbot.waitUntil(lambda: st.phase == UPDATED, timeout=5000)
    table = panel.table
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert "h1.weight[7, 1]" in names and "out.weight[0, 7]" in names  # 16 and 8 elements
    assert table.horizontalHeaderItem(3).text() == "Δθ"
    row = names.index("out.bias")  # one number: one row
    old, grad, delta, new = (float(table.item(row, c).text().replace("−", "-"))
                             for c in range(1, 5))
    assert delta == pytest.approx(-0.5 * grad, rel=1e-3, abs=1e-6)
    assert "θ ← θ − α·∂L/∂θ" in panel.rule.text() and "Why minus" in panel.rule.text()
    st.cancel()
    assert overlay.mode == window.training.legend.mode_combo.currentData()
