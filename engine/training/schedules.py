"""Learning-rate schedules, stepped once per epoch like torch.optim.lr_scheduler.

A schedule is a pure function of the epoch (and, for future per-step schedules, the
global step): the trainer sets ``optimizer.lr = schedule.lr_at(step, epoch)`` before
each optimizer step. ``epoch`` counts from 0, so epoch 0 always uses the base rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.errors import GradscapeError
from engine.ops.base import Param


class HyperparameterError(GradscapeError, ValueError):
    """An unknown optimizer or schedule name, or a hyperparameter with a bad value."""


def resolve_hyper(what: str, params: tuple[Param, ...], defaults: dict[str, Any],
                  given: dict[str, Any]) -> dict[str, Any]:
    """`defaults` overlaid with `given`, each value checked against its Param schema.

    Raises HyperparameterError naming the bad setting and the accepted ones.
    """
    schema = {p.name: p for p in params}
    unknown = [k for k in given if k not in schema]
    if unknown:
        accepted = ", ".join(schema) or "none"
        raise HyperparameterError(
            f"{what} has no setting {', '.join(repr(k) for k in unknown)}; "
            f"its settings are: {accepted}.")
    out = dict(defaults)
    out.update(given)
    for name, p in schema.items():
        value = out.get(name, p.default)
        if p.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        problem = p.check(value)
        if problem is not None:
            raise HyperparameterError(f"{what}: {problem}.")
        out[name] = value
    return out


def check_lr(lr: Any, what: str = "The learning rate") -> float:
    """Return `lr` as a Python float, or raise HyperparameterError if it is not ≥ 0."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) \
            or lr < 0:
        raise HyperparameterError(
            f"{what} must be a finite number of at least 0 (e.g. 0.01), not {lr!r}.")
    return float(lr)


class Schedule:
    """Learning rate as a function of the epoch. Subclasses override `lr_at`."""

    name: str = ""

    def __init__(self, base_lr: float):
        self.base_lr = check_lr(base_lr, "The base learning rate")

    def lr_at(self, step: int, epoch: int) -> float:
        """Learning rate to use for an optimizer step taken during `epoch` (0-based)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class ConstantLR(Schedule):
    """η_e = η₀ for every epoch e."""

    name = "constant"

    def lr_at(self, step: int, epoch: int) -> float:
        return self.base_lr


class StepLR(Schedule):
    """η_e = η₀ · γ^⌊e / step_size⌋ (torch StepLR)."""

    name = "step"

    def __init__(self, base_lr: float, step_size: int = 10, gamma: float = 0.1):
        super().__init__(base_lr)
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def lr_at(self, step: int, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(Schedule):
    """η_e = η₀ · γ^e (torch ExponentialLR)."""

    name = "exponential"

    def __init__(self, base_lr: float, gamma: float = 0.95):
        super().__init__(base_lr)
        self.gamma = float(gamma)

    def lr_at(self, step: int, epoch: int) -> float:
        return self.base_lr * self.gamma ** epoch


class CosineLR(Schedule):
    """η_e = η_min + (η₀ − η_min)·(1 + cos(π·e / T_max)) / 2 (torch CosineAnnealingLR).

    Past T_max the curve continues as a cosine and climbs back up, exactly as PyTorch's.
    """

    name = "cosine"

    def __init__(self, base_lr: float, T_max: int = 50, eta_min: float = 0.0):
        super().__init__(base_lr)
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)

    def lr_at(self, step: int, epoch: int) -> float:
        if epoch == 0:
            return self.base_lr
        cos = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + cos) / 2.0


@dataclass(frozen=True)
class ScheduleInfo:
    """Registry entry: what the GUI needs to list a schedule and build its widgets."""

    name: str
    label: str
    description: str
    cls: type[Schedule]
    params: tuple[Param, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    formula: str = ""


SCHEDULES: dict[str, ScheduleInfo] = {
    info.name: info for info in (
        ScheduleInfo(
            "constant", "Constant", "Keep the learning rate fixed.", ConstantLR, (), {},
            "η = η₀"),
        ScheduleInfo(
            "step", "Step decay",
            "Multiply the learning rate by gamma every step_size epochs.", StepLR,
            (Param("step_size", "int", 10, "Epochs between two decays.", min=1),
             Param("gamma", "float", 0.1, "Factor applied at each decay.", min=0.0,
                   max=1.0, step=0.05)),
            {"step_size": 10, "gamma": 0.1}, "η = η₀ · γ^⌊epoch / step_size⌋"),
        ScheduleInfo(
            "exponential", "Exponential decay",
            "Multiply the learning rate by gamma after every epoch.", ExponentialLR,
            (Param("gamma", "float", 0.95, "Factor applied after each epoch.", min=0.0,
                   max=1.0, step=0.01),),
            {"gamma": 0.95}, "η = η₀ · γ^epoch"),
        ScheduleInfo(
            "cosine", "Cosine annealing",
            "Lower the learning rate along a half cosine from its start value to eta_min "
            "over T_max epochs.", CosineLR,
            (Param("T_max", "int", 50, "Epochs to go from the base rate down to eta_min.",
                   min=1),
             Param("eta_min", "float", 0.0, "Smallest learning rate, reached at T_max.",
                   min=0.0, step=1e-4)),
            {"T_max": 50, "eta_min": 0.0},
            "η = η_min + (η₀ − η_min)(1 + cos(π·epoch / T_max)) / 2"),
    )
}


def make_schedule(name: str, base_lr: float, **params: Any) -> Schedule:
    """Build the schedule registered as `name`; unknown names or bad values raise
    HyperparameterError (a ValueError) with a sentence listing the choices."""
    info = SCHEDULES.get(name)
    if info is None:
        raise HyperparameterError(
            f"There is no learning-rate schedule called {name!r}; "
            f"choose one of: {', '.join(SCHEDULES)}.")
    values = resolve_hyper(f"The {info.label} schedule", info.params, info.defaults, params)
    return info.cls(base_lr, **values)
