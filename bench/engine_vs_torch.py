"""One training step (forward + backward + Adam), Gradscape's engine vs PyTorch eager on the CPU.

Besides the five reference cases (e: the tiny GPT example) it times scaling rows (784-H-H-10
for H = 64…2048, batch 1…512, a 3×32×32 CNN with 'same' padding) and Adam alone, adds a
jax.jit column when jax is importable (`pip install .[bench]`; not a dependency, not in CI:
the whole step, forward, backward and Adam, jit-compiled from the same graph with the same
weights), reports the achieved GFLOP/s of the matrix products against the sgemm peak
measured in the same run, and what the GUI's per-wire reports cost the tiny GPT's training.

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/engine_vs_torch.py
(OPENBLAS_CORETYPE is set on some machines for old OpenBLAS builds and slows numpy down;
unset it only for a benchmark.) Prints a table and writes it to docs/benchmarks.md.
On an oversubscribed machine, spinning BLAS threads make two-thread numbers meaningless;
compare on one core instead:  taskset -c 0 env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/engine_vs_torch.py
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine_line, median_time, publish  # noqa: E402
from designer.training.worker import REPORT_INTERVAL  # noqa: E402  (no Qt: the worker's module)
from engine.core.compiler import compile_graph  # noqa: E402
from engine.core.spec import GraphSpec  # noqa: E402
from engine.core.stats import summarize_many  # noqa: E402
from engine.training.optim import make_optimizer  # noqa: E402


def chain(layers: list[tuple[str, str, dict]], loss: str, target_features: int) -> GraphSpec:
    nodes = [{"id": i, "op": op, "params": p} for i, op, p in layers]
    nodes += [{"id": "y", "op": "Target", "params": {"features": target_features}},
              {"id": "loss", "op": loss}]
    edges = [{"from": f"{a[0]}.out", "to": f"{b[0]}.in"} for a, b in zip(layers, layers[1:])]
    edges += [{"from": f"{layers[-1][0]}.out", "to": "loss.prediction"},
              {"from": "y.out", "to": "loss.target"}]
    return GraphSpec.from_dict({"format": "gradscape-graph", "version": 1,
                                "nodes": nodes, "edges": edges})


def mlp(sizes: list[int], act: str, loss: str, target_features: int) -> GraphSpec:
    layers = [("x", "Input", {"features": sizes[0]})]
    for k, n in enumerate(sizes[1:], 1):
        layers.append((f"d{k}", "Dense", {"units": n}))
        if k < len(sizes) - 1:
            layers.append((f"a{k}", act, {}))
    return chain(layers, loss, target_features)


def cnn() -> GraphSpec:
    """Case (d): the small MNIST-sized CNN."""
    layers = [("x", "Input", {"shape": [1, 28, 28]}),
              ("c1", "Conv2D", {"filters": 8, "kernel": 3, "padding": "valid"}), ("r1", "ReLU", {}),
              ("p1", "MaxPool2D", {"size": 2}),
              ("c2", "Conv2D", {"filters": 16, "kernel": 3, "padding": "valid"}),
              ("r2", "ReLU", {}),
              ("p2", "MaxPool2D", {"size": 2}), ("f", "Flatten", {}),
              ("d", "Dense", {"units": 10})]
    return chain(layers, "CrossEntropyLoss", 1)


def cnn_same() -> GraphSpec:
    """A CIFAR-sized CNN with 'same' padding (the larger convolution case)."""
    layers = [("x", "Input", {"shape": [3, 32, 32]}),
              ("c1", "Conv2D", {"filters": 16, "kernel": 3, "padding": "same"}),
              ("r1", "ReLU", {}), ("p1", "MaxPool2D", {"size": 2}),
              ("c2", "Conv2D", {"filters": 32, "kernel": 3, "padding": "same"}),
              ("r2", "ReLU", {}), ("p2", "MaxPool2D", {"size": 2}), ("f", "Flatten", {}),
              ("d", "Dense", {"units": 10})]
    return chain(layers, "CrossEntropyLoss", 1)


LOSSES = ("MSELoss", "CrossEntropyLoss")


def layers_of(spec: GraphSpec) -> list:
    """The chain's layer nodes in order (no Input, Target or loss)."""
    return [n for n in spec.nodes if n.op not in ("Input", "Target") + LOSSES]


def torch_model(spec: GraphSpec, program):
    """The same graph as a torch.nn.Sequential with our initial weights."""
    import torch
    from torch import nn

    mods = []
    state = program.state_dict()
    for node in layers_of(spec):
        key, p = node.id, node.params
        if node.op in ("Dense", "Conv2D"):
            w = state[f"{key}.weight"]
            if node.op == "Dense":
                m = nn.Linear(w.shape[1], w.shape[0])
            else:
                m = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2],
                              padding=w.shape[2] // 2 if p.get("padding") == "same" else 0)
            m.weight.data = torch.tensor(w)
            m.bias.data = torch.tensor(state[f"{key}.bias"])
            mods.append(m)
        elif node.op in ("ReLU", "Tanh"):
            mods.append(nn.ReLU() if node.op == "ReLU" else nn.Tanh())
        elif node.op == "MaxPool2D":
            mods.append(nn.MaxPool2d(p.get("size", 2)))
        elif node.op == "Flatten":
            mods.append(nn.Flatten())
    return nn.Sequential(*mods)


def jax_loss(program):
    """The program's graph as a jax function loss(params, x, y), node by node in the
    program's order, with the program's parameter keys (None for an op it does not know)."""
    import jax
    import jax.numpy as jnp

    def dense(h, p, key, bias=True):
        h = h @ p[f"{key}.weight"].T
        return h + p[f"{key}.bias"] if bias else h

    def attention(h, p, key, prm):
        n, t, d = h.shape
        heads = prm["heads"]
        qkv = h @ p[f"{key}.in_proj_weight"].T
        if prm["bias"]:
            qkv = qkv + p[f"{key}.in_proj_bias"]
        q, k, v = qkv.reshape(n, t, 3, heads, d // heads).transpose(2, 0, 3, 1, 4)
        s = q @ k.swapaxes(-1, -2) / math.sqrt(d // heads)
        if prm["causal"]:
            s = jnp.where(jnp.triu(jnp.ones((t, t), bool), 1), -jnp.inf, s)
        o = (jax.nn.softmax(s, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
        o = o @ p[f"{key}.out_proj_weight"].T
        return o + p[f"{key}.out_proj_bias"] if prm["bias"] else o

    def layer_norm(h, p, key, prm):
        mean = h.mean(-1, keepdims=True)
        var = ((h - mean) ** 2).mean(-1, keepdims=True)
        h = (h - mean) / jnp.sqrt(var + prm["eps"])
        return h * p[f"{key}.weight"] + p[f"{key}.bias"] if prm["affine"] else h

    def conv(h, p, key, prm):
        pad = prm.get("padding", "same")
        pad = pad.upper() if isinstance(pad, str) else [(int(pad), int(pad))] * 2
        h = jax.lax.conv_general_dilated(h, p[f"{key}.weight"], (1, 1), pad,
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return h + p[f"{key}.bias"][None, :, None, None]

    def cross_entropy(z, t):
        z = z.reshape(-1, z.shape[-1])
        logp = jax.nn.log_softmax(z)
        return -jnp.mean(jnp.take_along_axis(logp, t.reshape(-1, 1), axis=1))

    def max_pool(h, k):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, k, k), (1, 1, k, k),
                                     "VALID")

    rules = {
        "Input": lambda ins, p, key, prm, x, y: x,
        "Target": lambda ins, p, key, prm, x, y: y,
        "Parameter": lambda ins, p, key, prm, x, y: p[f"{key}.value"],
        "Embedding": lambda ins, p, key, prm, x, y: p[f"{key}.weight"][ins[0]],
        "Add": lambda ins, p, key, prm, x, y: ins[0] + ins[1],
        "Dense": lambda ins, p, key, prm, x, y: dense(ins[0], p, key, prm.get("bias", True)),
        "LayerNorm": lambda ins, p, key, prm, x, y: layer_norm(ins[0], p, key, prm),
        "MultiHeadAttention": lambda ins, p, key, prm, x, y: attention(ins[0], p, key, prm),
        "GELU": lambda ins, p, key, prm, x, y: jax.nn.gelu(
            ins[0], approximate=prm.get("approximate") == "tanh"),
        "ReLU": lambda ins, p, key, prm, x, y: jnp.maximum(ins[0], 0),
        "Identity": lambda ins, p, key, prm, x, y: ins[0],  # a block's entry
        "Tanh": lambda ins, p, key, prm, x, y: jnp.tanh(ins[0]),
        "Conv2D": lambda ins, p, key, prm, x, y: conv(ins[0], p, key, prm),
        "MaxPool2D": lambda ins, p, key, prm, x, y: max_pool(ins[0], prm.get("size", 2)),
        "Flatten": lambda ins, p, key, prm, x, y: ins[0].reshape(ins[0].shape[0], -1),
        "MSELoss": lambda ins, p, key, prm, x, y: jnp.mean((ins[0] - ins[1]) ** 2),
        "CrossEntropyLoss": lambda ins, p, key, prm, x, y: cross_entropy(*ins),
    }
    if any(op not in rules for op in program.op_ids):
        return None

    def loss(p, x, y):
        values = []
        for i, key in enumerate(program.order):
            ins = [values[s] for s in program.srcs[i]]
            values.append(rules[program.op_ids[i]](ins, p, key, program.params[key], x, y))
        return values[program.loss_nodes[0]]

    return loss


def jax_step(program, kind: str, x: np.ndarray, y: np.ndarray):
    """One jit-compiled jax training step (forward, backward, Adam) of the program's graph on
    its initial weights, or None when jax is not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    loss_fn = jax_loss(program)
    if loss_fn is None:
        return None
    params = {k: jnp.asarray(v) for k, v in program.state_dict().items()}
    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8

    @jax.jit
    def step(p, m, v, t, xb, yb):
        g = jax.grad(loss_fn)(p, xb, yb)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        p = jax.tree_util.tree_map(
            lambda w, a, b: w - lr * (a / c1) / (jnp.sqrt(b / c2) + eps), p, m, v)
        return p, m, v, t

    ids = kind == "next-char"  # token ids in, token ids out
    xb = jnp.asarray(x.astype(np.int32) if ids else x)
    yb = jnp.asarray(y) if kind == "mse" else jnp.asarray(
        (y if ids else y[:, 0]).astype(np.int32))
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.float32(0)]

    def run():
        state[:] = step(*state, xb, yb)
        jax.block_until_ready(state[0])

    return run


def step_flops(program, batch: int) -> float:
    """Floating-point operations (2 per multiply-add) of the matrix products of one training
    step: every Dense, Conv2D and attention product of the forward pass, and in the backward
    pass one product for the weight gradient and one for the input gradient (skipped where
    the input needs none, as the engine skips it). Attention counts the whole T×T score
    matrix (all three implementations compute it, masked or not). Elementwise work, softmax,
    normalisation and the optimizer are not counted."""
    total, state = 0.0, program.state_dict()
    for i, key in enumerate(program.order):
        op, k = program.op_ids[i], program.kernels[i]
        out = (batch, *program.shapes[key][1:])
        input_grad = bool(k.needs_input_grad and k.needs_input_grad[0])
        if op == "Dense":
            w = state[f"{key}.weight"]
            fwd = 2.0 * math.prod(out[:-1]) * w.shape[0] * w.shape[1]
            total += fwd * (2 + input_grad)
        elif op == "Conv2D":
            w = state[f"{key}.weight"]
            fwd = 2.0 * out[0] * math.prod(out[2:]) * w.size
            total += fwd * (2 + input_grad)
        elif op == "MultiHeadAttention":
            n, t, d = out
            qkv, out_proj = 2.0 * n * t * d * 3 * d, 2.0 * n * t * d * d
            scores = 2.0 * 2 * n * t * t * d  # Q·Kᵀ and A·V over all heads
            # backward: the output projection's weights and input, the four score products
            # (dA, dV, dQ, dK), the q/k/v projection's weights and, if needed, its input
            total += out_proj * 3 + scores * 3 + qkv * (2 + input_grad)
    return total


def sgemm_peak(n: int = 2048, repeats: int = 7) -> float:
    """Best float32 matmul GFLOP/s of numpy's BLAS on an n×n product (a peak: the fastest
    of `repeats`, so that a busy moment does not lower it)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = min(median_time(lambda: a @ b, 1, warmup=0) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


@dataclass
class Row:
    key: str
    title: str
    build: object
    batch: int
    shape: tuple
    kind: str
    target: str = ""


def tiny_gpt() -> GraphSpec:
    """The tiny GPT example (2 blocks, d = 48, 4 heads, T = 32, 62 characters)."""
    from engine.core.spec import load_graph

    return load_graph(Path(__file__).resolve().parents[1] / "resources" / "examples" /
                      "tiny_gpt.json")


def exported_torch_model(program):
    """The graph as the PyTorch module our exporter writes, holding our initial weights."""
    import torch

    from engine.export.torch_export import generate_torch

    src, state, _keys = generate_torch(program)
    namespace = {"__file__": __file__, "__name__": "gradscape_bench_model"}
    exec(compile(src, "model.py", "exec"), namespace)  # noqa: S102  (our own generated code)
    model = namespace["GradscapeModel"]()
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=True)
    return model


CASES = {
    "a": Row("(a)", "2-8-8-1 tanh, MSE", lambda: mlp([2, 8, 8, 1], "Tanh", "MSELoss", 1),
             32, (2,), "mse", "torch ≤ 0.35"),
    "b": Row("(b)", "2-16-16-16-3 ReLU, cross-entropy",
             lambda: mlp([2, 16, 16, 16, 3], "ReLU", "CrossEntropyLoss", 1), 256, (2,), "ce3",
             "torch ≤ 0.35"),
    "c": Row("(c)", "784-256-128-10 ReLU, cross-entropy",
             lambda: mlp([784, 256, 128, 10], "ReLU", "CrossEntropyLoss", 1), 128, (784,),
             "ce10", "jax ≤ 0.85"),
    "d": Row("(d)", "Conv(8,3×3)-ReLU-MaxPool-Conv(16,3×3)-ReLU-MaxPool-Flatten-Dense(10), "
             "1×28×28", cnn, 64, (1, 28, 28), "ce10", "torch ≤ 0.80"),
    "e": Row("(e)", "tiny GPT: Embedding + positions, 2 × (LayerNorm-Attention(4 heads, "
             "causal)-Add-LayerNorm-Dense 192-GELU-Dense 48-Add), LayerNorm, Dense 62; T = 32",
             tiny_gpt, 32, (32,), "next-char", "torch ≤ 1.00"),
}
SCALING = (
    [Row(f"H={h}", f"784-{h}-{h}-10 ReLU, cross-entropy",
         (lambda h=h: mlp([784, h, h, 10], "ReLU", "CrossEntropyLoss", 1)), 128, (784,),
         "ce10", "jax ≤ 1.30" if h == 2048 else "") for h in (64, 128, 256, 512, 1024, 2048)]
    + [Row(f"B={b}", "784-256-128-10 ReLU, cross-entropy", CASES["c"].build, b, (784,), "ce10")
       for b in (1, 8, 32, 512)]
    + [Row("CNN", "Conv(16,3×3,same)-ReLU-MaxPool-Conv(32,3×3,same)-ReLU-MaxPool-Flatten-"
           "Dense(10), 3×32×32", cnn_same, 64, (3, 32, 32), "ce10", "torch ≤ 1.00")]
)


def make_batch(batch: int, shape: tuple, kind: str, rng: np.random.Generator):
    if kind == "next-char":
        ids = rng.integers(0, 62, size=(batch, shape[0] + 1)).astype(np.float32)
        return ids[:, :-1], ids[:, 1:]
    x = rng.normal(size=(batch, *shape)).astype(np.float32)
    if kind == "mse":
        y = rng.normal(size=(batch, 1)).astype(np.float32)
    else:
        classes = 3 if kind == "ce3" else 10
        y = rng.integers(0, classes, size=(batch, 1)).astype(np.float32)
    return x, y


def interleaved(fns: dict, budget: float, max_repeats: int, rounds: int = 5) -> dict:
    """Median over `rounds` interleaved rounds of each function's median call time, so that
    drift in machine load hits every side alike. Repeats per round fit `budget` seconds."""
    repeats = {}
    for name, fn in fns.items():
        for _ in range(3):
            fn()  # warm up (jax compiles here)
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-6)
        repeats[name] = int(min(max_repeats, max(5, budget / one)))
    times: dict = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(median_time(fn, repeats[name], warmup=2))
    return {name: float(np.median(v)) for name, v in times.items()}


def our_step(row: Row, spec: GraphSpec | None = None):
    """(program, x, y, one training step: forward, backward and Adam on the row's batch)."""
    program = compile_graph(row.build() if spec is None else spec, seed=0)
    opt = make_optimizer("adam", program.theta, program.grad, 1e-3)
    x, y = make_batch(row.batch, row.shape, row.kind, np.random.default_rng(0))

    def step():
        program.forward(x, y)
        program.backward()
        opt.step()

    return program, x, y, step


def bench_row(row: Row, max_repeats: int, budget: float) -> dict:
    import torch

    spec = row.build()
    program, x, y, ours = our_step(row, spec)
    model = (exported_torch_model(program) if row.kind == "next-char"
             else torch_model(spec, program))
    topt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx = torch.tensor(x)
    if row.kind == "next-char":
        ty = torch.tensor(y).long().reshape(-1)

        def loss_fn(out, target):
            return torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), target)
    elif row.kind == "mse":
        ty = torch.tensor(y)
        loss_fn = torch.nn.functional.mse_loss
    else:
        ty = torch.tensor(y[:, 0]).long()
        loss_fn = torch.nn.functional.cross_entropy

    def theirs():
        topt.zero_grad()
        loss = loss_fn(model(tx), ty)
        loss.backward()
        topt.step()

    fns = {"ours": ours, "torch": theirs}
    jax_fn = jax_step(program, row.kind, x, y)
    if jax_fn is not None:
        fns["jax"] = jax_fn
    result = interleaved(fns, budget, max_repeats)
    result.update(row=row, params=program.theta.size,
                  flops=step_flops(program, row.batch))
    if row.kind == "next-char":
        result.update(gui_reports=gui_report_overhead(spec))
    if row.key == "(b)":
        def summaries():
            summarize_many([program.edge_value(k) for k in range(len(program.edges))])
            summarize_many(program.edge_grads)

        def ours_with_summaries():
            ours()
            summaries()

        extra = interleaved({"with": ours_with_summaries, "only": summaries}, budget,
                            max_repeats)
        result.update(summaries=extra["with"], summary_only=extra["only"],
                      edges=len(program.edges))
    return result


def gui_report_overhead(spec: GraphSpec, repeats: int = 30) -> dict:
    """What the GUI's reports cost a training run of `spec`, through the training worker
    the window drives (designer/training/worker.py): the median time of one report (every
    wire's value and gradient summarised, the health flags, the small parameters, pickled
    for the pipe) and of one Trainer step on the graph's own data, batch and optimizer.
    The worker sends a report after each REPORT_INTERVAL of steps, so the reports add
    report time × reports per second to the training time."""
    import pickle

    from designer.training.worker import LoadJob, TrainingWorker

    worker = TrainingWorker(lambda msg: None)
    worker.load(LoadJob(0, spec, keep_weights=False))
    times = {"step": [], "report": []}
    for _ in range(5):  # interleaved rounds
        times["step"].append(median_time(worker.trainer.step, repeats // 3, warmup=1))
        times["report"].append(median_time(lambda: pickle.dumps(worker.current_report()),
                                           repeats, warmup=2))
    return {"step": float(np.median(times["step"])),
            "report": float(np.median(times["report"])), "rate": 1.0 / REPORT_INTERVAL,
            "edges": len(worker.program.edges)}


def bench_adam(n: int, max_repeats: int, budget: float) -> dict:
    """Adam alone on n float32 parameters: ours vs torch's fused and foreach CPU Adam."""
    import torch

    rng = np.random.default_rng(0)
    theta = rng.normal(size=n).astype(np.float32)
    grad = (rng.normal(size=n) * 1e-2).astype(np.float32)
    opt = make_optimizer("adam", theta, grad, 1e-3)
    fns = {"ours": opt.step}
    for name, kw in (("torch fused", {"fused": True}), ("torch foreach", {"foreach": True})):
        p = torch.nn.Parameter(torch.tensor(theta))
        p.grad = torch.tensor(grad)
        fns[name] = torch.optim.Adam([p], lr=1e-3, **kw).step
    return interleaved(fns, budget, max_repeats)


def blas_line() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl not installed"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"
             and "numpy" in i.get("filepath", "")] or \
        [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not infos:
        return "BLAS: unknown"
    i = infos[0]
    return (f"numpy's BLAS: {i.get('internal_api')} {i.get('version')}, kernel "
            f"{i.get('architecture')}, {i.get('num_threads')} threads")


def fmt_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "—"


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200,
                        help="most timed calls per side and round")
    parser.add_argument("--budget", type=float, default=0.15,
                        help="seconds per side and round (fewer calls for slow rows)")
    parser.add_argument("--cases", default="abcde", help="which of the five cases to run")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling rows")
    parser.add_argument("--only", metavar="ROWS",
                        help="comma-separated row keys to run alone, e.g. 'd,CNN' or 'c,H=2048' "
                        "(no Adam rows; prints the table without writing docs/benchmarks.md)")
    args = parser.parse_args()
    only = [k.strip().strip("()") for k in args.only.split(",")] if args.only else None
    by_key = {**{c: row for c, row in CASES.items()}, **{r.key: r for r in SCALING}}
    if only and not set(only) <= set(by_key):
        parser.error(f"unknown rows {', '.join(sorted(set(only) - set(by_key)))}; "
                     f"choose from {', '.join(by_key)}")
    # Under `taskset` every side gets the same cores (torch would otherwise count all of them).
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(min(torch.get_num_threads(), cores))
    load_before = os.getloadavg()[0]
    peak = sgemm_peak()
    if only:
        rows = [bench_row(by_key[k], args.repeats, args.budget) for k in only]
    else:
        rows = [bench_row(CASES[c], args.repeats, args.budget) for c in args.cases]
    if not args.no_scaling and not only:
        rows += [bench_row(r, args.repeats, args.budget) for r in SCALING]
    adam = [] if only else [(n, bench_adam(n, args.repeats, args.budget))
                            for n in (235_146, 5_800_000)]
    peak = max(peak, sgemm_peak())  # measured before and after: the busier one is lower
    command = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/engine_vs_torch.py"
    if cores < (os.cpu_count() or cores):
        command = (f"taskset -c {','.join(map(str, sorted(os.sched_getaffinity(0))))} "
                   + command.replace("python", "OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 "
                                     "python", 1))
    has_jax = any("jax" in r for r in rows)
    try:
        import jax
        jax_text = f", jax {jax.__version__} (jax.jit, CPU)"
    except ImportError:
        jax_text = " (jax not installed: no jax.jit column)"
    lines = [
        "## Engine vs PyTorch (and jax.jit): one training step (forward + backward + Adam)",
        "",
        f"`{command}` — {machine_line()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads, eager){jax_text}, numpy {np.__version__}; "
        f"{blas_line()}. Each row: median of 5 "
        f"interleaved rounds of each side's median step time (float32). sgemm peak measured "
        f"in this run: {peak:.0f} GFLOP/s (2048² float32 matmul). 1-minute load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after; on a shared machine "
        "absolute times are noisy, ratios from the same run are the numbers to compare.",
        "",
        "| row | network | batch | params | ours (ms) | torch (ms) | "
        + ("jax (ms) | " if has_jax else "") + "ours/torch | "
        + ("ours/jax | " if has_jax else "") + "target | GFLOP/s | % of peak |",
        "|---|---|---:|---:|---:|---:|" + ("---:|" if has_jax else "") + "---:|"
        + ("---:|" if has_jax else "") + "---|---:|---:|",
    ]
    for r in rows:
        row, gflops = r["row"], r["flops"] / r["ours"] / 1e9
        cells = [row.key, row.title, str(row.batch), f"{r['params']:,}",
                 f"{r['ours'] * 1e3:.3f}", f"{r['torch'] * 1e3:.3f}"]
        if has_jax:
            cells.append(f"{r['jax'] * 1e3:.3f}" if "jax" in r else "—")
        cells.append(fmt_ratio(r["ours"], r["torch"]))
        if has_jax:
            cells.append(fmt_ratio(r["ours"], r.get("jax")))
        counted = math.isfinite(gflops) and gflops > 0
        cells += [row.target or "—", f"{gflops:.1f}" if counted else "—",
                  f"{gflops / peak:.0%}" if counted else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    if only:  # a partial table: printed, not published
        print("\n".join(lines))
        return
    lines += ["", "Adam alone (float32, one step over the flat parameter vector):", "",
              "| parameters | ours (ms) | torch fused (ms) | torch foreach (ms) | "
              "ours/fused | target |", "|---:|---:|---:|---:|---:|---|"]
    for n, a in adam:
        lines.append(f"| {n:,} | {a['ours'] * 1e3:.3f} | {a['torch fused'] * 1e3:.3f} | "
                     f"{a['torch foreach'] * 1e3:.3f} | "
                     f"{fmt_ratio(a['ours'], a['torch fused'])} | "
                     f"{'fused ≤ 1.50' if n > 1_000_000 else '—'} |")
    for r in rows:
        if "summaries" in r:
            extra = r["summaries"] / r["ours"] - 1
            gui = r["summary_only"] / REPORT_INTERVAL
            lines += ["", f"Per-edge summaries on {r['row'].key} (value and gradient summaries "
                      f"of all {r['edges']} edges, {r['summary_only'] * 1e3:.3f} ms per "
                      "capture):",
                      "",
                      "| capture cadence | cost | target |", "|---|---:|---:|",
                      f"| at the GUI's report rate ({1 / REPORT_INTERVAL:.0f} per second) | "
                      f"+{gui:.1%} of training time | ≤ +10% |",
                      f"| after every step (worst case) | +{extra:.0%} per step | — |",
                      "",
                      "The trainer keeps references to every edge's value and gradient after "
                      "each step at no cost; the summaries are computed only when the GUI asks "
                      f"for a report, at most {1 / REPORT_INTERVAL:.0f} times a second."]
        if "gui_reports" in r:
            g = r["gui_reports"]
            lines += ["", f"GUI reports on {r['row'].key}, through the training worker the "
                      "window drives (designer/training/worker.py) on the example's own data, "
                      "batch, Adam and gradient clipping:", "",
                      "| measure | value | target |", "|---|---:|---:|",
                      f"| one Trainer step | {g['step'] * 1e3:.2f} ms | — |",
                      f"| one report (summaries of the value and gradient on all {g['edges']} "
                      f"wires, health flags, small parameters, pickled) | "
                      f"{g['report'] * 1e3:.2f} ms | — |",
                      f"| reports at the GUI's rate ({g['rate']:.0f} per second) | "
                      f"+{g['report'] * g['rate']:.1%} of training time | ≤ +10% |",
                      f"| a report after every step (worst case) | "
                      f"+{g['report'] / g['step']:.0%} per step | — |"]
    publish("engine_vs_torch", lines)


if __name__ == "__main__":
    main()
