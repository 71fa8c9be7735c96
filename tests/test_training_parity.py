"""Whole training trajectories equal PyTorch's: same weights, same batches, same optimizer."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.core.compiler import compile_graph  # noqa: E402
from engine.core.spec import GraphSpec  # noqa: E402
from engine.training.optim import make_optimizer  # noqa: E402

SPEC = GraphSpec.from_dict({
    "format": "gradscape-graph", "version": 1,
    "nodes": [{"id": "x", "op": "Input", "params": {"features": 3}},
              {"id": "h1", "op": "Dense", "params": {"units": 8}}, {"id": "a1", "op": "Tanh"},
              {"id": "h2", "op": "Dense", "params": {"units": 4}},
              {"id": "y", "op": "Target", "params": {"features": 1}},
              {"id": "loss", "op": "CrossEntropyLoss"}],
    "edges": [{"from": "x.out", "to": "h1.in"}, {"from": "h1.out", "to": "a1.in"},
              {"from": "a1.out", "to": "h2.in"}, {"from": "h2.out", "to": "loss.prediction"},
              {"from": "y.out", "to": "loss.target"}]})

CASES = [
    ("momentum", {"momentum": 0.9}, torch.optim.SGD, {"momentum": 0.9}, 0.1),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}, torch.optim.SGD,
     {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}, 0.1),
    ("adam", {}, torch.optim.Adam, {}, 0.01),
    ("adamw", {"weight_decay": 0.05}, torch.optim.AdamW, {"weight_decay": 0.05}, 0.01),
]


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-5)])
@pytest.mark.parametrize("name, ours_hyper, torch_cls, torch_hyper, lr", CASES)
def test_twenty_steps_match_torch(name, ours_hyper, torch_cls, torch_hyper, lr, dtype, tol):
    rng = np.random.default_rng(3)
    batches = [(rng.normal(size=(16, 3)), rng.integers(0, 4, size=(16, 1)).astype(float))
               for _ in range(20)]
    program = compile_graph(SPEC, dtype=dtype, seed=1)
    opt = make_optimizer(name, program.theta, program.grad, lr, **ours_hyper)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    params = {k: torch.tensor(v, dtype=tdtype, requires_grad=True)
              for k, v in program.state_dict().items()}
    topt = torch_cls(list(params.values()), lr=lr, **torch_hyper)
    for x, y in batches:
        ours_loss = program.forward(x, y)
        program.backward()
        opt.step()
        topt.zero_grad()
        tx = torch.tensor(x, dtype=tdtype)
        h = torch.tanh(tx @ params["h1.weight"].T + params["h1.bias"])
        logits = h @ params["h2.weight"].T + params["h2.bias"]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y[:, 0]).long())
        loss.backward()
        topt.step()
        assert ours_loss == pytest.approx(loss.item(), rel=tol, abs=tol)
    for key, value in program.state_dict().items():
        np.testing.assert_allclose(value, params[key].detach().numpy(), rtol=tol * 10,
                                   atol=tol * 10, err_msg=key)
