"""Learning lab: chain-rule explanations match a pen-and-paper calculation exactly."""

from pathlib import Path

import numpy as np
import pytest

from engine.core import registry
from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.lab.chain_rule import (
    ExplainError,
    explain_edge,
    explain_node,
    explain_parameter_path,
    local_jacobian,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"
X, T = 1.5, 0.3
A, B, C = 0.5, -1.0, 2.0  # the example's initial parameter values


def close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-15 * max(abs(a), abs(b))


@pytest.fixture
def chain():
    p = compile_graph(load_graph(EXAMPLES / "chain_rule.json"), dtype="float64")
    p.forward(np.array([[X]]), np.array([[T]]))
    p.backward()
    return p


def hand():
    """The whole calculation by hand: f = a·x, u = f, g = u² + b·u, ŷ = c·g, L = (ŷ − t)²."""
    f = A * X
    u = f
    g = u * u + B * u
    yhat = C * g
    dL_dyhat = 2.0 * (yhat - T)
    dyhat_dg = C
    dg_du = 2.0 * u + B
    du_da = X
    dL_dg = dL_dyhat * dyhat_dg
    return dict(f=f, g=g, yhat=yhat, dL_dyhat=dL_dyhat, dL_dg=dL_dg, dg_du=dg_du,
                dL_dsq=dL_dg, dL_dbu=dL_dg,
                dL_du_via_sq=dL_dg * (2.0 * u), dL_du_via_bu=dL_dg * B,
                dL_du=dL_dg * dg_du, dL_da=dL_dg * dg_du * du_da,
                dL_db=dL_dg * u, dL_dc=dL_dyhat * g)


def edge(p, key):
    return next(k for k, e in enumerate(p.edges) if e.key == key)


def test_scalar_edges_equal_the_hand_calculation(chain):
    h = hand()
    cases = {  # edge: (upstream, local, product)
        "h.out->loss.prediction": (1.0, h["dL_dyhat"], h["dL_dyhat"]),
        "g.out->h.b": (h["dL_dyhat"], C, h["dL_dg"]),
        "c.out->h.a": (h["dL_dyhat"], h["g"], h["dL_dc"]),
        "sq.out->g.a": (h["dL_dg"], 1.0, h["dL_dsq"]),
        "f.out->sq.in": (h["dL_dsq"], 2.0 * h["f"], h["dL_du_via_sq"]),
        "f.out->bu.b": (h["dL_dbu"], B, h["dL_du_via_bu"]),
        "b.out->bu.a": (h["dL_dbu"], h["f"], h["dL_db"]),
        "a.out->f.b": (h["dL_du"], X, h["dL_da"]),
    }
    for key, (up, local, product) in cases.items():
        ex = explain_edge(chain, edge(chain, key))
        assert ex.local_kind == "scalar", key
        assert close(ex.upstream.scalar, up), (key, ex.upstream.scalar, up)
        assert close(ex.local.scalar, local), (key, ex.local.scalar, local)
        assert close(ex.product.scalar, product), (key, ex.product.scalar, product)
        assert close(ex.edge_grad.scalar, product), key
        assert ex.error <= 1e-15 * abs(product)


def test_formula_reads_like_the_pen_and_paper_version(chain):
    ex = explain_edge(chain, edge(chain, "f.out->sq.in"))
    assert ex.rule == "Square: ∂y/∂x = 2x"
    assert ex.formula == "∂L/∂f (via sq) = ∂L/∂sq · ∂sq/∂f = −2.7 · (2f) = −2.7 · 1.5 = −4.05"
    loss_edge = explain_edge(chain, edge(chain, "h.out->loss.prediction"))
    assert loss_edge.formula == "∂L/∂h = 2(h − y)/N = −1.35"


def test_fan_out_sum_equals_the_node_gradient(chain):
    h = hand()
    ex = explain_node(chain, "f")
    assert len(ex.shares) == 2
    assert {s.dst for s in ex.shares} == {"sq", "bu"}
    assert ex.total.scalar == chain.node_grad("f").item()
    assert close(ex.total.scalar, h["dL_du"])
    assert ex.error == 0.0
    assert ex.formula == "∂L/∂f = 2.7 − 4.05 = −1.35"


def test_parameter_path_single_and_multiple(chain):
    h = hand()
    c = explain_parameter_path(chain, "c")
    assert len(c.paths) == 1 and [f.label for f in c.paths[0].factors] == ["∂L/∂h", "∂h/∂c"]
    assert [f.value for f in c.paths[0].factors] == [h["dL_dyhat"], h["g"]]
    assert close(c.total, h["dL_dc"]) and c.total == c.param_grad

    a = explain_parameter_path(chain, "a")
    assert len(a.paths) == 2  # through the square and through b·u
    via_sq, via_bu = sorted(a.paths, key=lambda t: t.nodes[2] != "sq")
    assert [f.label for f in via_sq.factors] == ["∂L/∂h", "∂h/∂g", "∂g/∂sq", "∂sq/∂f",
                                                  "∂f/∂a"]
    assert [f.value for f in via_sq.factors] == [h["dL_dyhat"], C, 1.0, 2.0 * h["f"], X]
    assert [f.value for f in via_bu.factors] == [h["dL_dyhat"], C, 1.0, B, X]
    assert close(via_sq.product, h["dL_dyhat"] * C * 2.0 * h["f"] * X)
    assert close(via_bu.product, h["dL_dyhat"] * C * B * X)
    assert abs(a.total - h["dL_da"]) <= 4e-16 * abs(h["dL_da"])
    assert abs(a.total - a.param_grad) <= 4e-16 * abs(a.param_grad)
    assert "Σ over 2 paths" in a.formula


def test_explaining_changes_nothing(chain):
    grad = chain.grad.copy()
    edge_grads = [None if g is None else np.copy(g) for g in chain.edge_grads]
    for k in range(len(chain.edges)):
        try:
            explain_edge(chain, k)
        except ExplainError:
            pass
    explain_parameter_path(chain, "a")
    assert np.array_equal(chain.grad, grad)
    for g0, g1 in zip(edge_grads, chain.edge_grads):
        assert (g0 is None and g1 is None) or np.array_equal(g0, g1)


def test_edges_without_gradient_raise_a_clear_error(chain):
    with pytest.raises(ExplainError, match="No gradient flows"):
        explain_edge(chain, edge(chain, "x.out->f.a"))
    with pytest.raises(ExplainError, match="not a scalar parameter"):
        explain_parameter_path(chain, "f")


@pytest.mark.parametrize("batch", [4, 100])
def test_tensor_edges_reproduce_the_edge_gradients(batch):
    p = compile_graph(load_graph(EXAMPLES / "xor_mlp.json"), dtype="float64")
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (batch, 2))
    p.forward(x, (x[:, :1] * x[:, 1:] > 0).astype(float))
    p.backward()
    kinds = {}
    for k in range(len(p.edges)):
        try:
            ex = explain_edge(p, k)
        except ExplainError:
            continue
        kinds[ex.edge_key] = ex.local_kind
        scale = max(ex.edge_grad.summary.l2, 1e-300)
        assert ex.error <= 1e-12 * scale, (ex.edge_key, ex.error)
        assert (ex.local.values is None) == (ex.local.size > 64)
    assert kinds["h1.out->a1.in"] == "elementwise"
    assert kinds["p.out->loss.prediction"] in ("elementwise", "jacobian")
    if batch == 4:
        assert kinds["a1.out->out.in"] == "jacobian"
        assert local_jacobian(p, p.index["out"], 0).shape == (4, 32)
    else:
        assert kinds["a1.out->out.in"] == "summed"
    node = explain_node(p, "a1")
    assert node.error == 0.0


def test_path_factors_are_named_and_the_fan_out_is_combined(chain):
    f = A * X
    a = explain_parameter_path(chain, "a")
    names = [[fac.name for fac in term.factors] for term in a.paths]
    assert names == [["2(h − y)/N", "c", "Add", "2f", "x"], ["2(h − y)/N", "c", "Add", "b", "x"]]
    assert "[2(h − y)/N] · 2 [c] · 1 [Add]" in a.formula
    assert a.fan_out.startswith("f fans out, and its paths join at g")
    assert "∂g/∂f = 2f + b" in a.fan_out
    combined = float(a.fan_out.rsplit("= ", 1)[1].replace("−", "-"))
    assert combined == pytest.approx(2 * f + B, rel=1e-5)
    assert explain_parameter_path(chain, "c").fan_out == ""


def test_formulas_follow_the_reduction():
    for op_id in ("MSELoss", "MAELoss", "HuberLoss", "BCELoss", "CrossEntropyLoss"):
        op = registry.get(op_id)
        mean = op.formula_for({"reduction": "mean"})
        total = op.formula_for({"reduction": "sum"})
        assert mean == op.formula and "/N" in mean and "mean" in mean
        assert "/N" not in total and "mean" not in total and "Σ" in total, op_id
    assert registry.get("MSELoss").formula_for({"reduction": "sum"}) == (
        "L = Σ((p − t)²);  ∂L/∂p = 2(p − t)")
    assert registry.get("ReLU").formula_for({}) == registry.get("ReLU").formula


def test_chain_rule_text_uses_sum_when_the_loss_adds(chain):
    spec = load_graph(EXAMPLES / "chain_rule.json")
    nodes = tuple(n if n.id != "loss" else type(n)(n.id, n.op, {"reduction": "sum"})
                  for n in spec.nodes)
    p = compile_graph(type(spec)(nodes, spec.edges, spec.layout, spec.training),
                      dtype="float64")
    p.forward(np.array([[X], [X]]), np.array([[T], [T]]))
    p.backward()
    a = explain_parameter_path(p, "a")
    assert a.paths[0].factors[0].name == "2(h − y)"  # Σ: no /N
    loss_edge = next(k for k, e in enumerate(p.edges) if e.dst == "loss" and
                     e.dst_port == "prediction")
    text = explain_edge(p, loss_edge).formula
    assert "/N" not in text and "ᵀ" not in text and "∂L/∂L" not in text
