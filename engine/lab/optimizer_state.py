"""What the optimizer knows about one parameter tensor, now and over time.

`parameter_state` slices the flat vectors (theta, grad, the optimizer's state arrays
such as Adam's m and v or SGD's momentum buffer, and the last update Δθ) at a
ParamEntry's offset, so the GUI can show, for a selected tensor, the gradient, the
running statistics and the step the optimizer actually took. `StateRecorder` keeps
those per step for plotting: full values for small tensors, summaries always.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.program import ParamEntry, Program
from engine.core.stats import SUMMARY_FIELDS, Summary, summarize
from engine.errors import GradscapeError
from engine.training.optim import Optimizer
from engine.training.trainer import Trainer

FULL_LIMIT = 64  # tensors up to this many numbers are recorded in full


def find_entry(program: Program, key: str) -> ParamEntry:
    """The ParamEntry called `key` ("h1.weight", "a.value"); GradscapeError listing keys."""
    for e in program.entries:
        if e.key == key:
            return e
    keys = ", ".join(e.key for e in program.entries) or "none"
    raise GradscapeError(f"There is no learnable tensor '{key}'; the network has: {keys}.")


def _optimizer_and_delta(source: Trainer | Optimizer) -> tuple[Optimizer, np.ndarray | None]:
    if isinstance(source, Trainer):
        return source.optimizer, source.last_update
    if isinstance(source, Optimizer):
        return source, (source.last_update if source.t > 0 else None)
    raise GradscapeError("parameter_state needs a Trainer or an Optimizer.")


def parameter_state(source: Trainer | Optimizer, program: Program, key: str) -> dict[str, Any]:
    """The selected tensor's numbers after the last step, as copies in its own shape.

    Keys: "key", "shape", "step" (optimizer steps taken), "lr", "optimizer" (registry
    name), "value" (θ), "grad" (the gradient the last step used, after clipping and
    L1/L2), "delta" (Δθ of the last step, None before the first) and "state" (dict of
    the optimizer's state slices: "m" and "v" for Adam, "momentum" for SGD with
    momentum, "square_avg" for RMSProp, …; empty for plain SGD).
    """
    opt, delta = _optimizer_and_delta(source)
    e = find_entry(program, key)
    if opt.theta is not program.theta:
        raise GradscapeError("This optimizer does not train the given program.")

    def cut(a: np.ndarray) -> np.ndarray:
        return e.view(a).copy()

    return {
        "key": e.key,
        "shape": e.shape,
        "step": int(opt.t),
        "lr": float(opt.lr),
        "optimizer": opt.name,
        "value": cut(program.theta),
        "grad": cut(program.grad),
        "delta": None if delta is None else cut(delta),
        "state": {name: cut(arr) for name, arr in opt.state_arrays().items()},
    }


@dataclass(frozen=True)
class StateSample:
    """One recorded step of one tensor: summaries of every field, values when small."""

    step: int
    summaries: dict[str, Summary]  # "value", "grad", "delta", "m", "v", …
    values: dict[str, tuple[float, ...]] | None  # flat values (tensors ≤ full_limit)


class StateRecorder:
    """Records `parameter_state` of some tensors after every `record()` call.

    Args:
        program: the program being trained.
        keys: ParamEntry keys to follow.
        full_limit: tensors with at most this many numbers keep their values.
        max_samples: the oldest samples are dropped beyond this many per key.
    """

    def __init__(self, program: Program, keys: Iterable[str] | str,
                 full_limit: int = FULL_LIMIT, max_samples: int = 100_000):
        self.program = program
        self.keys = [keys] if isinstance(keys, str) else list(keys)
        for k in self.keys:
            find_entry(program, k)
        self.full_limit = int(full_limit)
        self.history: dict[str, deque[StateSample]] = {
            k: deque(maxlen=max_samples) for k in self.keys}

    def record(self, source: Trainer | Optimizer) -> None:
        """Take a sample of every followed tensor (call right after a step)."""
        for key in self.keys:
            st = parameter_state(source, self.program, key)
            fields = {"value": st["value"], "grad": st["grad"]}
            if st["delta"] is not None:
                fields["delta"] = st["delta"]
            fields.update(st["state"])
            small = st["value"].size <= self.full_limit
            values = ({n: tuple(float(v) for v in a.reshape(-1)) for n, a in fields.items()}
                      if small else None)
            self.history[key].append(StateSample(
                st["step"], {n: summarize(a) for n, a in fields.items()}, values))

    def samples(self, key: str) -> list[StateSample]:
        return list(self.history[key])

    def series(self, key: str, field: str, stat: str | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one field for plotting.

        Without `stat` the values are the full numbers, shape (samples, size) (only for
        tensors recorded in full); with `stat` one of mean, mean_abs, l2, min, max,
        shape (samples,). Samples lacking the field (e.g. no delta yet) are skipped.
        """
        rows = [s for s in self.history[key] if field in s.summaries]
        steps = np.array([s.step for s in rows], dtype=np.int64)
        if stat is not None:
            if stat not in SUMMARY_FIELDS:
                raise GradscapeError(f"stat must be one of {', '.join(SUMMARY_FIELDS)}.")
            return steps, np.array([getattr(s.summaries[field], stat) for s in rows])
        if rows and rows[0].values is None:
            raise GradscapeError(f"'{key}' is too large to record in full; pick a stat "
                                 f"({', '.join(SUMMARY_FIELDS)}).")
        return steps, np.array([s.values[field] for s in rows if s.values is not None])

    def clear(self) -> None:
        for d in self.history.values():
            d.clear()
