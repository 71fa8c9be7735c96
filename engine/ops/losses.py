"""Losses: prediction and target ports in, one scalar out (reduction mean or sum)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.ops.base import Kernel, OpDef, Param, Port, fmt_shape
from engine.registry import register

REDUCTIONS = ("mean", "sum")


class _Loss(OpDef):
    category = "Losses"
    inputs = (Port("prediction", "What the network predicts."),
              Port("target", "What it should have predicted."))
    is_loss = True
    params = (Param("reduction", "choice", "mean", "Average or add up the per-element losses.",
                    choices=REDUCTIONS),)

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return cls.id if params.get("reduction", "mean") == "mean" else f"{cls.id} (sum)"

    def infer_shape(self, params, ins):
        p, t = ins["prediction"], ins["target"]
        if p != t:
            raise ShapeError(
                f"the prediction has shape {fmt_shape(p)} but the target has {fmt_shape(t)}; "
                "they must match"
            )
        return ()


class MSEKernel(Kernel):
    def __init__(self, reduction: str):
        self.reduction = reduction

    def forward(self, p, t):
        self.diff = p - t
        self.scale = 1.0 / self.diff.size if self.reduction == "mean" else 1.0
        return np.asarray(np.vdot(self.diff, self.diff) * self.scale, dtype=p.dtype)

    # dp = dL · 2(p − t)/N,  dt = −dp
    def backward(self, gy):
        gp = self.diff * (2.0 * self.scale * gy)
        return (gp, -gp if self.needs_input_grad[1] else None)


@register
class MSELoss(_Loss):
    id = "MSELoss"
    description = "Mean squared error: the average of (prediction − target)²."
    formula = "L = mean((p − t)²);  ∂L/∂p = 2(p − t)/N"

    def make_kernel(self, params, ins, out, dtype):
        return MSEKernel(params["reduction"])
