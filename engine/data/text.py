"""Text as next-character data: every sample is `block_size` characters, its target the same
characters shifted by one (what a character-level language model learns to predict).

The vocabulary is the sorted set of characters of the text; ids index into it. It travels
with the data set as `class_names` and in `preprocessing["vocabulary"]`, so a trained model
can turn its outputs back into characters (the Generate panel does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import Dataset
from engine.errors import DataError
from engine.files.sized_read import read_limited
from engine.ops.base import Param

FABLES_PATH = Path(__file__).with_name("files") / "aesop_fables.txt"
MAX_TEXT_BYTES = 20_000_000  # checked before reading: a text model of this size is plenty


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of a UTF-8 file, or DataError naming the file, line and column of a bad byte."""
    path = Path(path)
    _name, data = read_limited(path, MAX_TEXT_BYTES, "text files for training", DataError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise DataError(f"The text file {path} is not UTF-8: line {line}, column {column} holds "
                        f"the byte 0x{data[exc.start]:02x}. Save it as UTF-8 and try again.") \
            from None
    return text.replace("\r\n", "\n").lstrip("\ufeff")


def vocabulary(text: str) -> list[str]:
    """The distinct characters of `text`, sorted (id i is vocabulary[i])."""
    return sorted(set(text))


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """Character ids of `text` (int64); DataError for a character outside the vocabulary."""
    index = {c: i for i, c in enumerate(vocab)}
    try:
        return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    except KeyError as exc:
        raise DataError(f"The character {exc.args[0]!r} is not in the model's vocabulary of "
                        f"{len(vocab)} characters.") from None


def decode(ids, vocab: list[str]) -> str:
    """The characters of a sequence of ids."""
    return "".join(vocab[int(i)] for i in ids)


def unigram_entropy(text: str) -> float:
    """Cross-entropy (nats per character) of always predicting the character frequencies:
    the loss a model that ignores the context reaches at best."""
    _, counts = np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32),
                          return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def text_dataset(text: str, block_size: int = 32, stride: int = 0, name: str = "text",
                 ) -> Dataset:
    """Samples of `block_size` character ids starting every `stride` characters (0: every
    block_size), each with the next `block_size` ids as its targets."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise DataError(f"The block size must be a whole number of at least 1, not "
                        f"{block_size!r}.")
    step = stride or block_size
    if len(text) < block_size + 1:
        raise DataError(f"The text '{name}' has {len(text)} characters, too few for one sample "
                        f"of {block_size} characters and its next character; use a smaller "
                        "block size or a longer text.")
    vocab = vocabulary(text)
    if len(vocab) < 2:
        raise DataError(f"The text '{name}' uses a single character; there is nothing to "
                        "predict.")
    ids = encode(text, vocab)
    starts = np.arange(0, len(ids) - block_size, step)
    window = starts[:, None] + np.arange(block_size)
    return Dataset(
        name=name, x=ids[window], y=ids[window + 1], task="classification",
        num_classes=len(vocab), feature_names=[f"char {i + 1}" for i in range(block_size)],
        target_names=[f"next {i + 1}" for i in range(block_size)], class_names=vocab,
        preprocessing={"vocabulary": vocab, "block_size": block_size,
                       "unigram_entropy": unigram_entropy(text)},
    )


TEXT_PARAMS = (
    Param("block_size", "int", 32, "Characters per sample (the context the model sees); the "
          "targets are the same characters shifted by one.", min=1, max=4096),
    Param("stride", "int", 0, "Characters between the starts of two samples; 0 means the "
          "block size (samples do not overlap).", min=0, max=4096),
)


def load_text_dataset(path: str | os.PathLike[str], **params: Any) -> Dataset:
    """A UTF-8 text file as next-character data; `params` are TEXT_PARAMS."""
    known = {p.name: p for p in TEXT_PARAMS}
    values = {p.name: p.default for p in TEXT_PARAMS}
    for key, value in params.items():
        if key not in known:
            raise DataError(f"A text data set has no setting '{key}'; its settings are "
                            f"{', '.join(known)}.")
        problem = known[key].check(value)
        if problem:
            raise DataError(f"Text file {Path(path).name}: {problem}.")
        values[key] = value
    return text_dataset(read_text(path), values["block_size"], values["stride"],
                        name=Path(path).stem)


def fables_text() -> str:
    """The bundled public-domain text (Aesop's fables, see files/README.md)."""
    try:
        return FABLES_PATH.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"The bundled text {FABLES_PATH} could not be read ({exc.strerror}); "
                        "reinstall Gradscape.") from None
