"""Losses: prediction and target ports in, one scalar out (reduction mean or sum)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core import reductions
from engine.core.registry import register
from engine.errors import DataError, ShapeError
from engine.ops import cross_entropy_jit
from engine.ops._special import sigmoid
from engine.ops.base import Kernel, OpDef, Param, Port, fmt_shape

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

    @classmethod
    def formula_for(cls, params: dict[str, Any]) -> str:
        """With reduction "sum" the loss adds the per-element losses: Σ instead of the mean,
        and no division by N in the derivative."""
        if params.get("reduction", "mean") != "sum":
            return cls.formula
        return (cls.formula.replace("mean over samples", "Σ over samples")
                .replace("mean(", "Σ(").replace("/N", ""))

    def infer_shape(self, params, ins):
        p, t = ins["prediction"], ins["target"]
        if p != t:
            raise ShapeError(
                f"the prediction has shape {fmt_shape(p)} but the target has {fmt_shape(t)}; "
                "they must match"
            )
        return ()


class _PointwiseLossKernel(Kernel):
    """L = reduce(f(p − t)) over every element: forward keeps f′(p − t) as `local`."""

    def __init__(self, reduction: str):
        self.reduction = reduction

    def _reduce(self, losses_total, n: int, dtype) -> np.ndarray:
        self.scale = 1.0 / n if self.reduction == "mean" else 1.0
        return np.asarray(losses_total * self.scale, dtype=dtype)

    # dp = dL · f′(p − t) · scale,  dt = −dp
    def backward(self, gy):
        gp = self.local * (self.scale * gy)
        return (gp, -gp if self.needs_input_grad[1] else None)


class MSEKernel(_PointwiseLossKernel):
    def forward(self, p, t):
        diff = p - t
        self.local = 2.0 * diff  # f(d) = d², f′(d) = 2d
        return self._reduce(np.vdot(diff, diff), diff.size, p.dtype)


@register
class MSELoss(_Loss):
    id = "MSELoss"
    description = "Mean squared error: the average of (prediction − target)²."
    formula = "L = mean((p − t)²);  ∂L/∂p = 2(p − t)/N"

    def make_kernel(self, params, ins, out, dtype):
        return MSEKernel(params["reduction"])


class MAEKernel(_PointwiseLossKernel):
    def forward(self, p, t):
        diff = p - t
        self.local = np.sign(diff)  # f(d) = |d|, f′(d) = sign(d)
        return self._reduce(np.abs(diff).sum(), diff.size, p.dtype)


@register
class MAELoss(_Loss):
    id = "MAELoss"
    description = "Mean absolute error: the average of |prediction − target|."
    formula = "L = mean(|p − t|);  ∂L/∂p = sign(p − t)/N"

    def make_kernel(self, params, ins, out, dtype):
        return MAEKernel(params["reduction"])


class HuberKernel(_PointwiseLossKernel):
    def __init__(self, reduction: str, delta: float):
        super().__init__(reduction)
        self.delta = float(delta)

    def forward(self, p, t):
        d = p - t
        a = np.abs(d)
        self.local = np.clip(d, -self.delta, self.delta)  # f′(d) = clip(d, −δ, δ)
        losses = np.where(a < self.delta, 0.5 * d * d, self.delta * (a - 0.5 * self.delta))
        return self._reduce(losses.sum(), d.size, p.dtype)


@register
class HuberLoss(_Loss):
    id = "HuberLoss"
    description = "Squared error for small mistakes, absolute error for large ones (robust)."
    formula = ("L = mean(½d² if |d| < δ else δ(|d| − ½δ)), d = p − t;  "
               "∂L/∂p = clip(d, −δ, δ)/N")
    params = _Loss.params + (
        Param("delta", "float", 1.0, "Size δ of a mistake where the loss turns from squared "
              "to linear.", min=1e-6, max=1e6),
    )

    def make_kernel(self, params, ins, out, dtype):
        return HuberKernel(params["reduction"], params["delta"])


class BCEKernel(Kernel):
    def __init__(self, reduction: str):
        self.reduction = reduction

    def forward(self, p, t):
        self.p, self.t = p, t
        with np.errstate(divide="ignore"):  # log 0 = −inf, then clamped like PyTorch
            self.logp = np.maximum(np.log(p), -100.0)
            self.log1mp = np.maximum(np.log1p(-p), -100.0)
        self.scale = 1.0 / p.size if self.reduction == "mean" else 1.0
        total = -(t * self.logp + (1.0 - t) * self.log1mp).sum()
        return np.asarray(total * self.scale, dtype=p.dtype)

    # dp = dL · (p − t) / max(p(1 − p), 1e-12) / N,  dt = dL · (log(1 − p) − log p) / N
    def backward(self, gy):
        p, t = self.p, self.t
        s = self.scale * gy
        gp = (p - t) / np.maximum(p * (1.0 - p), 1e-12) * s
        gt = (self.log1mp - self.logp) * s if self.needs_input_grad[1] else None
        return (gp, gt)


class BCELogitsKernel(Kernel):
    def __init__(self, reduction: str):
        self.reduction = reduction

    def forward(self, z, t):
        self.z, self.t = z, t
        self.scale = 1.0 / z.size if self.reduction == "mean" else 1.0
        # max(z, 0) − z·t + log(1 + e^(−|z|)) never overflows
        losses = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        return np.asarray(losses.sum() * self.scale, dtype=z.dtype)

    # dz = dL · (σ(z) − t)/N,  dt = −dL · z/N
    def backward(self, gy):
        z = self.z
        s = self.scale * gy
        gz = (sigmoid(z) - self.t) * s
        return (gz, -z * s if self.needs_input_grad[1] else None)


@register
class BCELoss(_Loss):
    id = "BCELoss"
    description = "Binary cross-entropy: for yes/no targets in [0, 1] and predicted probabilities."
    formula = ("L = −mean(t·log p + (1 − t)·log(1 − p));  ∂L/∂p = (p − t)/(p(1 − p))/N;  "
               "from logits z: p = σ(z), ∂L/∂z = (σ(z) − t)/N")
    params = _Loss.params + (
        Param("from_logits", "bool", False, "The prediction is a raw score (logit) rather than a "
              "probability; the sigmoid is applied inside the loss, which is more stable."),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        text = super().summary(params)
        return text + " (logits)" if params.get("from_logits") else text

    def make_kernel(self, params, ins, out, dtype):
        if params["from_logits"]:
            return BCELogitsKernel(params["reduction"])
        return BCEKernel(params["reduction"])


class CrossEntropyKernel(Kernel):
    def __init__(self, reduction: str, index_target: bool):
        self.reduction = reduction
        self.index_target = index_target

    def forward(self, z, t):
        self.zshape = z.shape
        if z.ndim == 3:  # a sequence: every position is one sample
            z = z.reshape(-1, z.shape[-1])
            t = t.reshape(len(z), -1)
        n, c = z.shape
        self.scale = 1.0 / n if self.reduction == "mean" else 1.0
        if self.index_target and self.large_network:
            compiled = cross_entropy_jit.forward(z, t.reshape(n))
            if compiled is not None:
                total, self.prob, self.cls, bad = compiled
                if bad >= 0:
                    raise self._not_a_class(t.reshape(n)[bad], c)
                return np.asarray(total * self.scale, dtype=z.dtype)
        shifted = z - reductions.last_axis_max(z)
        e = np.exp(shifted)
        se = reductions.last_axis_sums(e)
        log_se = np.log(se)  # log-softmax = shifted − log_se
        self.prob = np.divide(e, se, out=e)
        if self.index_target:
            idx = t.reshape(n)
            with np.errstate(invalid="ignore"):
                cls = idx.astype(np.int64)
            # Viewed unsigned, a negative index (or NaN's conversion) is ≥ c as well.
            if (cls.view(np.uint64) >= c).any() or (cls != idx).any():
                raise self._not_a_class(idx[(cls != idx) | (cls < 0) | (cls >= c)][0], c)
            self.cls = cls
            # Σ −log-softmax at the classes, without forming the whole log-softmax
            total = log_se.sum() - shifted[np.arange(n), cls].sum()
        else:
            logp = shifted - log_se
            self.t, self.logp = t, logp
            total = -(t * logp).sum()
        return np.asarray(total * self.scale, dtype=z.dtype)

    @staticmethod
    def _not_a_class(value: float, c: int) -> DataError:
        return DataError(
            f"CrossEntropyLoss got the class index {value:g}, but with {c} outputs the "
            f"classes are the whole numbers 0 to {c - 1}. Check the target column or "
            "the number of units of the last layer.")

    # dz = dL · (softmax(z)·Σt − t)/N (one-hot t for class indices),  dt = −dL · log softmax(z)/N
    def backward(self, gy):
        s = self.scale * gy
        if self.index_target:
            gz = cross_entropy_jit.backward(self.prob, self.cls, s) if self.large_network else None
            if gz is not None:
                return (gz.reshape(self.zshape), None)
            gz = self.prob.copy()
            gz[np.arange(len(gz)), self.cls] -= 1.0
            return ((gz * s).reshape(self.zshape), None)
        t = self.t
        gz = (self.prob * t.sum(axis=1, keepdims=True) - t) * s
        gt = -self.logp * s if self.needs_input_grad[1] else None
        if len(self.zshape) == 3:
            return (gz.reshape(self.zshape), None if gt is None else gt.reshape(self.zshape))
        return (gz, gt)


@register
class CrossEntropyLoss(_Loss):
    id = "CrossEntropyLoss"
    description = "Cross-entropy for classification: the prediction holds one raw score per class."
    formula = ("L = −mean over samples (and positions) of log softmax(z)[class];  "
               "∂L/∂z = (softmax(z) − onehot(class))/N")
    inputs = (Port("prediction", "One raw score (logit) per class, shape (batch, classes), or "
                   "per position of a sequence, (batch, T, classes)."),
              Port("target", "The class index (0, 1, …) per sample (or per position, "
                   "(batch, T)), or one probability per class (one-hot)."))

    def infer_shape(self, params, ins):
        p, t = ins["prediction"], ins["target"]
        if len(p) == 3 and p[0] is None and None not in p[1:]:
            if p[2] < 2:
                raise ShapeError(f"the prediction has shape {fmt_shape(p)}: cross-entropy "
                                 "needs at least 2 classes")
            if t not in ((None, p[1]), p):
                raise ShapeError(
                    f"the prediction has shape {fmt_shape(p)} but the target has {fmt_shape(t)};"
                    f" the target must hold a class index per position, (batch, {p[1]}), or "
                    f"one value per class, {fmt_shape(p)}")
            return ()
        if len(p) != 2 or p[0] is not None:
            raise ShapeError(
                f"the prediction has shape {fmt_shape(p)} but CrossEntropyLoss needs one score "
                "per class, shape (batch, classes) or (batch, T, classes); put a Flatten or "
                "Dense before it"
            )
        if p[1] < 2:
            raise ShapeError(
                f"the prediction has shape {fmt_shape(p)}: cross-entropy needs at least 2 "
                "classes; for a single yes/no output use BCELoss with from_logits"
            )
        if t not in ((None,), (None, 1), p):
            raise ShapeError(
                f"the prediction has shape {fmt_shape(p)} but the target has {fmt_shape(t)}; "
                f"the target must hold a class index per sample, (batch, 1), or one value per "
                f"class, {fmt_shape(p)}"
            )
        return ()

    def make_kernel(self, params, ins, out, dtype):
        return CrossEntropyKernel(params["reduction"], ins["target"] != ins["prediction"])
