"""Check backpropagation against central finite differences.

For every learnable tensor (and optionally dL/dx of the Input nodes) the analytic
gradient from `Program.backward` is compared with (L(θ + ε) − L(θ − ε)) / 2ε, entry by
entry. Large tensors are checked on a seeded random subset of entries.

Determinism: the check runs in training mode (or evaluation mode with training=False)
and re-seeds every random kernel (Dropout) to the same seed before *every* forward pass,
so each evaluation uses the same dropout masks and the loss is a deterministic function
of the parameters. BatchNorm running statistics, which forward updates in training mode,
are restored afterwards, as are the parameters and the program's mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.program import Program
from engine.core.spec import GraphSpec

TINY = 1e-300


@dataclass(frozen=True)
class GradcheckRow:
    """One tensor's comparison: `key` is "node.name" or "input:<node ids>"."""

    key: str
    max_abs: float
    rel: float
    passed: bool
    checked: int  # entries compared
    size: int  # entries in the tensor


@dataclass
class GradcheckReport:
    rows: list[GradcheckRow]
    rtol: float
    atol: float

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def worst(self) -> GradcheckRow | None:
        """The row with the largest relative error (failing rows first)."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda r: (not r.passed, r.rel))

    def table(self) -> str:
        width = max([len("tensor")] + [len(r.key) for r in self.rows])
        head = f"{'tensor':<{width}}  {'checked':>11}  {'max abs err':>11}  {'rel err':>9}"
        lines = [head + "  result"]
        for r in self.rows:
            lines.append(f"{r.key:<{width}}  {f'{r.checked}/{r.size}':>11}  {r.max_abs:11.3e}  "
                         f"{r.rel:9.2e}  {'ok' if r.passed else 'FAIL'}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _relative(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    diff = a - b
    max_abs = float(np.max(np.abs(diff))) if diff.size else 0.0
    denom = max(float(np.linalg.norm(a)) + float(np.linalg.norm(b)), TINY)
    return max_abs, float(np.linalg.norm(diff)) / denom


def gradcheck(program_or_spec: Program | GraphSpec, x: np.ndarray, y: np.ndarray | None,
              eps: float = 1e-6, inputs: bool = False, *, seed: int = 0,
              max_entries: int = 200, rtol: float = 1e-5, atol: float = 1e-8,
              training: bool = True) -> GradcheckReport:
    """Compare backprop with central differences for every parameter tensor.

    Args:
        program_or_spec: a compiled Program (checked as is, best in float64) or a GraphSpec
            (compiled in float64 with `seed`, with input gradients when `inputs`).
        x, y: one batch of inputs and targets.
        eps: finite-difference step.
        inputs: also check dL/dx on the Input nodes (every Input receives x, so the
            reference is the sum of their gradients).
        seed: seeds the compilation, the dropout masks and the subset of checked entries.
        max_entries: at most this many (random) entries per tensor are perturbed.
        rtol, atol: a row passes if its relative error ≤ rtol or its max abs error ≤ atol.
        training: run in training mode (Dropout masks, BatchNorm batch statistics) or not.
    """
    from engine.core.compiler import compile_graph

    if isinstance(program_or_spec, GraphSpec):
        program = compile_graph(program_or_spec, dtype="float64", seed=seed, input_grads=inputs)
    else:
        program = program_or_spec
    dtype = program.dtype
    x = np.asarray(x, dtype=dtype)
    y = None if y is None else np.asarray(y, dtype=dtype)
    random_kernels = [k for k in program.kernels if hasattr(k, "reseed")]
    saved_buffers = {k: v.copy() for k, v in program.buffers.items()}
    was_training = program.training
    program.set_training(training)

    def loss(xv: np.ndarray) -> float:
        for k in random_kernels:
            k.reseed(seed)
        return program.forward(xv, y)

    rng = np.random.default_rng(seed)

    def subset(size: int) -> np.ndarray:
        if size <= max_entries:
            return np.arange(size)
        return np.sort(rng.choice(size, max_entries, replace=False))

    def row(key: str, analytic: np.ndarray, numeric: np.ndarray, size: int) -> GradcheckRow:
        max_abs, rel = _relative(analytic, numeric)
        return GradcheckRow(key, max_abs, rel, rel <= rtol or max_abs <= atol, len(analytic), size)

    rows: list[GradcheckRow] = []
    try:
        loss(x)
        program.backward()
        analytic_theta = program.grad.copy()
        analytic_x = None
        if inputs:
            grads = [program.node_grads[i] for i in program.input_nodes]
            if any(g is None for g in grads):
                raise ValueError("the program has no input gradients; compile it with "
                                 "input_grads=True or pass the GraphSpec")
            analytic_x = np.sum([np.broadcast_to(g, x.shape) for g in grads], axis=0)

        theta = program.theta
        for e in program.entries:
            idx = subset(e.size)
            numeric = np.empty(len(idx))
            for n, j in enumerate(idx):
                pos = e.offset + j
                old = theta[pos]
                theta[pos] = old + eps
                up = loss(x)
                theta[pos] = old - eps
                down = loss(x)
                theta[pos] = old
                numeric[n] = (up - down) / (2 * eps)
            rows.append(row(e.key, analytic_theta[e.offset + idx], numeric, e.size))

        if analytic_x is not None:
            flat = x.reshape(-1).copy()
            idx = subset(flat.size)
            numeric = np.empty(len(idx))
            for n, j in enumerate(idx):
                old = flat[j]
                flat[j] = old + eps
                up = loss(flat.reshape(x.shape))
                flat[j] = old - eps
                down = loss(flat.reshape(x.shape))
                flat[j] = old
                numeric[n] = (up - down) / (2 * eps)
            key = "input:" + ",".join(program.order[i] for i in program.input_nodes)
            rows.append(row(key, analytic_x.reshape(-1)[idx], numeric, flat.size))
    finally:
        loss(x)  # leave node values consistent with the restored parameters
        for k, v in saved_buffers.items():
            program.buffers[k][...] = v
        program.set_training(was_training)
    return GradcheckReport(rows, rtol, atol)
