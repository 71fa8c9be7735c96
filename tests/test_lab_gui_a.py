"""Learning lab A in the GUI: chain-rule panel, gradient check, neuron view, optimizer state."""

import numpy as np
import pytest

from designer.lab.formula_html import num
from designer.lab.gradcheck_dialog import run_check
from designer.lab.neuron_view import diverging
from designer.lab.replay import current_batch_copy
from designer.resources import resource_path
from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.lab.chain_rule import explain_edge, explain_node, explain_parameter_path
from engine.lab.optimizer_state import parameter_state
from engine.training.trainer import TrainConfig, Trainer, load_data
from tests.gui import open_example, window_fixture

EXAMPLES = resource_path("examples")
A, B, C = 0.5, -1.0, 2.0  # the chain example's initial parameters


@pytest.fixture
def window(qtbot, tmp_path):
    yield from window_fixture(qtbot, tmp_path, size=(1500, 900))




def step(qtbot, session, n=1):
    for _ in range(n):
        before = session.last_report.step if session.last_report else 0
        session.step()
        qtbot.waitUntil(lambda: session.last_report is not None
                        and session.last_report.step > before, timeout=5000)  # noqa: B023


def on_worker(qtbot, session, fn):
    out = []
    session.run_on_worker(fn, out.append)
    qtbot.waitUntil(lambda: bool(out), timeout=5000)
    return out[0]


def close(a, b):
    return a == b or abs(a - b) <= 1e-15 * max(abs(a), abs(b))


def test_chain_rule_panel_matches_engine_and_hand_calculation(qtbot, window):
    session = open_example(qtbot, window, "chain_rule.json")
    step(qtbot, session)
    lab = window.lab_a
    lab.show_chain_rule()
    panel = lab.chain_panel
    for item in window.scene.edges.values():
        item.setSelected(item.edge.src == "f" and item.edge.dst == "sq")
    qtbot.waitUntil(lambda: panel.product_text != "", timeout=5000)

    # the batch of the first step (batch size 1), by hand in float64
    x, t = float(panel.answer.x[0, 0]), float(panel.answer.y[0, 0])
    f = A * x
    g = f * f + B * f
    yhat = C * g
    dl_dyhat = 2.0 * (yhat - t)
    dl_dg = dl_dyhat * C
    via_sq, via_bu = dl_dg * 2.0 * f, dl_dg * B
    dl_df = via_bu + via_sq  # backward adds the later consumer (bu) first
    dl_da = dl_df * x

    ex = panel.explanation
    assert close(ex.upstream.scalar, dl_dg) and close(ex.local.scalar, 2.0 * f)
    assert close(ex.product.scalar, via_sq)
    assert panel.product_text == f"{num(dl_dg)} · {num(2.0 * f)} = {num(via_sq)}"

    # the engine on an independent program with the same batch gives the same strings
    p = compile_graph(load_graph(EXAMPLES / "chain_rule.json"), dtype="float64")
    p.forward(np.array([[x]]), np.array([[t]]))
    p.backward()
    k = next(i for i, e in enumerate(p.edges) if e.key == "f.out->sq.in")
    ref = explain_edge(p, k)
    assert panel.product_text == (f"{num(ref.upstream.scalar)} · {num(ref.local.scalar)} = "
                                  f"{num(ref.product.scalar)}")

    window.scene.select_nodes(["f"])
    qtbot.waitUntil(lambda: panel.sum_text != "", timeout=5000)
    node = explain_node(p, "f")
    assert [s.grad.scalar for s in panel.explanation.shares] == [
        s.grad.scalar for s in node.shares]
    assert close(node.total.scalar, dl_df)
    # first sample of the table, x = 0.5, y = 1: shares +5.5 (b·f wire) and −2.75 (square)
    assert (x, t) == (0.5, 1.0) and (via_bu, via_sq, dl_df) == (5.5, -2.75, 2.75)
    assert panel.sum_text == f"{num(via_bu)} − {num(via_sq)[1:]} = {num(dl_df)}"
    assert panel.sum_text == "5.5 − 2.75 = 2.75"

    window.scene.select_nodes(["a"])
    qtbot.waitUntil(lambda: panel.path_text != "", timeout=5000)
    path = explain_parameter_path(p, "a")
    shown = panel.path_explanation
    assert close(shown.total, dl_da) and close(path.total, dl_da)
    assert [f.value for term in shown.paths for f in term.factors] == [
        f.value for term in path.paths for f in term.factors]
    assert [term.product for term in path.paths] == [-1.375, 2.75]  # a·x's two paths
    assert panel.path_text.splitlines()[-1] == "−1.375 + 2.75 = 1.375"
    html = panel.view.toHtml()
    assert "∂" in html and num(dl_da) in html


def test_gradcheck_table_equals_the_report(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")
    step(qtbot, session)
    dialog = window.lab_a.run_gradcheck()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=15000)
    payload = on_worker(qtbot, session, current_batch_copy)
    report = run_check(payload)[0]
    assert dialog.rows() == [(r.key, r.passed) for r in report.rows]
    assert [r.key for r in report.rows] == ["h1.weight", "h1.bias", "out.weight", "out.bias"]
    assert report.passed and "below 1e-05" in dialog.verdict.text()
    for r, mine in zip(report.rows, dialog.report.rows):
        assert mine.rel == pytest.approx(r.rel, rel=1e-6, abs=1e-12)
    dialog.close()


def test_neuron_view_lines_map_the_weight_matrix(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")
    step(qtbot, session, 2)
    window.scene.select_nodes(["h1"])
    assert window.lab_a.neurons.toggle_action.isEnabled()
    window.lab_a.toggle_neurons()
    card = window.lab_a.neurons.cards["h1"]
    qtbot.waitUntil(lambda: card.weights is not None, timeout=5000)
    weights = on_worker(qtbot, session, lambda p, _t: p.param_value(
        next(e for e in p.entries if e.key == "h1.weight")).copy())
    assert card.weights.shape == (8, 2)
    np.testing.assert_array_equal(card.weights, weights)
    lines = [line for row in card.lines for line in row]
    assert len(lines) == 8 * 2
    scale = np.abs(weights).max()
    for i in range(8):
        for j in range(2):
            assert card.lines[i][j].pen().color() == diverging(weights[i, j], scale)
    card.toggle_mode()  # gradients now
    grads = card.data["weight_grad"]
    assert card.lines[0][0].pen().color() == diverging(grads[0, 0], np.abs(grads).max())
    window.lab_a.toggle_neurons()  # collapse
    assert "h1" not in window.lab_a.neurons.cards


def test_optimizer_state_series_equal_adam_recomputed(qtbot, window):
    session = open_example(qtbot, window, "chain_rule.json", optimizer="adam", lr=0.1)
    lab = window.lab_a
    lab.show_optimizer_state()
    panel = lab.opt_panel
    qtbot.waitUntil(lambda: panel.tensor_box.count() == 3, timeout=5000)
    panel.set_key("c.value")
    qtbot.waitUntil(lambda: not panel._pending, timeout=5000)
    for n in range(1, 5):
        step(qtbot, session)
        qtbot.waitUntil(lambda n=n: len(panel.samples) == n, timeout=5000)
    assert panel.fields() == ["grad", "m", "v", "delta"]

    spec = load_graph(EXAMPLES / "chain_rule.json")
    spec.training.update(optimizer="adam", lr=0.1)
    cfg = TrainConfig.from_block(spec.training)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed, input_grads=True)
    trainer = Trainer(program, load_data(cfg), cfg)
    m = v = 0.0
    want = {"m": [], "v": [], "grad": [], "delta": []}
    for _ in range(4):
        trainer.step()
        st = parameter_state(trainer, program, "c.value")
        g = float(st["grad"])
        m = 0.9 * m + 0.1 * g  # recomputed by hand from the gradients
        v = 0.999 * v + 0.001 * g * g
        assert float(st["state"]["m"]) == pytest.approx(m, rel=1e-12)
        want["m"].append(m)
        want["v"].append(v)
        want["grad"].append(g)
        want["delta"].append(float(st["delta"]))
    for field, values in want.items():
        steps, shown = panel.series(field)
        assert list(steps) == [1, 2, 3, 4]
        np.testing.assert_allclose(shown, values, rtol=1e-12)
