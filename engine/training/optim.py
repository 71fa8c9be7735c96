"""Optimizers over the flat parameter vector of a compiled program.

Every optimizer updates ``program.theta`` in place from ``program.grad`` with a handful
of vectorised numpy calls into preallocated buffers (no allocation per step), keeps the
dtype of theta, and follows the update rule of its torch.optim namesake exactly (same
order of operations; results agree to rounding). Hyperparameters are Python floats, so
float32 stays float32. Adam and AdamW on large vectors run one fused pass compiled with
numba when it is installed (`engine.training.fused`), with bit-identical results.

Notation: θ parameters, g gradient, α learning rate (``lr``), t step count (from 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.ops.base import Param
from engine.training import fused
from engine.training.schedules import (
    SCHEDULES,
    HyperparameterError,
    Schedule,
    ScheduleInfo,
    check_lr,
    make_schedule,
    resolve_hyper,
)

__all__ = [
    "OPTIMIZERS", "SCHEDULES", "SGD", "Adam", "AdamW", "HyperparameterError", "Optimizer",
    "OptimizerInfo", "RMSProp", "Schedule", "ScheduleInfo", "clip_grad_norm",
    "make_optimizer", "make_schedule", "regularization",
]


class Optimizer:
    """Base class: owns `theta` and `grad` (flat, same size and dtype) and a step count.

    `lr` is a plain attribute; a schedule sets it before each step. Other hyperparameters
    are attributes too (fixed in practice). After `step()`, `last_update` holds the update
    Δθ it applied, in a reused buffer: read it before the next step.
    """

    name: str = ""
    hyper_names: tuple[str, ...] = ()
    array_names: tuple[str, ...] = ()

    def __init__(self, theta: np.ndarray, grad: np.ndarray, lr: float, **hyper: Any):
        if not isinstance(theta, np.ndarray) or not isinstance(grad, np.ndarray):
            raise HyperparameterError("An optimizer needs numpy arrays for theta and grad.")
        if theta.ndim != 1 or grad.shape != theta.shape:
            raise HyperparameterError(
                f"theta and grad must be flat vectors of the same size, not shapes "
                f"{theta.shape} and {grad.shape}.")
        if theta.dtype not in (np.float32, np.float64) or grad.dtype != theta.dtype:
            raise HyperparameterError(
                f"theta and grad must both be float32 or both float64, not {theta.dtype} "
                f"and {grad.dtype}.")
        if not theta.flags.c_contiguous or not grad.flags.c_contiguous:
            raise HyperparameterError("theta and grad must be contiguous arrays.")
        self.theta = theta
        self.grad = grad
        self.lr = check_lr(lr)
        self.t = 0
        for key in self.hyper_names:
            setattr(self, key, hyper[key])
        self._delta = np.zeros_like(theta)
        self._tmp = np.zeros_like(theta)

    def _zeros(self) -> np.ndarray:
        return np.zeros_like(self.theta)

    @property
    def hyper(self) -> dict[str, Any]:
        """Current hyperparameters (without lr)."""
        return {k: getattr(self, k) for k in self.hyper_names}

    def step(self) -> None:
        """Update theta in place from grad (the update Δθ is then `last_update`)."""
        raise NotImplementedError

    def _weight_decayed_grad(self, wd: float) -> np.ndarray:
        """g + wd·θ in the scratch buffer (torch's coupled L2 weight decay), or g itself."""
        if not wd:
            return self.grad
        np.multiply(self.theta, wd, out=self._tmp)
        self._tmp += self.grad
        return self._tmp

    # -- state ---------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Live per-parameter state buffers aligned with theta (views, do not write)."""
        return {k: getattr(self, "_" + k) for k in self.array_names}

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    @property
    def last_update(self) -> np.ndarray:
        """Δθ applied by the last step (a reused buffer: copy it to keep it)."""
        return self._delta

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: JSON-able scalars plus array copies.

        Keys: "optimizer" (registry name), "class", "lr", "step", "hyper" (dict of
        scalars) and "arrays" (dict of 1-D numpy arrays aligned with theta).
        """
        return {
            "optimizer": self.name,
            "class": type(self).__name__,
            "lr": float(self.lr),
            "step": int(self.t),
            "hyper": {k: _jsonable(v) for k, v in self.hyper.items()},
            "arrays": {k: getattr(self, "_" + k).copy() for k in self.array_names},
            **self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore step count, buffers, lr and hyperparameters (as torch does).

        Raises HyperparameterError if the state belongs to another kind of optimizer or
        to a parameter vector of another size.
        """
        try:
            cls_name = state["class"]
            step = int(state["step"])
            lr = state["lr"]
            hyper = dict(state["hyper"])
            arrays = dict(state["arrays"])
        except (KeyError, TypeError, ValueError) as exc:
            raise HyperparameterError(
                f"This optimizer state is incomplete or damaged ({exc}).") from None
        if cls_name != type(self).__name__:
            raise HyperparameterError(
                f"Saved optimizer state is for {cls_name}, not {type(self).__name__}; "
                f"choose the same optimizer to resume training.")
        loaded: dict[str, np.ndarray] = {}
        for key in self.array_names:
            arr = np.asarray(arrays.get(key))
            if arr.shape != self.theta.shape:
                raise HyperparameterError(
                    f"Saved optimizer state {key!r} has shape {arr.shape} but the network "
                    f"has {self.theta.size} parameters; it was saved for another network.")
            loaded[key] = arr
        info = _INFO_BY_CLASS[type(self)]
        values = resolve_hyper(info.label, info.params, self.hyper,
                               {k: v for k, v in hyper.items() if k in self.hyper_names})
        self.lr = check_lr(lr)
        for key in self.hyper_names:
            setattr(self, key, values[key])
        for key, arr in loaded.items():
            np.copyto(getattr(self, "_" + key), arr, casting="unsafe")
        self.t = step
        self._load_extra_state(state)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}(n={self.theta.size}, lr={self.lr!r}, {hp}, t={self.t})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (torch.optim.SGD).

        g ← g + λθ                        (weight_decay λ)
        b ← g  on the first step, else  b ← μb + (1−τ)g   (momentum μ, dampening τ)
        g ← g + μb  if nesterov, else  g ← b
        θ ← θ − α·g
    """

    name = "sgd"
    hyper_names = ("momentum", "dampening", "nesterov", "weight_decay")
    array_names = ("momentum_buffer",)

    momentum: float
    dampening: float
    nesterov: bool
    weight_decay: float

    def __init__(self, theta: np.ndarray, grad: np.ndarray, lr: float, **hyper: Any):
        super().__init__(theta, grad, lr, **_resolve(SGD, hyper))
        _check_nesterov(self.momentum, self.dampening, self.nesterov)
        self._momentum_buffer = self._zeros()
        self._has_buffer = False

    def step(self) -> None:
        d, delta = self._weight_decayed_grad(self.weight_decay), self._delta
        mu = self.momentum
        if mu:
            buf = self._momentum_buffer
            if not self._has_buffer:
                np.copyto(buf, d)
                self._has_buffer = True
            else:
                buf *= mu
                if self.dampening:
                    np.multiply(d, 1.0 - self.dampening, out=delta)
                    buf += delta
                else:
                    buf += d
            if self.nesterov:
                np.multiply(buf, mu, out=delta)
                delta += d
                d = delta
            else:
                d = buf
        np.multiply(d, -self.lr, out=delta)
        self.theta += delta
        self.t += 1

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"momentum": self._momentum_buffer} if self.momentum else {}

    def _extra_state(self) -> dict[str, Any]:
        return {"has_momentum_buffer": self._has_buffer}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._has_buffer = bool(state.get("has_momentum_buffer", self.t > 0))


class RMSProp(Optimizer):
    """RMSProp (torch.optim.RMSprop).

        g ← g + λθ                                   (weight_decay λ)
        v ← ρv + (1−ρ)g²                             (alpha ρ)
        ḡ ← ρḡ + (1−ρ)g,  s ← √(v − ḡ²) + ε          (centered)   else  s ← √v + ε
        b ← μb + g/s,  θ ← θ − α·b                   (momentum μ > 0)
        θ ← θ − α·g/s                                (momentum 0)
    """

    name = "rmsprop"
    hyper_names = ("alpha", "eps", "momentum", "weight_decay", "centered")
    array_names = ("square_avg", "grad_avg", "momentum_buffer")

    alpha: float
    eps: float
    momentum: float
    weight_decay: float
    centered: bool

    def __init__(self, theta: np.ndarray, grad: np.ndarray, lr: float, **hyper: Any):
        super().__init__(theta, grad, lr, **_resolve(RMSProp, hyper))
        self._square_avg = self._zeros()
        self._grad_avg = self._zeros()
        self._momentum_buffer = self._zeros()
        self._avg = self._zeros()

    def step(self) -> None:
        g, delta, avg, v = (self._weight_decayed_grad(self.weight_decay), self._delta,
                            self._avg, self._square_avg)
        rho = self.alpha
        v *= rho
        np.multiply(g, g, out=delta)
        delta *= 1.0 - rho
        v += delta
        if self.centered:
            ga = self._grad_avg
            np.subtract(g, ga, out=delta)
            delta *= 1.0 - rho
            ga += delta
            np.multiply(ga, ga, out=avg)
            np.subtract(v, avg, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(v, out=avg)
        avg += self.eps
        np.divide(g, avg, out=delta)
        if self.momentum > 0:
            buf = self._momentum_buffer
            buf *= self.momentum
            buf += delta
            np.multiply(buf, -self.lr, out=delta)
        else:
            delta *= -self.lr
        self.theta += delta
        self.t += 1

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {"square_avg": self._square_avg}
        if self.centered:
            out["grad_avg"] = self._grad_avg
        if self.momentum > 0:
            out["momentum"] = self._momentum_buffer
        return out


class Adam(Optimizer):
    """Adam (torch.optim.Adam); weight_decay is L2 added to the gradient.

        g ← g + λθ                                   (weight_decay λ)
        m ← β₁m + (1−β₁)g
        v ← β₂v + (1−β₂)g²
        v̂ ← max(v̂, v) if amsgrad, else v̂ ← v
        θ ← θ − α/(1−β₁ᵗ) · m / (√v̂ / √(1−β₂ᵗ) + ε)
    """

    name = "adam"
    hyper_names = ("beta1", "beta2", "eps", "weight_decay", "amsgrad")
    array_names = ("m", "v", "v_max")

    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    amsgrad: bool

    def __init__(self, theta: np.ndarray, grad: np.ndarray, lr: float, **hyper: Any):
        super().__init__(theta, grad, lr, **_resolve(type(self), hyper))
        self._m = self._zeros()
        self._v = self._zeros()
        self._v_max = self._zeros()

    def _l2(self) -> float:
        return self.weight_decay

    def step(self) -> None:
        b1, b2 = self.beta1, self.beta2
        self.t += 1
        t = self.t
        step_size = self.lr / (1.0 - b1 ** t)
        bc2_sqrt = (1.0 - b2 ** t) ** 0.5
        decay = self._decoupled()
        # The compiled step leaves Δθ unwritten when `last_update` can recompute it from
        # m and v alone (not with decoupled decay, which needs θ from before the step):
        # writing it cost 4% of a 235k-parameter MLP's training step.
        self._pending_update = None
        if fused.adam_step(self.theta, self.grad, self._m, self._v, self._v_max, self._delta,
                           beta1=b1, beta2=b2, eps=self.eps, step_size=step_size,
                           bc2_sqrt=bc2_sqrt, l2=self._l2(), decay=decay,
                           amsgrad=self.amsgrad, write_delta=bool(decay)):
            if not decay:
                self._pending_update = {"v": self._v_max if self.amsgrad else self._v,
                                        "bc2_sqrt": bc2_sqrt, "eps": self.eps,
                                        "step_size": step_size}
            return
        g, delta, tmp, m, v = (self._weight_decayed_grad(self._l2()), self._delta,
                               self._tmp, self._m, self._v)
        # m ← m + (1−β₁)(g − m)   (torch's lerp_)
        np.subtract(g, m, out=delta)
        delta *= 1.0 - b1
        m += delta
        v *= b2
        np.multiply(g, g, out=delta)
        delta *= 1.0 - b2
        v += delta
        if self.amsgrad:
            np.maximum(self._v_max, v, out=self._v_max)
            v = self._v_max
        fused.adam_delta(m, v=v, delta=delta, bc2_sqrt=bc2_sqrt, eps=self.eps,
                         step_size=step_size)
        if decay:  # g (possibly in tmp) is no longer needed
            np.multiply(self.theta, decay, out=tmp)
            delta += tmp
        self.theta += delta

    _pending_update: dict[str, Any] | None = None  # what `last_update` needs of the step

    @property
    def last_update(self) -> np.ndarray:
        """Δθ applied by the last step (a reused buffer: copy it to keep it)."""
        pending, self._pending_update = self._pending_update, None
        if pending is not None:
            fused.adam_delta(self._m, delta=self._delta, **pending)
        return self._delta

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_update  # noqa: B018 (the last step's Δθ, from m and v before they change)
        super().load_state_dict(state)

    def _decoupled(self) -> float:
        """Factor −α·λ of decoupled weight decay added to Δθ (AdamW); 0 for Adam."""
        return 0.0

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {"m": self._m, "v": self._v}
        if self.amsgrad:
            out["v_max"] = self._v_max
        return out


class AdamW(Adam):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay.

        θ ← θ − αλθ                                  (weight_decay λ, default 0.01)
        then the Adam update without L2:
        m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
        θ ← θ − α/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)
    """

    name = "adamw"

    def _l2(self) -> float:
        return 0.0

    def _decoupled(self) -> float:
        return -self.lr * self.weight_decay


def _check_nesterov(momentum: float, dampening: float, nesterov: bool) -> None:
    if nesterov and (momentum <= 0 or dampening != 0):
        raise HyperparameterError(
            "Nesterov momentum needs a momentum above 0 and a dampening of 0.")


# -- registry ---------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerInfo:
    """Registry entry: what the GUI needs to list an optimizer and build its widgets."""

    name: str
    label: str
    description: str
    cls: type[Optimizer]
    params: tuple[Param, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.01  # suggested starting learning rate
    formula: str = ""


def _p_wd(default: float = 0.0) -> Param:
    return Param("weight_decay", "float", default,
                 "L2 penalty strength λ (adds λθ to the gradient).", min=0.0, step=1e-4)


_SGD_PARAMS = (
    Param("momentum", "float", 0.0, "Momentum μ: how much of the previous update to keep.",
          min=0.0, max=1.0, step=0.05),
    Param("dampening", "float", 0.0, "Dampening τ of the momentum (usually 0).",
          min=0.0, max=1.0, step=0.05),
    Param("nesterov", "bool", False, "Use Nesterov momentum (look ahead)."),
    _p_wd(),
)
_ADAM_PARAMS = (
    Param("beta1", "float", 0.9, "Decay β₁ of the running mean of gradients.",
          min=0.0, max=0.9999, step=0.01),
    Param("beta2", "float", 0.999, "Decay β₂ of the running mean of squared gradients.",
          min=0.0, max=0.99999, step=0.001),
    Param("eps", "float", 1e-8, "ε added to the denominator for stability.", min=0.0,
          step=1e-8),
)
_AMSGRAD = Param("amsgrad", "bool", False,
                 "Use the running maximum of v (AMSGrad variant).")


def _replace_default(p: Param, default: Any) -> Param:
    return Param(p.name, p.kind, default, p.help, p.min, p.max, p.choices, p.step)


OPTIMIZERS: dict[str, OptimizerInfo] = {
    info.name: info for info in (
        OptimizerInfo(
            "sgd", "SGD", "Plain gradient descent: step against the gradient.", SGD,
            _SGD_PARAMS, {"momentum": 0.0, "dampening": 0.0, "nesterov": False,
                          "weight_decay": 0.0}, 0.1, "θ ← θ − α·g"),
        OptimizerInfo(
            "momentum", "SGD + momentum",
            "Gradient descent that keeps a running velocity, smoothing noisy steps.", SGD,
            (_replace_default(_SGD_PARAMS[0], 0.9),) + _SGD_PARAMS[1:],
            {"momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
            0.05, "b ← μb + g;  θ ← θ − α·b"),
        OptimizerInfo(
            "rmsprop", "RMSProp",
            "Divides each step by a running root-mean-square of recent gradients.", RMSProp,
            (Param("alpha", "float", 0.99, "Decay ρ of the running mean of squared "
                   "gradients.", min=0.0, max=0.9999, step=0.01),
             Param("eps", "float", 1e-8, "ε added to the denominator for stability.",
                   min=0.0, step=1e-8),
             Param("momentum", "float", 0.0, "Momentum μ of the scaled step.", min=0.0,
                   max=1.0, step=0.05),
             _p_wd(),
             Param("centered", "bool", False,
                   "Divide by the variance instead of the raw second moment.")),
            {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0,
             "centered": False}, 0.01, "v ← ρv + (1−ρ)g²;  θ ← θ − α·g/(√v + ε)"),
        OptimizerInfo(
            "adam", "Adam",
            "Momentum plus per-parameter step sizes from running gradient statistics.",
            Adam, _ADAM_PARAMS + (_p_wd(), _AMSGRAD),
            {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
             "amsgrad": False}, 0.001,
            "m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  "
            "θ ← θ − α·m̂/(√v̂ + ε)"),
        OptimizerInfo(
            "adamw", "AdamW",
            "Adam with weight decay applied directly to the weights (decoupled).", AdamW,
            _ADAM_PARAMS + (
                Param("weight_decay", "float", 0.01,
                      "Decoupled decay λ: shrinks θ by αλθ each step.", min=0.0, step=1e-3),
                _AMSGRAD),
            {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01,
             "amsgrad": False}, 0.001,
            "θ ← θ − αλθ;  then Adam without L2"),
    )
}

# The canonical registry entry of each class (used to validate constructor arguments).
_INFO_BY_CLASS: dict[type[Optimizer], OptimizerInfo] = {
    SGD: OPTIMIZERS["sgd"], RMSProp: OPTIMIZERS["rmsprop"], Adam: OPTIMIZERS["adam"],
    AdamW: OPTIMIZERS["adamw"],
}


def _resolve(cls: type[Optimizer], hyper: dict[str, Any]) -> dict[str, Any]:
    """Defaults of `cls` overlaid with `hyper`, checked. Accepts torch's betas=(b1, b2)."""
    hyper = dict(hyper)
    if "betas" in hyper and issubclass(cls, Adam):
        betas = hyper.pop("betas")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise HyperparameterError(f"betas must be a pair (beta1, beta2), not {betas!r}.")
        hyper["beta1"], hyper["beta2"] = betas
    info = _INFO_BY_CLASS[cls]
    return resolve_hyper(info.label, info.params, info.defaults, hyper)


def make_optimizer(name: str, theta: np.ndarray, grad: np.ndarray, lr: float,
                   **hyper: Any) -> Optimizer:
    """Build the optimizer registered as `name` ("sgd", "momentum", "rmsprop", "adam",
    "adamw"); `hyper` overrides its defaults. Unknown names or bad values raise
    HyperparameterError (a ValueError) with a sentence listing the choices."""
    info = OPTIMIZERS.get(name)
    if info is None:
        raise HyperparameterError(
            f"There is no optimizer called {name!r}; choose one of: {', '.join(OPTIMIZERS)}.")
    values = dict(info.defaults)
    values.update(hyper)
    opt = info.cls(theta, grad, lr, **values)
    opt.name = info.name
    return opt


# -- gradient utilities -----------------------------------------------------------------
def clip_grad_norm(grad: np.ndarray, max_norm: float) -> float:
    """Scale `grad` in place so its 2-norm is at most `max_norm`; return the norm before.

    Same as torch.nn.utils.clip_grad_norm_ over all parameters: g ← g · min(1, c/(‖g‖+1e-6)).
    A NaN or infinite norm is returned and grad is left untouched (the trainer reports it).
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) \
            or not max_norm > 0:
        raise HyperparameterError(
            f"The gradient clipping norm must be a number above 0, not {max_norm!r}.")
    norm = math.sqrt(float(np.dot(grad, grad)))
    if not math.isfinite(norm):
        return norm
    coef = float(max_norm) / (norm + 1e-6)
    if coef < 1.0:
        grad *= coef
    return norm


def regularization(theta: np.ndarray, grad: np.ndarray, l1: float, l2: float,
                   mask: np.ndarray | None = None) -> float:
    """Add the gradient of an L1/L2 penalty to `grad` in place; return the penalty.

    Convention:  penalty = l1·Σ|θ| + l2·Σθ²,  gradient = l1·sign(θ) + 2·l2·θ.
    (So l2 = λ/2 matches an optimizer's weight_decay λ.) `mask` (bool, aligned with
    theta) limits both to the selected entries, typically weights and not biases.
    """
    for label, value in (("L1", l1), ("L2", l2)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise HyperparameterError(
                f"The {label} regularization strength must be a number of at least 0, "
                f"not {value!r}.")
    if not l1 and not l2:
        return 0.0
    if mask is not None:
        if mask.shape != theta.shape or mask.dtype != np.bool_:
            raise HyperparameterError(
                "The regularization mask must be a boolean array aligned with theta.")
        w = theta[mask]
        g = np.zeros_like(w)
    else:
        w = theta
        g = grad
    penalty = 0.0
    if l2:
        penalty += float(l2) * float(np.dot(w, w))
        if mask is None:
            g += (2.0 * l2) * w  # one temporary
        else:
            np.multiply(w, 2.0 * l2, out=g)
    if l1:
        penalty += float(l1) * float(np.abs(w).sum())
        g += float(l1) * np.sign(w)
    if mask is not None:
        grad[mask] += g
    return penalty
