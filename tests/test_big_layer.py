"""A huge layer (Dense with 100,000 units) keeps the live views bounded (issue 17)."""

from __future__ import annotations

import numpy as np

from designer.lab import prediction_view as pv
from designer.lab.weights_view import MAX_COLS, MAX_ROWS, picture
from engine.core.compiler import compile_graph
from engine.core.spec import load_graph

EXAMPLE = "resources/examples/spirals_classifier.json"


def _program(units: int):
    spec = load_graph(EXAMPLE)
    for node in spec.nodes:
        if node.id == "h1":
            node.params["units"] = units
    return compile_graph(spec, seed=0)


def test_weights_picture_of_a_wide_matrix_is_bounded_and_says_so():
    w = np.arange(16 * 100_000, dtype=np.float32).reshape(16, 100_000)
    p = picture("weight", w, 2 * w)
    assert p.value.shape == (16, MAX_COLS) and p.sampled
    assert (p.rows, p.cols) == (16, 100_000)
    assert p.value[0, 0] == 0 and p.value[0, -1] == w[0, -1]  # evenly spaced, ends kept
    assert np.isclose(p.grad_norm, np.linalg.norm(2 * w.astype(np.float64)))  # whole tensor
    tall = picture("weight", np.ones((100_000, 2)), np.ones((100_000, 2)))
    assert tall.value.shape == (MAX_ROWS, 2)
    small = picture("bias", np.ones(16), np.ones(16))
    assert small.value.shape == (1, 16) and not small.sampled


def test_predictions_feed_a_huge_layer_in_small_chunks_on_a_coarser_grid():
    program = _program(100_000)
    seen = []
    predict = program.predict

    def spy(x):
        seen.append(len(x))
        return predict(x)

    program.predict = spy
    out = pv.predict_batched(program, np.zeros((300, 2), dtype=np.float32))
    assert out.shape[0] == 300
    assert max(seen) * program.batch_bytes(1) <= pv.EVAL_BYTES  # not 4,096 rows at once
    assert pv.grid_size(program) < pv.GRID
    assert pv.grid_size(program) ** 2 * program.num_parameters <= 2 * pv.EVAL_MACS
    assert pv.scored_limit(program) < pv.MAX_SCORED


def test_small_networks_keep_the_full_grid_and_chunk():
    program = _program(16)
    assert pv.grid_size(program) == pv.GRID
    assert program.rows_within(pv.EVAL_BYTES) >= pv.CHUNK
