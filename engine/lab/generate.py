"""Sampling text from a trained next-character model, one character at a time.

The model reads a fixed block of T character ids and predicts, at every position, the
next character. With a causal model the prediction at position i depends only on the
positions up to i, so a context shorter than T sits at the start of the block (the rest
is padding the prediction does not see) and the prediction is read at its last position;
a longer context keeps its last T characters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.core.program import Program
from engine.data.text import decode, encode
from engine.errors import DataError


def next_char_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / temperature) in float64; temperature 0 picks the most likely."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature <= 0:
        p = np.zeros_like(z)
        p[int(np.argmax(z))] = 1.0
        return p
    z = z / temperature
    e = np.exp(z - z.max())
    return e / e.sum()


def generate(program: Program, vocab: list[str], prompt: str, length: int,
             temperature: float = 1.0, seed: int = 0,
             on_char: Callable[[str], bool] | None = None) -> str:
    """`length` sampled characters following `prompt` (the prompt is not included).

    `on_char(c)` is called after every character; returning False stops early.
    """
    in_shape = program.shapes[program.order[program.input_nodes[0]]]
    out_shape = program.shapes[program.order[program.output_nodes[0]]]
    if len(in_shape) != 2 or len(out_shape) != 3 or out_shape[2] != len(vocab):
        raise DataError(
            "Generating text needs a model that reads a block of character ids, shape "
            f"(batch, T), and scores each of the {len(vocab)} characters at every position, "
            "shape (batch, T, characters), like the tiny GPT example.")
    block = int(in_shape[1])
    ids = list(encode(prompt, vocab)) if prompt else [0]  # no prompt: start from id 0
    given = len(ids)
    rng = np.random.default_rng(seed)
    x = np.zeros((1, block), dtype=program.dtype)
    with program.keep_trace():
        for _ in range(length):
            context = ids[-block:]
            x[...] = 0.0
            x[0, :len(context)] = context
            logits = program.predict(x)[0, len(context) - 1]
            p = next_char_probabilities(logits, temperature)
            ids.append(int(rng.choice(len(vocab), p=p)))
            if on_char is not None and on_char(vocab[ids[-1]]) is False:
                break
    return decode(ids[given:], vocab)
