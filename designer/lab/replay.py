"""Worker-side helpers: rebuild the last training step on a private copy of the program.

After `Trainer.step()` the optimizer has already moved the weights, but the kernels still
hold the forward state of the step (some of it as views into the weights). Explaining a
gradient on the live program would therefore mix the old batch with the new weights. These
helpers run ON THE TRAINING THREAD (inside `session.run_on_worker`) and return a fresh
Program that repeats exactly the last step's forward and backward pass: the weights the
step used (`trainer.weights_before_step`, copied just before backward), the same batch, the same
dtype. The copy belongs to the caller; the live program is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.compiler import compile_graph
from engine.core.program import Program
from engine.errors import GradscapeError


@dataclass
class Replay:
    """A private program after forward + backward of one batch, with its provenance."""

    program: Program
    x: np.ndarray
    y: np.ndarray
    step: int  # optimizer steps the trainer had taken (0: before any step)
    after_step: bool  # True: the weights and batch of the last step; False: the first batch


def last_batch(trainer) -> tuple[np.ndarray, np.ndarray, bool]:
    """(x, y, used) of the batch the last step used, or of the next one if none ran."""
    idx = trainer.last_batch if trainer.step_count > 0 else None
    used = idx is not None
    if idx is None:
        idx = trainer.peek_next_batch()
    return trainer.x[idx].copy(), trainer.y[idx].copy(), used


def copy_program(program: Program, theta: np.ndarray | None = None,
                 dtype: str | None = None) -> Program:
    """A fresh Program of the same graph with the given (or the current) weights."""
    dt = dtype or np.dtype(program.dtype).name
    copy = compile_graph(program.spec, dtype=dt, seed=program.seed, input_grads=True)
    copy.theta[...] = program.theta if theta is None else theta
    for key, arr in program.buffers.items():
        if key in copy.buffers:
            copy.buffers[key][...] = arr
    return copy


def replay_last_step(program: Program | None, trainer) -> Replay:
    """Repeat the last step's forward and backward pass on a copy (run on the worker)."""
    if program is None or trainer is None:
        raise GradscapeError("The graph cannot be trained yet, so there is no gradient.")
    x, y, used = last_batch(trainer)
    theta = trainer.weights_before_step if used else program.theta
    copy = copy_program(program, theta)
    for k in copy.kernels:  # the same dropout masks for every replay of this step
        if hasattr(k, "reseed"):
            k.reseed(trainer.step_count)
    copy.set_training(True)
    copy.forward(x, y)
    copy.backward()
    return Replay(copy, x, y, int(trainer.step_count), used)


def current_batch_copy(program: Program | None, trainer) -> tuple:
    """(spec, theta, buffers, x, y) copies for a computation on a thread of its own."""
    if program is None or trainer is None:
        raise GradscapeError("The graph cannot be trained yet: fix the problems first.")
    x, y, used = last_batch(trainer)
    theta = trainer.weights_before_step if used else program.theta
    return (program.spec, theta.copy(), {k: v.copy() for k, v in program.buffers.items()},
            x, y, int(trainer.step_count), used)
