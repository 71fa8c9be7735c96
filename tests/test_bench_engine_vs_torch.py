"""bench/engine_vs_torch.py: the GFLOP/s column counts the matrix products of a step."""

from bench.engine_vs_torch import CASES, step_flops
from engine.core.compiler import compile_graph


def test_flops_of_an_mlp_step_count_every_matrix_product_once():
    program = compile_graph(CASES["c"].build(), seed=0)
    layers = [(784, 256), (256, 128), (128, 10)]
    fwd = [2 * 128 * i * o for i, o in layers]
    # backward: a weight gradient everywhere, an input gradient except into the data
    expected = sum(fwd) + sum(fwd) + fwd[1] + fwd[2]
    assert step_flops(program, 128) == expected


def test_flops_of_the_tiny_gpt_include_attention():
    program = compile_graph(CASES["e"].build(), seed=0)
    n, t, d, ff, vocab = 32, 32, 48, 192, 62
    rows = n * t
    block = (3 * (2 * rows * d * 3 * d)  # q, k, v projection: forward, weights, input
             + 3 * (2 * rows * d * d)  # output projection
             + 3 * 2 * (2 * n * t * t * d)  # Q·Kᵀ and A·V, forward and two gradients each
             + 3 * (2 * rows * d * ff) * 2)  # the MLP's two Dense layers
    assert step_flops(program, n) == 2 * block + 3 * (2 * rows * d * vocab)
