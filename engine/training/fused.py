"""One-pass Adam/AdamW kernel compiled with numba (see engine.core.jit), for large networks.

The numpy update in `optim.Adam.step` makes about ten passes over memory; this kernel reads
θ, g, m, v once and writes them back once (the update Δθ itself only when asked: a training
step that nobody reads it after saves a sixth of the traffic); on millions of parameters it
runs in chunks on several threads (`engine.core.chunked`).
It computes exactly the numpy path's operations in the same order and in theta's dtype (no
fast-math), so results are bit-identical and the torch-parity tests hold for both paths.
"""

from __future__ import annotations

import numpy as np

from engine.core import chunked, jit


def _make_adam(numba, write_delta: bool):
    # write_delta is a constant of the compiled loop: tested inside it (as an argument), it
    # made the no-Δθ step slower than writing Δθ (the loop no longer vectorised)
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def adam(theta, grad, m, v, v_max, delta, c1, b2, c2, bc2, eps, neg_step, l2, decay,
             amsgrad):  # pragma: no cover - compiled; checked against the numpy path
        for i in numba.prange(theta.size):
            g = grad[i]
            if l2 != 0:
                g = theta[i] * l2 + g
            mi = m[i] + (g - m[i]) * c1
            m[i] = mi
            vi = v[i] * b2 + (g * g) * c2
            v[i] = vi
            if amsgrad:
                w = v_max[i]
                if w > vi or w != w:  # np.maximum: NaN wins
                    vi = w
                v_max[i] = vi
            d = mi / (np.sqrt(vi) / bc2 + eps) * neg_step
            if decay != 0:
                d = d + theta[i] * decay
            if write_delta:
                delta[i] = d
            theta[i] += d

    return adam


def _build_adam(numba):
    return _make_adam(numba, True)


def _build_adam_keeping_no_delta(numba):
    return _make_adam(numba, False)


def _build_adam_delta(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def adam_delta(m, v, delta, bc2, eps, neg_step):  # pragma: no cover - compiled
        for i in numba.prange(m.size):
            delta[i] = m[i] / (np.sqrt(v[i]) / bc2 + eps) * neg_step

    return adam_delta


def adam_step(theta: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
              v_max: np.ndarray, delta: np.ndarray, *, beta1: float, beta2: float,
              eps: float, step_size: float, bc2_sqrt: float, l2: float, decay: float,
              amsgrad: bool, write_delta: bool = True) -> bool:
    """One Adam/AdamW step in place; False (nothing done) when the numpy path must run.

    `l2` is the coupled weight decay added to the gradient (Adam), `decay` the factor
    −α·λ of the decoupled one (AdamW); scalars are rounded to theta's dtype first, as
    numpy does when it multiplies an array by a Python float. Without `write_delta` the
    update is not stored in `delta` (`adam_delta` can recompute it from m and v).
    """
    if not jit.worth_it(theta.size):
        return False
    adam = jit.kernel(_build_adam if write_delta else _build_adam_keeping_no_delta)
    f = theta.dtype.type
    with jit.LOCK:
        chunked.run(adam, (theta, grad, m, v, v_max, delta),
                    (f(1.0 - beta1), f(beta2), f(1.0 - beta2), f(bc2_sqrt), f(eps),
                     f(-step_size), f(l2), f(decay), bool(amsgrad)))
    return True


def adam_delta(m: np.ndarray, *, v: np.ndarray, delta: np.ndarray, bc2_sqrt: float,
               eps: float, step_size: float) -> None:
    """delta ← m / (√v / bc2_sqrt + ε) · (−step_size): the update of an Adam step without
    decoupled decay, from the m and v (v̂ for AMSGrad) it left, bit for bit as the compiled
    step computed it (the numpy step computes its update here too)."""
    f = m.dtype.type
    kernel = jit.kernel(_build_adam_delta) if jit.worth_it(m.size) else None
    if kernel is not None:
        with jit.LOCK:
            chunked.run(kernel, (m, v, delta), (f(bc2_sqrt), f(eps), f(-step_size)))
        return
    np.sqrt(v, out=delta)
    delta /= bc2_sqrt
    delta += eps
    np.divide(m, delta, out=delta)
    delta *= -step_size
