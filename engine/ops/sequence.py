"""Sequence and attention blocks: Embedding, LayerNorm, MatMul, Transpose, MultiHeadAttention.

A sequence is laid out (batch, T, d): T positions (characters, tokens) of d features each,
as PyTorch's ``batch_first`` layout.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.core import reductions
from engine.core.registry import register
from engine.errors import DataError, ShapeError
from engine.ops.base import (
    Kernel,
    OpDef,
    Param,
    Port,
    broadcast_shapes,
    fmt_shape,
    unbroadcast,
)
from engine.ops.layers import init_weight, rows


def class_indices(x: np.ndarray, count: int, what: str) -> np.ndarray:
    """Whole numbers 0..count−1 stored as floats → int64, or DataError naming the bad one."""
    with np.errstate(invalid="ignore"):
        ids = x.astype(np.int64)
    bad = (ids != x) | (ids < 0) | (ids >= count)
    if bad.any():
        raise DataError(
            f"{what} got the index {x[bad].ravel()[0]:g}, but the indices must be the whole "
            f"numbers 0 to {count - 1}. Check the data or the size setting of the node."
        )
    return ids


# -- Embedding ------------------------------------------------------------------------------

# Vocabulary × positions up to which Embedding's gradient is a product with a one-hot matrix.
ONE_HOT_MAX = 1 << 20


class EmbeddingKernel(Kernel):
    def __init__(self, vocab: int):
        self.vocab = vocab

    def forward(self, x):
        self.ids = class_indices(x, self.vocab, "Embedding")
        return self.w["weight"][self.ids]

    # dW[i] = Σ of ∂L/∂y over the positions holding id i; the ids get no gradient
    def backward(self, gy):
        g = self.g["weight"]
        ids = self.ids.reshape(-1)
        rows = gy.reshape(-1, g.shape[1])
        if len(g) * len(ids) <= ONE_HOT_MAX:
            # a small vocabulary (characters): one product with the ids' one-hot matrix, which
            # BLAS runs faster than any scatter (the tiny GPT's 62 × 1,024: 127 → 65 µs)
            one_hot = np.zeros((len(g), len(ids)), dtype=g.dtype)
            one_hot[ids, np.arange(len(ids))] = 1.0
            np.matmul(one_hot, rows, out=g)
            return (None,)
        g.fill(0.0)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        if len(starts) * 8 > len(ids):  # mostly distinct ids: the scatter is as quick
            np.add.at(g, ids, rows)
            return (None,)
        # Few distinct ids (characters): each id's rows summed in their order of appearance
        # by one reduction, the same float results as np.add.at's slow scatter.
        grouped = rows[order]
        ends = np.r_[starts[1:], len(ids)]
        for start, end in zip(starts.tolist(), ends.tolist()):
            grouped[start:end].sum(axis=0, out=g[sorted_ids[start]])
        return (None,)


@register
class Embedding(OpDef):
    id = "Embedding"
    category = "Layers"
    description = "Looks up a learnable vector for each whole-number id (a character, a word)."
    formula = "y[…] = W[x[…]];  ∂L/∂W[i] = Σ over positions with x = i of ∂L/∂y;  ids: no gradient"
    inputs = (Port("in", "Whole-number ids 0 … size−1, e.g. shape (batch, T)."),)
    learnable = True
    params = (
        Param("size", "int", 64, "Number of different ids (the vocabulary size).", min=1,
              max=1_000_000),
        Param("dim", "int", 32, "Length of each id's vector.", min=1, max=100_000),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return f"Embedding {params.get('size', 64)}→{params.get('dim', 32)}"

    def infer_shape(self, params, ins):
        x = ins["in"]
        if len(x) == 0 or x[0] is not None:
            raise ShapeError(f"Embedding needs a batch of ids, shape (batch, …), but gets "
                             f"{fmt_shape(x)}")
        return (*x, int(params["dim"]))

    def param_shapes(self, params, ins):
        return {"weight": (int(params["size"]), int(params["dim"]))}

    def init_param(self, name, shape, params, ins, rng):
        return rng.normal(0.0, 1.0, size=shape)  # as torch.nn.Embedding

    def make_kernel(self, params, ins, out, dtype):
        return EmbeddingKernel(int(params["size"]))


# -- LayerNorm ------------------------------------------------------------------------------

class LayerNormKernel(Kernel):
    def __init__(self, eps: float, affine: bool):
        self.eps, self.affine = float(eps), affine

    # Row sums and the parameters' column sums are products with ones (engine.core.reductions):
    # numpy's reductions over the GPT's 48-wide rows took 40% of LayerNorm's time.
    def forward(self, x):
        xc = x - reductions.last_axis_means(x)
        var = reductions.last_axis_means(xc * xc)
        var += self.eps
        self.invstd = invstd = np.sqrt(var, out=var)
        np.divide(1.0, invstd, out=invstd)
        self.xhat = xhat = np.multiply(xc, invstd, out=xc)
        if not self.affine:
            return xhat
        return xhat * self.w["weight"] + self.w["bias"]

    # dγ = Σ dy·x̂,  dβ = Σ dy;  dx = (g − mean(g) − x̂·mean(g·x̂))/σ with g = dy·γ
    def backward(self, gy):
        xhat = self.xhat
        gx = gy * xhat
        if self.affine:
            self.g["weight"][...] = reductions.sums_over_rows(gx)
            self.g["bias"][...] = reductions.sums_over_rows(gy)
            gy = gy * self.w["weight"]
            np.multiply(gy, xhat, out=gx)
        if not self.needs_input_grad[0]:
            return (None,)
        mean_g = reductions.last_axis_means(gy)
        mean_gx = reductions.last_axis_means(gx)
        np.multiply(xhat, mean_gx, out=gx)
        dx = gy - mean_g
        dx -= gx
        dx *= self.invstd
        return (dx,)


@register
class LayerNorm(OpDef):
    id = "LayerNorm"
    category = "Layers"
    description = "Normalises each sample's (or position's) features to mean 0 and variance 1."
    formula = ("x̂ = (x − μ)/√(σ² + ε) over the last axis,  y = γ·x̂ + β;  ∂L/∂x = (g − mean(g) "
               "− x̂·mean(g·x̂))/σ with g = γ·∂L/∂y,  ∂L/∂γ = Σ ∂L/∂y·x̂,  ∂L/∂β = Σ ∂L/∂y")
    params = (
        Param("eps", "float", 1e-5, "Small number added to the variance to avoid dividing by 0.",
              min=1e-12, max=1.0),
        Param("affine", "bool", True, "Learn a scale γ and shift β per feature."),
    )

    learnable = True

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return "LayerNorm"

    def infer_shape(self, params, ins):
        x = ins["in"]
        if len(x) < 2 or x[-1] is None:
            raise ShapeError(f"LayerNorm normalises the last axis of (batch, …, features), but "
                             f"gets {fmt_shape(x)}")
        return x

    def param_shapes(self, params, ins):
        if not params["affine"]:
            return {}
        d = int(self.infer_shape(params, ins)[-1])
        return {"weight": (d,), "bias": (d,)}

    def init_param(self, name, shape, params, ins, rng):
        return np.ones(shape) if name == "weight" else np.zeros(shape)

    def make_kernel(self, params, ins, out, dtype):
        return LayerNormKernel(params["eps"], bool(params["affine"]))


# -- MatMul and Transpose ---------------------------------------------------------------------

def _swap_last(shape):
    return (*shape[:-2], shape[-1], shape[-2])


def _t(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(-1, -2)


class MatMulKernel(Kernel):
    def __init__(self, ta: bool, tb: bool):
        self.ta, self.tb = ta, tb

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        self.a = _t(a) if self.ta else a
        self.b = _t(b) if self.tb else b
        return np.matmul(self.a, self.b)

    # A·B:  dA = dy·Bᵀ,  dB = Aᵀ·dy  (transposed back, summed over broadcast batch axes)
    def backward(self, gy):
        na, nb = self.needs_input_grad
        ga = gb = None
        if na:
            ga = np.matmul(gy, _t(self.b))
            ga = unbroadcast(_t(ga) if self.ta else ga, self.sa)
        if nb:
            gb = np.matmul(_t(self.a), gy)
            gb = unbroadcast(_t(gb) if self.tb else gb, self.sb)
        return (ga, gb)


@register
class MatMul(OpDef):
    id = "MatMul"
    category = "Element-wise/Merge"
    description = "Matrix product of the last two axes (batched), e.g. queries × keysᵀ."
    formula = "y = A·B over the last two axes;  ∂L/∂A = ∂L/∂y·Bᵀ,  ∂L/∂B = Aᵀ·∂L/∂y"
    inputs = (Port("a", "Left matrix (…, n, k)."), Port("b", "Right matrix (…, k, m)."))
    params = (
        Param("transpose_a", "bool", False, "Swap the last two axes of a first."),
        Param("transpose_b", "bool", False, "Swap the last two axes of b first (A·Bᵀ)."),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        a = "Aᵀ" if params.get("transpose_a") else "A"
        b = "Bᵀ" if params.get("transpose_b") else "B"
        return f"MatMul {a}·{b}"

    def infer_shape(self, params, ins):
        a, b = ins["a"], ins["b"]
        for name, s in (("a", a), ("b", b)):
            if len(s) < 2:
                raise ShapeError(f"MatMul needs matrices, but input {name} has shape "
                                 f"{fmt_shape(s)}")
        a2 = _swap_last(a) if params["transpose_a"] else a
        b2 = _swap_last(b) if params["transpose_b"] else b
        if a2[-1] is None or b2[-2] is None or a2[-1] != b2[-2]:
            raise ShapeError(
                f"MatMul multiplies (…, n, k) by (…, k, m), but gets {fmt_shape(a2)} and "
                f"{fmt_shape(b2)} (after the transposes); the inner sizes must match")
        if None in (a2[-2], b2[-1]):
            raise ShapeError("MatMul cannot multiply along the batch axis; give the inputs "
                             "at least one more axis")
        lead = broadcast_shapes(a2[:-2], b2[:-2], "MatMul inputs")
        if None in lead[1:]:
            raise ShapeError(f"the MatMul inputs {fmt_shape(a)} and {fmt_shape(b)} would move "
                             "the batch away from the first axis")
        return (*lead, a2[-2], b2[-1])

    def make_kernel(self, params, ins, out, dtype):
        return MatMulKernel(bool(params["transpose_a"]), bool(params["transpose_b"]))


def transpose_perm(params: dict[str, Any], x) -> tuple[int, ...]:
    """The numpy axes permutation of a Transpose node (also used by the exporters)."""
    batched = len(x) > 0 and x[0] is None
    first = 1 if batched else 0
    n = len(x) - first
    axes = [int(a) for a in (params.get("axes") or [])]
    if not axes:
        if n < 2:
            raise ShapeError(f"Transpose needs at least two axes besides the batch, but gets "
                             f"{fmt_shape(x)}")
        perm = list(range(n))
        perm[-1], perm[-2] = perm[-2], perm[-1]
    else:
        if sorted(axes) != list(range(1, n + 1)):
            raise ShapeError(
                f"'axes' must list each of the axes 1 … {n} of the input {fmt_shape(x)} once "
                f"(the batch stays first), not {axes}")
        perm = [a - 1 for a in axes]
    return tuple(range(first)) + tuple(p + first for p in perm)


class TransposeKernel(Kernel):
    def __init__(self, perm: tuple[int, ...]):
        self.perm = perm
        self.inverse = tuple(int(i) for i in np.argsort(perm))

    def forward(self, x):
        return x.transpose(self.perm)

    # dx = dy with the axes put back
    def backward(self, gy):
        return (gy.transpose(self.inverse),)


@register
class Transpose(OpDef):
    id = "Transpose"
    category = "Element-wise/Merge"
    description = "Reorders the axes of each sample (permute), e.g. (T, d) → (d, T)."
    formula = "y = x with its axes permuted;  ∂L/∂x = ∂L/∂y with the axes put back"
    params = (Param("axes", "shape", [], "New order of the per-sample axes, numbered from 1 "
                    "(the batch stays first): [2, 1] swaps the two axes of a (batch, T, d) "
                    "input. Empty swaps the last two axes."),)

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        axes = params.get("axes") or []
        return "Transpose" if not axes else "Permute " + ",".join(str(a) for a in axes)

    def infer_shape(self, params, ins):
        x = ins["in"]
        return tuple(x[p] for p in transpose_perm(params, x))

    def make_kernel(self, params, ins, out, dtype):
        return TransposeKernel(transpose_perm(params, ins["in"]))


# -- MultiHeadAttention --------------------------------------------------------------------------

def softmax_last(s: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; −inf entries (masked) get probability 0."""
    e = np.subtract(s, reductions.last_axis_max(s))
    np.exp(e, out=e)
    e /= reductions.last_axis_sums(e)
    return e


def causal_mask(t_q: int, t_k: int) -> np.ndarray:
    """True where key position j lies after query position i (j > i): hidden when causal."""
    return np.triu(np.ones((t_q, t_k), dtype=bool), k=1)


class MultiHeadAttentionKernel(Kernel):
    def __init__(self, heads: int, causal: bool, bias: bool):
        self.heads, self.causal, self.bias = heads, causal, bias
        self.attn_grad: np.ndarray | None = None

    def forward(self, x):
        n, t, d = x.shape
        h = self.heads
        dh = d // h
        self.x = x
        qkv = rows(x) @ self.w["in_proj_weight"].T  # one (n·t, d) product, not n of them
        if self.bias:
            qkv += self.w["in_proj_bias"]
        # (3, n, h, t, dh): queries, keys and values of every head
        qkv = qkv.reshape(n, t, 3, h, dh).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        self.q, self.k, self.v = q, k, v
        self.scale = 1.0 / math.sqrt(dh)
        s = np.matmul(q, _t(k))
        s *= self.scale
        if self.causal:
            s += self._hidden(t, s.dtype)
        self.attn = softmax_last(s)  # (n, h, t, t): what each position looks at
        o = np.matmul(self.attn, v).transpose(0, 2, 1, 3).reshape(n * t, d)
        self.o = o
        y = o @ self.w["out_proj_weight"].T
        if self.bias:
            y += self.w["out_proj_bias"]
        return y.reshape(n, t, d)

    def _hidden(self, t: int, dtype) -> np.ndarray:
        """0 where position i may look at j, −∞ above the diagonal (added to the scores:
        one pass, where boolean-mask assignment takes several)."""
        mask = getattr(self, "_mask", None)
        if mask is None or mask.shape != (t, t) or mask.dtype != dtype:
            self._mask = mask = np.where(causal_mask(t, t), -np.inf, 0.0).astype(dtype)
        return mask

    # o = A·V with A = softmax(Q·Kᵀ/√dₕ);  dA = dO·Vᵀ,  dV = Aᵀ·dO,
    # dS = A·(dA − Σ dA·A)/√dₕ,  dQ = dS·K,  dK = dSᵀ·Q;  then the projections as in Dense
    def backward(self, gy):
        n, t, d = gy.shape
        h = self.heads
        dh = d // h
        gy2 = gy.reshape(-1, d)
        np.matmul(gy2.T, self.o, out=self.g["out_proj_weight"])
        if self.bias:
            self.g["out_proj_bias"][...] = reductions.sums_over_rows(gy2)
        go = (gy2 @ self.w["out_proj_weight"]).reshape(n, t, h, dh).transpose(0, 2, 1, 3)
        a = self.attn
        ga = np.matmul(go, _t(self.v))
        self.attn_grad = ga
        gv = np.matmul(_t(a), go)
        gs = a * (ga - reductions.last_axis_sums(ga * a))
        gs *= self.scale
        gq = np.matmul(gs, self.k)
        gk = np.matmul(_t(gs), self.q)
        # back to the projection's (n·t, 3·d) rows: one strided copy per part (stacking the
        # three and reshaping a 5-axis transpose copied element by element, 5× slower)
        gqkv = np.empty((n, t, 3, h, dh), dtype=gq.dtype)
        for part, grad in enumerate((gq, gk, gv)):
            gqkv[:, :, part] = grad.transpose(0, 2, 1, 3)
        gqkv = gqkv.reshape(n * t, 3 * d)
        np.matmul(gqkv.T, self.x.reshape(-1, d), out=self.g["in_proj_weight"])
        if self.bias:
            self.g["in_proj_bias"][...] = reductions.sums_over_rows(gqkv)
        if not self.needs_input_grad[0]:
            return (None,)
        return ((gqkv @ self.w["in_proj_weight"]).reshape(n, t, d),)


@register
class MultiHeadAttention(OpDef):
    id = "MultiHeadAttention"
    category = "Layers"
    description = ("Self-attention: every position mixes the values of the positions it "
                   "attends to, with several heads in parallel.")
    formula = ("Q, K, V = x·W_qᵀ, x·W_kᵀ, x·W_vᵀ split into heads;  A = softmax(Q·Kᵀ/√dₕ "
               "[+ causal mask −∞ above the diagonal]);  y = concat_heads(A·V)·W_oᵀ + b_o;  "
               "∂L/∂S = A·(∂L/∂A − Σⱼ Aⱼ·∂L/∂Aⱼ)/√dₕ")
    learnable = True
    inputs = (Port("in", "A sequence (batch, T, d)."),)
    params = (
        Param("heads", "int", 4, "Number of attention heads; the feature size d must divide "
              "by it.", min=1, max=256),
        Param("causal", "bool", True, "Each position may only look at itself and earlier "
              "positions (needed to predict the next character)."),
        Param("bias", "bool", True, "Add learnable biases to the projections."),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        text = f"Attention ×{params.get('heads', 4)}"
        return text + (" causal" if params.get("causal", True) else "")

    def infer_shape(self, params, ins):
        x = ins["in"]
        if len(x) != 3 or x[0] is not None or None in x[1:]:
            raise ShapeError(f"MultiHeadAttention takes a sequence (batch, T, d), but gets "
                             f"{fmt_shape(x)}")
        h = int(params["heads"])
        if x[2] % h:
            raise ShapeError(f"the feature size {x[2]} of {fmt_shape(x)} does not divide into "
                             f"{h} heads; pick a number of heads that divides it")
        return x

    def param_shapes(self, params, ins):
        d = int(self.infer_shape(params, ins)[2])
        shapes = {"in_proj_weight": (3 * d, d)}
        if params["bias"]:
            shapes["in_proj_bias"] = (3 * d,)
        shapes["out_proj_weight"] = (d, d)
        if params["bias"]:
            shapes["out_proj_bias"] = (d,)
        return shapes

    def init_param(self, name, shape, params, ins, rng):
        if name.endswith("bias"):
            return np.zeros(shape)
        if name == "in_proj_weight":  # as torch: Xavier uniform over the stacked matrix
            return init_weight("xavier", shape, shape[1], shape[0], rng)
        bound = 1.0 / math.sqrt(shape[1])  # as torch's Linear out_proj
        return rng.uniform(-bound, bound, size=shape)

    def make_kernel(self, params, ins, out, dtype):
        return MultiHeadAttentionKernel(int(params["heads"]), bool(params["causal"]),
                                        bool(params["bias"]))
