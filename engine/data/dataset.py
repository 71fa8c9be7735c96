"""The Dataset container and mini-batching.

Generated and bundled data sets live in ``engine.data.generated``, CSV import in
``engine.data.csv_import``; ``engine.data`` re-exports the public names of all three.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import DataError

TASKS = ("classification", "regression")


@dataclass
class Dataset:
    """Inputs and targets of one data set, plus what is needed to prepare new data alike.

    x is (N, features) or (N, C, H, W); y is (N, k). For classification y is (N, 1) and
    holds the class index as a float, or (N, T) with one class per position for sequences
    (next-character text). Both are float64.

    A set whose inputs take their size from the network (an image folder) starts with x of
    shape (N, 0) and a `load_inputs(rows, shape)` callback; `fit_to_input` fills x in.
    `rows` are the indices of this set's samples in the source (kept by `subset`).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    task: str
    num_classes: int
    feature_names: list[str]
    target_names: list[str]
    class_names: list[str] = field(default_factory=list)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    load_inputs: Callable[[np.ndarray, tuple[int, ...]], np.ndarray] | None = None
    rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float64)
        self.y = np.asarray(self.y, dtype=np.float64)
        if self.y.ndim == 1:
            self.y = self.y.reshape(-1, 1)
        if self.task not in TASKS:
            raise DataError(
                f"The task of data set '{self.name}' must be classification or regression, "
                f"not {self.task!r}."
            )
        if len(self.x) != len(self.y):
            raise DataError(
                f"Data set '{self.name}' has {len(self.x)} inputs but {len(self.y)} targets; "
                "they must have the same number of rows."
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: np.ndarray) -> Dataset:
        """A new data set holding the rows `idx` (copies; metadata is shared by value)."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        return Dataset(
            name=self.name,
            x=self.x[idx].copy(),
            y=self.y[idx].copy(),
            task=self.task,
            num_classes=self.num_classes,
            feature_names=list(self.feature_names),
            target_names=list(self.target_names),
            class_names=list(self.class_names),
            preprocessing=copy.deepcopy(self.preprocessing),
            load_inputs=self.load_inputs,
            rows=(np.arange(len(self)) if self.rows is None else self.rows)[idx],
        )

    def split(self, validation: float, seed: int) -> tuple[Dataset, Dataset]:
        """Shuffle with `seed` and split into (training, validation) parts.

        `validation` is the fraction in [0, 1) held out; 0 gives (self, empty). A non-zero
        fraction holds out at least one row and keeps at least one for training.
        """
        if isinstance(validation, bool) or not isinstance(validation, (int, float)):
            raise DataError(f"The validation fraction must be a number, not {validation!r}.")
        if not 0.0 <= validation < 1.0:
            raise DataError(
                f"The validation fraction must be at least 0 and below 1, not {validation!r}."
            )
        n = len(self)
        if validation == 0 or n == 0:
            return self, self.subset(np.arange(0))
        if n < 2:
            raise DataError(
                f"Data set '{self.name}' has only {n} row, too few to hold some out for "
                "validation; set the validation fraction to 0."
            )
        n_val = min(max(round(n * validation), 1), n - 1)
        perm = np.random.default_rng(seed).permutation(n)
        return self.subset(perm[n_val:]), self.subset(perm[:n_val])

    def one_hot(self) -> np.ndarray:
        """Targets as one-hot rows, shape (N, num_classes); classification only."""
        if self.task != "classification":
            raise DataError(
                f"Data set '{self.name}' is a regression set; one-hot targets only exist "
                "for classification."
            )
        labels = self.y[:, 0].astype(np.int64)
        out = np.zeros((len(self), self.num_classes), dtype=np.float64)
        out[np.arange(len(self)), labels] = 1.0
        return out


def fit_to_input(data: Dataset, shape: tuple[int, ...]) -> Dataset:
    """Give `data` the per-sample input `shape` of the network, in place; returns `data`.

    Flat rows (N, F) become (N, *shape) when F equals the number of values in `shape`
    (a CSV or table feeding an Input that declares a shape); a set that loads its inputs
    later (an image folder) loads them now at that shape. Either way `preprocessing`
    records `input_shape`, so predict reshapes new rows alike. Anything else is left for
    the trainer to report.
    """
    shape = tuple(int(d) for d in shape)
    if data.load_inputs is not None:
        rows = np.arange(len(data)) if data.rows is None else data.rows
        data.x = np.asarray(data.load_inputs(rows, shape), dtype=np.float64)
        data.load_inputs = None
        data.preprocessing["input_shape"] = list(shape)
    elif (len(shape) > 1 and data.x.ndim == 2 and data.x.shape[1] == int(np.prod(shape))):
        data.x = data.x.reshape((len(data), *shape))
        data.preprocessing["input_shape"] = list(shape)
    return data


def batches(
    n: int, batch_size: int | None, rng: np.random.Generator, shuffle: bool = True
) -> Iterator[np.ndarray]:
    """Index arrays that cover range(n) exactly once: one epoch.

    batch_size None or >= n gives one full batch; 1 gives single samples (SGD). With
    `shuffle` the order is drawn from `rng`, otherwise it is 0..n-1.
    """
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise DataError(f"The batch size must be a whole number of at least 1, not {batch_size!r}.")
    if n <= 0:
        return
    order = rng.permutation(n) if shuffle else np.arange(n)
    size = n if batch_size is None or batch_size >= n else int(batch_size)
    for start in range(0, n, size):
        yield order[start:start + size]
