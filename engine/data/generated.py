"""Built-in data sets: small 2-D toy problems, 1-D regression, and the 8x8 digits images.

Everything is generated with numpy from a seed (same seed, same data), except `digits`,
which is read from the bundled ``files/digits_8x8.npz`` (UCI optdigits test set,
Alpaydin & Kaynak, CC BY 4.0), and `fables`, next-character text from the bundled
``files/aesop_fables.txt`` (public domain); see ``files/README.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import Dataset
from engine.data.text import TEXT_PARAMS
from engine.errors import DataError
from engine.ops.base import Param

DIGITS_PATH = Path(__file__).with_name("files") / "digits_8x8.npz"


@dataclass(frozen=True)
class DatasetInfo:
    """Description of a built-in data set; the GUI builds its settings form from `params`."""

    name: str
    description: str
    task: str
    params: tuple[Param, ...]
    input_shape: tuple[int, ...]
    num_classes: int


def _samples(default: int) -> Param:
    return Param(
        "samples", "int", default, "How many points to generate.", min=10, max=100_000, step=10
    )


def _noise(default: float, what: str) -> Param:
    return Param("noise", "float", default, what, min=0.0, max=5.0, step=0.01)


# -- generators -----------------------------------------------------------------------------

def _per_class(samples: int, k: int) -> list[int]:
    """Split `samples` into k nearly equal class sizes."""
    return [samples // k + (1 if c < samples % k else 0) for c in range(k)]


def _classification(
    name: str, x: np.ndarray, labels: np.ndarray, k: int, rng: np.random.Generator,
    params: dict[str, Any], seed: int, class_names: list[str] | None = None,
) -> Dataset:
    """Shuffle the rows and wrap them as a classification Dataset."""
    perm = rng.permutation(len(x))
    return Dataset(
        name=name,
        x=x[perm],
        y=labels[perm].astype(np.float64).reshape(-1, 1),
        task="classification",
        num_classes=k,
        feature_names=[f"x{i + 1}" for i in range(x.shape[1])],
        target_names=["class"],
        class_names=class_names or [str(c) for c in range(k)],
        preprocessing=_generated(name, seed, params),
    )


def _generated(name: str, seed: int, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"source": "generated", "dataset": name, "seed": seed, "params": dict(params), **extra}


def _xor(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    n0, n1 = _per_class(p["samples"], 2)
    labels = np.repeat([0, 1], [n0, n1])
    pad = 0.1  # keep points off the axes so the classes have a margin
    mag = pad + rng.uniform(0.0, 1.0 - pad, size=(n0 + n1, 2))
    s1 = rng.choice([-1.0, 1.0], size=n0 + n1)
    s2 = np.where(labels == 1, s1, -s1)  # class 1: same signs (quadrants I and III)
    x = mag * np.stack([s1, s2], axis=1)
    x = x + rng.normal(0.0, p["noise"], size=x.shape)
    return _classification("xor", x, labels, 2, rng, p, seed)


def _circles(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    n_out, n_in = _per_class(p["samples"], 2)
    r = np.concatenate([rng.uniform(0.7, 1.0, n_out), rng.uniform(0.0, 0.5, n_in)])
    t = rng.uniform(0.0, 2 * np.pi, n_out + n_in)
    x = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    x = x + rng.normal(0.0, p["noise"], size=x.shape)
    labels = np.repeat([0, 1], [n_out, n_in])
    return _classification("circles", x, labels, 2, rng, p, seed, ["outer", "inner"])


def _moons(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    n0, n1 = _per_class(p["samples"], 2)
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) - np.array([0.5, 0.25])
    x = x + rng.normal(0.0, p["noise"], size=x.shape)
    labels = np.repeat([0, 1], [n0, n1])
    return _classification("moons", x, labels, 2, rng, p, seed)


def _spirals(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    parts, labels = [], []
    for c, m in enumerate(_per_class(p["samples"], 2)):
        s = rng.uniform(0.0, 1.0, m)  # position along the arm
        r = s
        t = 1.75 * 2 * np.pi * s + np.pi * c
        parts.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        labels.append(np.full(m, c))
    x = np.concatenate(parts)
    x = x + rng.normal(0.0, p["noise"], size=x.shape)
    return _classification("spirals", x, np.concatenate(labels), 2, rng, p, seed)


def _blobs(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    k = p["classes"]
    offset = rng.uniform(0.0, 2 * np.pi)
    angles = offset + 2 * np.pi * np.arange(k) / k
    centers = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    sizes = _per_class(p["samples"], k)
    labels = np.repeat(np.arange(k), sizes)
    x = centers[labels] + rng.normal(0.0, p["noise"], size=(len(labels), 2))
    return _classification("blobs", x, labels, k, rng, p, seed)


def _linear(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    n, f = p["samples"], p["features"]
    w = rng.normal(0.0, 1.0, size=f)
    b = float(rng.uniform(-0.5, 0.5))
    x = rng.uniform(-1.0, 1.0, size=(n, f))
    y = x @ w + b + rng.normal(0.0, p["noise"], size=n)
    return Dataset(
        name="linear",
        x=x,
        y=y.reshape(-1, 1),
        task="regression",
        num_classes=0,
        feature_names=[f"x{i + 1}" for i in range(f)],
        target_names=["y"],
        class_names=[],
        preprocessing=_generated("linear", seed, p, true_weights=w.tolist(), true_bias=b),
    )


def _sine(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    n = p["samples"]
    x = rng.uniform(-np.pi, np.pi, size=(n, 1))
    y = np.sin(x) + rng.normal(0.0, p["noise"], size=(n, 1))
    return Dataset(
        name="sine",
        x=x,
        y=y,
        task="regression",
        num_classes=0,
        feature_names=["x"],
        target_names=["y"],
        class_names=[],
        preprocessing=_generated("sine", seed, p),
    )


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits: images uint8 (1797, 8, 8) in 0..16 and labels uint8 (1797,)."""
    try:
        with np.load(DIGITS_PATH, allow_pickle=False) as f:
            return f["images"], f["labels"]
    except OSError as exc:
        raise DataError(
            f"The bundled digits file {DIGITS_PATH} could not be read ({exc}); "
            "reinstall Gradscape."
        ) from exc


def _digits(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    images, labels = load_digits_arrays()
    x = images.astype(np.float64).reshape(-1, 1, 8, 8) / 16.0
    return Dataset(
        name="digits",
        x=x,
        y=labels.astype(np.float64).reshape(-1, 1),
        task="classification",
        num_classes=10,
        feature_names=[f"pixel {r},{c}" for r in range(8) for c in range(8)],
        target_names=["digit"],
        class_names=[str(d) for d in range(10)],
        preprocessing=_generated("digits", seed, p, scale=1.0 / 16.0, input_shape=[1, 8, 8]),
    )


def _fables(rng: np.random.Generator, p: dict[str, Any], seed: int) -> Dataset:
    from engine.data.text import fables_text, text_dataset

    ds = text_dataset(fables_text(), p["block_size"], p["stride"], name="fables")
    ds.preprocessing.update(_generated("fables", seed, p))
    return ds


def _fables_vocabulary_size() -> int:
    from engine.data.text import fables_text, vocabulary

    return len(vocabulary(fables_text()))


_NOISE_2D = "Standard deviation of the random jitter added to each point."

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "xor", "Four squares in a checkerboard: points in opposite corners share a class.",
            "classification", (_samples(300), _noise(0.05, _NOISE_2D)), (2,), 2,
        ),
        DatasetInfo(
            "circles", "A disc of one class inside a ring of the other.",
            "classification", (_samples(300), _noise(0.05, _NOISE_2D)), (2,), 2,
        ),
        DatasetInfo(
            "moons", "Two interleaved half-moons.",
            "classification", (_samples(300), _noise(0.1, _NOISE_2D)), (2,), 2,
        ),
        DatasetInfo(
            "spirals", "Two spirals wound around each other (hard: needs a deeper network).",
            "classification", (_samples(400), _noise(0.03, _NOISE_2D)), (2,), 2,
        ),
        DatasetInfo(
            "blobs", "Round clusters, one per class, placed around a circle.",
            "classification",
            (
                _samples(300),
                _noise(0.2, "Standard deviation (spread) of each cluster."),
                Param("classes", "int", 3, "How many clusters (classes).", min=2, max=10,
                      step=1),
            ),
            (2,), 3,
        ),
        DatasetInfo(
            "linear", "Regression: y = w·x + b plus noise, with random w and b.",
            "regression",
            (
                _samples(200),
                _noise(0.1, "Standard deviation of the noise added to y."),
                Param("features", "int", 1, "How many input numbers per sample.", min=1,
                      max=100, step=1),
            ),
            (1,), 0,
        ),
        DatasetInfo(
            "sine", "Regression: y = sin(x) plus noise, for x in [-π, π].",
            "regression", (_samples(200), _noise(0.1, "Standard deviation of the noise on y.")),
            (1,), 0,
        ),
        DatasetInfo(
            "digits", "1,797 handwritten digits as 8×8 grey images (UCI optdigits), 10 classes.",
            "classification", (), (1, 8, 8), 10,
        ),
        DatasetInfo(
            "fables", "Aesop's fables as next-character text (about 25 KB): each sample is a "
            "block of characters, its targets the characters that follow.",
            "classification", TEXT_PARAMS, (32,), _fables_vocabulary_size(),
        ),
    )
}

_GENERATORS: dict[str, Callable[[np.random.Generator, dict[str, Any], int], Dataset]] = {
    "xor": _xor,
    "circles": _circles,
    "moons": _moons,
    "spirals": _spirals,
    "blobs": _blobs,
    "linear": _linear,
    "sine": _sine,
    "digits": _digits,
    "fables": _fables,
}


def resolve_params(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """Defaults of data set `name` overlaid with `given`, checked; DataError if wrong."""
    info = info_of(name)
    known = {p.name: p for p in info.params}
    for key in given:
        if key not in known:
            if known:
                valid = "its settings are " + ", ".join(sorted(known))
            else:
                valid = "it has no settings"
            raise DataError(f"Data set '{name}' has no setting '{key}'; {valid}.")
    out: dict[str, Any] = {}
    for p in info.params:
        value = given.get(p.name, p.default)
        if isinstance(value, np.generic):
            value = value.item()
        if p.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        problem = p.check(value)
        if problem:
            raise DataError(f"Data set '{name}': {problem}.")
        out[p.name] = value
    return out


def info_of(name: str) -> DatasetInfo:
    """The DatasetInfo of `name`; DataError listing the valid names if unknown."""
    info = DATASETS.get(name) if isinstance(name, str) else None
    if info is None:
        raise DataError(
            f"There is no built-in data set called {name!r}; choose one of "
            f"{', '.join(DATASETS)}."
        )
    return info


def make_dataset(name: str, seed: int = 0, **params: Any) -> Dataset:
    """Generate (or load) the built-in data set `name`; the same seed gives the same data."""
    values = resolve_params(name, params)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"The seed must be a whole number of at least 0, not {seed!r}.")
    rng = np.random.default_rng(int(seed))
    ds = _GENERATORS[name](rng, values, int(seed))
    ds.preprocessing["feature_names"] = list(ds.feature_names)
    return ds
