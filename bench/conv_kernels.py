"""Conv2D, MaxPool2D and ReLU kernels alone: this tree vs an earlier revision vs PyTorch.

Times each layer of case (d) and of the 3×32×32 'same'-padding CNN of
bench/engine_vs_torch.py (batch 64, float32) on its own: forward and backward of our kernel
as it is now, of the same kernel at an earlier git revision (`--before`, default the commit
before the bias row), and forward + backward of torch's eager op. Kernel times are
less noisy than whole training steps on a shared machine, so the speed-up shows even when
the end-to-end ratios move around.

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/conv_kernels.py
Prints a table and writes it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, publish  # noqa: E402
from bench.engine_vs_torch import blas_line, interleaved  # noqa: E402
from engine.core import jit  # noqa: E402
from engine.ops.activations import ReLU  # noqa: E402
from engine.ops.conv import Conv2D, MaxPool2D  # noqa: E402

BEFORE = "c88a720"  # before the bias row and the test-free col2im loop


@dataclass
class Layer:
    case: str
    name: str
    op: str
    params: dict
    shape: tuple  # input (N, C, H, W)
    input_grad: bool = True


LAYERS = [
    Layer("(d)", "c1", "Conv2D", {"filters": 8, "padding": "valid"}, (64, 1, 28, 28), False),
    Layer("(d)", "r1", "ReLU", {}, (64, 8, 26, 26)),
    Layer("(d)", "p1", "MaxPool2D", {"size": 2}, (64, 8, 26, 26)),
    Layer("(d)", "c2", "Conv2D", {"filters": 16, "padding": "valid"}, (64, 8, 13, 13)),
    Layer("(d)", "p2", "MaxPool2D", {"size": 2}, (64, 16, 11, 11)),
    Layer("CNN", "c1", "Conv2D", {"filters": 16, "padding": "same"}, (64, 3, 32, 32), False),
    Layer("CNN", "r1", "ReLU", {}, (64, 16, 32, 32)),
    Layer("CNN", "p1", "MaxPool2D", {"size": 2}, (64, 16, 32, 32)),
    Layer("CNN", "c2", "Conv2D", {"filters": 32, "padding": "same"}, (64, 16, 16, 16)),
    Layer("CNN", "r2", "ReLU", {}, (64, 32, 16, 16)),
    Layer("CNN", "p2", "MaxPool2D", {"size": 2}, (64, 32, 16, 16)),
]
OPS = {"Conv2D": Conv2D, "MaxPool2D": MaxPool2D, "ReLU": ReLU}


def _module_at(rev: str, path: str, **names) -> types.ModuleType | None:
    """engine/ops module `path` as it was at git revision `rev` (None if it did not exist),
    with `names` set in it and without registering its ops a second time."""
    found = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True,
                           text=True)
    if found.returncode:
        return None
    module = types.ModuleType(f"before_{Path(path).stem}")
    module.__dict__.update(register=lambda cls: cls, **names)
    src = found.stdout.replace("from engine.core.registry import register\n", "")
    src = src.replace("cache=True", "cache=False")  # numba caches only real files
    if names:  # e.g. conv_jit: the compiled loops of the same revision, not today's
        src = src.replace(f"from engine.ops import {', '.join(names)}\n", "")
    exec(compile(src, f"{rev}:{path}", "exec"), module.__dict__)  # noqa: S102 (our history)
    return module


def kernels_at(rev: str) -> dict:
    """The kernel classes of engine/ops/{conv,activations}.py at git revision `rev`, with
    that revision's compiled loops (conv_jit) where it had them."""
    loops = _module_at(rev, "engine/ops/conv_jit.py")
    conv = _module_at(rev, "engine/ops/conv.py", **({"conv_jit": loops} if loops else {}))
    activations = _module_at(rev, "engine/ops/activations.py")
    return {"Conv2DKernel": conv.Conv2DKernel, "MaxPoolKernel": conv.MaxPoolKernel,
            "ReLUKernel": activations.ReLUKernel}


def our_kernel(layer: Layer, kernel_class=None):
    """A kernel of `layer` with random weights, as the compiler would set it up."""
    op = OPS[layer.op]()
    ins = {"in": (None, *layer.shape[1:])}
    params = op.resolve_params(layer.params)
    kernel = op.make_kernel(params, ins, op.infer_shape(params, ins), np.float32)
    if kernel_class is not None:  # the same constructor arguments, the older code
        old = kernel_class.__new__(kernel_class)
        old.__dict__.update(kernel.__dict__)
        kernel = old
    rng = np.random.default_rng(0)
    kernel.training, kernel.needs_input_grad = True, (layer.input_grad,)
    kernel.w = {k: (rng.normal(size=s) * 0.1).astype(np.float32)
                for k, s in op.param_shapes(params, ins).items()}
    kernel.g = {k: np.empty_like(v) for k, v in kernel.w.items()}
    return kernel


def torch_layer(layer: Layer, kernel, x: np.ndarray, gy: np.ndarray):
    """Forward + backward of the same layer with torch's eager ops."""
    import torch
    import torch.nn.functional as F

    tx = torch.tensor(x, requires_grad=layer.input_grad)
    tg = torch.tensor(gy)
    if layer.op == "Conv2D":
        w = torch.tensor(kernel.w["weight"], requires_grad=True)
        b = torch.tensor(kernel.w["bias"], requires_grad=True)
        pad = "same" if layer.params["padding"] == "same" else 0

        def run():
            F.conv2d(tx, w, b, padding=pad).backward(tg)
    elif layer.op == "MaxPool2D":
        def run():
            F.max_pool2d(tx, layer.params["size"]).backward(tg)
    else:
        def run():
            F.relu(tx).backward(tg)
    return run


def call(fn, arg):
    return fn(arg)


def numpy_path(fn, arg):
    """`fn(arg)` with the compiled kernels switched off (their work threshold out of reach)."""
    saved, jit.MIN_WORK = jit.MIN_WORK, 1 << 62
    try:
        return fn(arg)
    finally:
        jit.MIN_WORK = saved


def bench_layer(layer: Layer, before: dict | None, budget: float, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    x = rng.normal(size=layer.shape).astype(np.float32)
    now = our_kernel(layer)
    gy = rng.normal(size=now.forward(x).shape).astype(np.float32)
    sides = {"now": now}
    if before is not None:
        sides["before"] = our_kernel(layer, before[type(now).__name__])
    sides["numpy"] = our_kernel(layer)
    fns = {}
    for name, kernel in sides.items():
        numpy_only = numpy_path if name == "numpy" else None
        kernel.forward(x)
        fns[f"{name} fwd"] = lambda k=kernel, f=numpy_only: (f or call)(k.forward, x)
        fns[f"{name} bwd"] = lambda k=kernel, f=numpy_only: (f or call)(k.backward, gy)
    fns["torch"] = torch_layer(layer, now, x, gy)
    return interleaved(fns, budget, repeats)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE,
                        help="git revision to compare with ('none' to skip)")
    parser.add_argument("--repeats", type=int, default=200, help="most timed calls per round")
    parser.add_argument("--budget", type=float, default=0.1, help="seconds per side and round")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(min(torch.get_num_threads(), cores))
    before = None if args.before == "none" else kernels_at(args.before)
    command = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/conv_kernels.py"
    if cores < (os.cpu_count() or cores):  # as bench/engine_vs_torch.py: one core each
        command = (f"taskset -c {','.join(map(str, sorted(os.sched_getaffinity(0))))} "
                   + command.replace("python", "OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 "
                                     "python", 1))
    lines = [
        "## Conv2D, MaxPool2D and ReLU kernels alone",
        "",
        f"`{command}` — "
        f"{machine_line()}, torch {torch.__version__} ({torch.get_num_threads()} threads, "
        f"eager), numpy {np.__version__}; {blas_line()}. The layers of case (d) and of the "
        "3×32×32 CNN of the engine-vs-PyTorch table, batch 64, float32: our kernel now "
        "(compiled loops where they apply), now on its numpy path alone (`GRADSCAPE_NUMBA=0`), "
        f"the same kernel at {args.before} (before), and torch's eager op (forward + backward). "
        "Median of 5 interleaved rounds of each side's median call time; the machine is "
        "shared, so compare ratios from the same run.",
        "",
        "| case | layer | input | before fwd + bwd (ms) | now fwd (ms) | now bwd (ms) | "
        "now fwd + bwd (ms) | numpy path fwd + bwd (ms) | torch fwd + bwd (ms) | now/before | "
        "now/torch |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for layer in LAYERS:
        r = bench_layer(layer, before, args.budget, args.repeats)
        now = r["now fwd"] + r["now bwd"]
        old = r["before fwd"] + r["before bwd"] if before else None
        op = (f"Conv {layer.params['filters']}@3×3 {layer.params['padding']}"
              if layer.op == "Conv2D" else {"MaxPool2D": "MaxPool 2×2"}.get(layer.op, layer.op))
        lines.append(
            f"| {layer.case} | {layer.name}: {op} | {'×'.join(map(str, layer.shape))} | "
            f"{f'{old * 1e3:.3f}' if old else '—'} | {r['now fwd'] * 1e3:.3f} | "
            f"{r['now bwd'] * 1e3:.3f} | {now * 1e3:.3f} | "
            f"{(r['numpy fwd'] + r['numpy bwd']) * 1e3:.3f} | {r['torch'] * 1e3:.3f} | "
            f"{f'{now / old:.2f}' if old else '—'} | {now / r['torch']:.2f} |")
        print(lines[-1], flush=True)
    publish("conv_kernels", lines)


if __name__ == "__main__":
    main()
