"""Conv2D → ReLU (→ 2×2 MaxPool) run as one chain of passes over a few images at a time.

A large convolution on the compiled path already goes a few images at a time, each pass's
output still in the core's cache (`Conv2DKernel._forward_by_images`). The ReLU and the
max-pool after it would otherwise read the whole batch back from memory, one pass each,
forward and backward: on the 3×32×32 CNN those four memory-bound passes took a third of
the step. Here each pass of the convolution goes on at once through the ReLU and the
pool, and backward takes each pass's images through the pool's and the ReLU's gradients
right before the convolution's own.

Chains pay only when the passes are split over threads: on one thread the whole-batch
loops were faster (the CNN's step 18.3 ms node by node, 18.9 ms chained; with two threads
12.3 → 11.9 ms, and 11.7 → 10.7 ms with freed memory kept: bench/cnn_step.py). With no
helper threads (`chunked.splits_numba_kernels()` false: the GUI's training process on two
cores) the chain runs node by node.

Nothing is skipped: every node's output and every wire's gradient is still written whole
(the views show them), and each kernel keeps the state its own backward needs, so a
probe that calls one kernel alone still works. A chain runs only where node by node
would take the same compiled loops, on the same numbers, so the results are bit-identical.
"""

from __future__ import annotations

import os

import numpy as np

from engine.core import chunked, jit
from engine.ops import conv_jit, elementwise_jit
from engine.ops.activations import ReLUKernel
from engine.ops.base import Kernel
from engine.ops.conv import Conv2DKernel, MaxPoolKernel


class ConvChain:
    """A Conv2D kernel with the ReLU that alone reads its output and, optionally, the 2×2
    stride-2 max-pool that alone reads the ReLU's."""

    def __init__(self, conv: Conv2DKernel, relu: ReLUKernel, pool: MaxPoolKernel | None):
        self.conv, self.relu, self.pool = conv, relu, pool
        self.size = 2 if pool is None else 3

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """The outputs of the chain's nodes, in order."""
        conv, relu, pool = self.conv, self.relu, self.pool
        n, f = x.shape[0], conv.w["weight"].shape[0]
        ho, wo = conv._geometry(*x.shape[2:])
        loops = _loops(n * f * ho * wo) if conv.goes_by_images(x.shape) else None
        if loops is None:
            return self._node_by_node(x)
        relu_loop, pool_loop = loops[0], loops[1]
        r = np.empty((n, f, ho, wo), dtype=x.dtype)
        mask = np.empty(r.shape, dtype=bool)
        if pool is not None:
            pooled = np.empty((n, f, ho // 2, wo // 2), dtype=x.dtype)
            arg = np.empty(pooled.shape, dtype=np.uint8)

        def after(y, a, b):  # each pass of the convolution, in the thread that made it
            relu_loop(y[a:b].reshape(-1), r[a:b].reshape(-1), mask[a:b].reshape(-1))
            if pool is not None:
                pool_loop(r[a:b], pooled[a:b], arg[a:b])

        y = conv.forward(x, after=after)
        relu.mask = mask
        if pool is None:
            return y, r
        pool.xp_shape, pool.arg = r.shape, arg
        return y, r, pooled

    def backward(self, gy: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """The gradient each node sends to its input, from the last node's back to the
        first's (the convolution's is None when its input needs none)."""
        conv, relu, pool = self.conv, self.relu, self.pool
        loops = _loops(relu.mask.size) if conv.images is not None else None
        if loops is None or conv_jit.raw_kernels() is None:
            return self._backward_node_by_node(gy)
        relu_grad, pool_grad = loops[2], loops[3]
        mask = relu.mask
        g_relu_out = np.ascontiguousarray(gy) if pool is not None else None
        g_pool_in = np.empty(mask.shape, dtype=gy.dtype) if pool is not None else None
        g_conv_out = np.empty(mask.shape, dtype=gy.dtype)
        g_relu_in = g_pool_in if pool is not None else np.ascontiguousarray(gy)
        offsets = None if pool is None else np.array([0, 1, mask.shape[3], mask.shape[3] + 1],
                                                    dtype=np.int64)

        def before(a, b):  # each pass's images, right before the convolution's backward
            if pool is not None:
                pool_grad(g_relu_out[a:b], pool.arg[a:b], g_pool_in[a:b], offsets, 2)
            relu_grad(g_relu_in[a:b].reshape(-1), mask[a:b].reshape(-1),
                      g_conv_out[a:b].reshape(-1))

        (gx,) = conv.backward(g_conv_out, before=before)
        if pool is None:
            return g_conv_out, gx
        return g_pool_in, g_conv_out, gx

    def _node_by_node(self, x):
        y = self.conv.forward(x)
        r = self.relu.forward(y)
        return (y, r) if self.pool is None else (y, r, self.pool.forward(r))

    def _backward_node_by_node(self, gy):
        grads = []
        if self.pool is not None:
            (gy,) = self.pool.backward(gy)
            grads.append(gy)
        (gy,) = self.relu.backward(gy)
        grads.append(gy)
        grads.append(self.conv.backward(gy)[0])
        return tuple(grads)


def _loops(size: int):
    """(relu, max-pool 2×2, relu gradient, max-pool gradient) compiled, for a chain whose
    convolution outputs `size` numbers, or None when it must run node by node: when the
    passes would not be split over threads (one thread was slower chained), or when the
    ReLU and the pool on their own would take their numpy paths (those write −0 and NaN
    gradients where the compiled loops write 0: the same numbers, not the same bits)."""
    if not (jit.worth_it(size) and chunked.splits_numba_kernels()):
        return None
    (relu, relu_grad), (pool, pool_grad) = (elementwise_jit.raw_kernels(),
                                            conv_jit.raw_pool_kernels())
    return relu, pool, relu_grad, pool_grad


def find_chains(kernels: list[Kernel], srcs: list[tuple[int, ...]],
                eligible: list[bool]) -> dict[int, ConvChain]:
    """The chains of a program, by the index of their convolution: a Conv2D with the bias
    row in its products (a bias, no groups) whose output only its next node, a ReLU, reads,
    and the 2×2 stride-2 max-pool (unpadded) after that ReLU when it alone reads the
    ReLU's output. `eligible[i]` says node i may join: no input, target or loss, nothing
    computed from a target, and a node that needs a gradient. Chains form on runs of nodes
    that are next to each other in the program's order. `GRADSCAPE_CHAINS=0` turns chains
    off."""
    if os.environ.get("GRADSCAPE_CHAINS", "1") == "0":
        return {}
    readers = [0] * len(kernels)
    for ins in srcs:
        for s in ins:
            readers[s] += 1

    def feeds_only_next(i: int) -> bool:
        nxt = i + 1
        return (nxt < len(kernels) and readers[i] == 1 and srcs[nxt] == (i,)
                and eligible[nxt])

    chains = {}
    for i, k in enumerate(kernels):
        if (type(k) is not Conv2DKernel or not k.fused_bias or not eligible[i]
                or not feeds_only_next(i) or type(kernels[i + 1]) is not ReLUKernel):
            continue
        pool = kernels[i + 2] if feeds_only_next(i + 1) else None
        if not (type(pool) is MaxPoolKernel and pool.k == pool.s == 2 and pool.pad == 0):
            pool = None
        chains[i] = ConvChain(k, kernels[i + 1], pool)
    return chains
