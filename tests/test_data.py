"""Tests of engine.data.dataset: built-in datasets, splitting, batching and CSV import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data import (
    DATASETS,
    Dataset,
    DatasetInfo,
    apply_preprocessing,
    batches,
    csv_import,
    csv_preview,
    load_csv,
    make_dataset,
)
from engine.errors import DataError
from engine.ops.base import Param

CLASSIFICATION_2D = ["xor", "circles", "moons", "spirals", "blobs"]


# -- built-in datasets ----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(DATASETS))
def test_dataset_shape_dtype_and_info(name: str) -> None:
    info = DATASETS[name]
    assert isinstance(info, DatasetInfo)
    assert all(isinstance(p, Param) for p in info.params)
    ds = make_dataset(name)
    assert ds.x.dtype == np.float64 and ds.y.dtype == np.float64
    assert ds.x.shape[1:] == info.input_shape
    assert ds.y.ndim == 2 and len(ds.y) == len(ds.x) == len(ds)
    assert ds.task == info.task
    assert ds.num_classes == info.num_classes
    assert np.isfinite(ds.x).all() and np.isfinite(ds.y).all()
    json.dumps(ds.preprocessing)
    if ds.task == "classification":
        sequence = name == "fables"  # one class (the next character) per position
        assert ds.y.shape[1] == (ds.x.shape[1] if sequence else 1)
        labels = ds.y.ravel()
        assert np.array_equal(labels, np.round(labels))
        if sequence:
            assert set(labels.astype(int)) <= set(range(ds.num_classes))
        else:
            assert set(labels.astype(int)) == set(range(ds.num_classes))
        assert len(ds.class_names) == ds.num_classes
        assert ds.target_names
    else:
        assert ds.num_classes == 0 and ds.class_names == []
    if info.params:
        samples = {p.name: p.default for p in info.params}.get("samples")
        if samples is not None:
            assert len(ds) == samples


@pytest.mark.parametrize("name", [n for n in DATASETS if n not in ("digits", "fables")])
def test_dataset_determinism(name: str) -> None:
    a, b, c = make_dataset(name, seed=3), make_dataset(name, seed=3), make_dataset(name, seed=4)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("name", CLASSIFICATION_2D)
def test_classes_balanced_and_params_respected(name: str) -> None:
    ds = make_dataset(name, samples=101, noise=0.0)
    assert len(ds) == 101
    counts = np.bincount(ds.y[:, 0].astype(int))
    assert counts.max() - counts.min() <= 1
    assert np.abs(ds.x).max() < 3


def test_blobs_classes_and_linear_features() -> None:
    ds = make_dataset("blobs", classes=5, samples=250)
    assert ds.num_classes == 5 and ds.one_hot().shape == (250, 5)
    lin = make_dataset("linear", features=4, samples=50, noise=0.0)
    assert lin.x.shape == (50, 4) and lin.y.shape == (50, 1)
    # Least squares recovers the true weights when there is no noise.
    a = np.hstack([lin.x, np.ones((50, 1))])
    coef = np.linalg.lstsq(a, lin.y[:, 0], rcond=None)[0]
    assert np.allclose(coef[:4], lin.preprocessing["true_weights"])
    assert np.isclose(coef[4], lin.preprocessing["true_bias"])


def test_sine_is_sine() -> None:
    ds = make_dataset("sine", noise=0.0)
    assert ds.x.min() >= -np.pi and ds.x.max() <= np.pi
    assert np.allclose(ds.y, np.sin(ds.x))


def test_make_dataset_errors() -> None:
    with pytest.raises(DataError, match="choose one of xor, circles"):
        make_dataset("mnist")
    with pytest.raises(DataError, match="no setting 'classes'; its settings are noise, samples"):
        make_dataset("xor", classes=3)
    with pytest.raises(DataError, match="has no settings"):
        make_dataset("digits", samples=10)
    with pytest.raises(DataError, match="'samples' must be at least 10"):
        make_dataset("moons", samples=-1)
    with pytest.raises(DataError, match="'samples' must be a whole number"):
        make_dataset("moons", samples=2.5)
    with pytest.raises(DataError, match="'noise' must be at least 0"):
        make_dataset("moons", noise=-0.1)
    with pytest.raises(DataError, match="seed"):
        make_dataset("moons", seed=-1)
    # Integer noise and numpy scalars are fine.
    assert len(make_dataset("moons", noise=0, samples=np.int64(20))) == 20


def _softmax_regression(x: np.ndarray, y: np.ndarray, k: int, steps: int = 500) -> float:
    """Train a linear softmax classifier by gradient descent; return training accuracy."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros((xb.shape[1], k))
    onehot = np.eye(k)[y]
    for _ in range(steps):
        z = xb @ w
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        w -= 0.5 * xb.T @ (p - onehot) / len(x)
    return float(np.mean((xb @ w).argmax(axis=1) == y))


def test_blobs_linearly_separable() -> None:
    ds = make_dataset("blobs", seed=1)
    assert _softmax_regression(ds.x, ds.y[:, 0].astype(int), ds.num_classes) > 0.97


def _mlp_accuracy(ds: Dataset, hidden: int = 16, steps: int = 1500, seed: int = 0) -> float:
    """Train a 2-hidden-tanh-16 MLP with Adam in numpy; return training accuracy."""
    rng = np.random.default_rng(seed)
    x, y = ds.x, ds.y[:, 0].astype(int)
    onehot = np.eye(ds.num_classes)[y]
    shapes = [(2, hidden), (hidden,), (hidden, ds.num_classes), (ds.num_classes,)]
    ws = [rng.normal(0, 1 / np.sqrt(s[0]), s) if len(s) == 2 else np.zeros(s) for s in shapes]
    m = [np.zeros_like(w) for w in ws]
    v = [np.zeros_like(w) for w in ws]
    for t in range(1, steps + 1):
        h = np.tanh(x @ ws[0] + ws[1])
        z = h @ ws[2] + ws[3]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        gz = (p - onehot) / len(x)
        gh = gz @ ws[2].T * (1 - h**2)
        grads = [x.T @ gh, gh.sum(0), h.T @ gz, gz.sum(0)]
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g**2
            ws[i] -= 0.05 * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
    h = np.tanh(x @ ws[0] + ws[1])
    return float(np.mean((h @ ws[2] + ws[3]).argmax(axis=1) == y))


@pytest.mark.parametrize("name", ["xor", "circles", "moons"])
def test_toy_sets_learnable_by_small_mlp(name: str) -> None:
    assert _mlp_accuracy(make_dataset(name)) >= 0.98


def test_digits() -> None:
    ds = make_dataset("digits")
    assert ds.x.shape == (1797, 1, 8, 8)
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    assert sorted(set(ds.y[:, 0].astype(int))) == list(range(10))
    assert ds.class_names == [str(d) for d in range(10)]
    counts = np.bincount(ds.y[:, 0].astype(int))
    assert counts.min() > 170
    # The bundled file is plain arrays and is part of a package (so it gets installed).
    data_dir = Path(csv_import.__file__).parent / "files"
    with np.load(data_dir / "digits_8x8.npz", allow_pickle=False) as f:
        assert f["images"].dtype == np.uint8 and f["labels"].dtype == np.uint8
        assert f["images"].max() == 16
    assert (data_dir / "__init__.py").exists()
    # A linear classifier on the pixels does far better than chance.
    acc = _softmax_regression(ds.x.reshape(len(ds), -1), ds.y[:, 0].astype(int), 10, 200)
    assert acc > 0.9


def test_digits_apply_preprocessing_scales_and_reshapes() -> None:
    ds = make_dataset("digits")
    raw = np.round(ds.x[:3].reshape(3, -1) * 16)
    out = apply_preprocessing(ds.preprocessing, raw)
    assert out.shape == (3, 1, 8, 8) and np.allclose(out, ds.x[:3])


def test_import_order_and_no_qt() -> None:
    code = (
        "import sys; import engine.data.generated, engine.data.csv_import, engine.data.dataset; "
        "assert not any(m.startswith(('PySide', 'PyQt', 'pyqtgraph')) for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# -- Dataset methods ------------------------------------------------------------------------

def test_split_sizes_disjoint_deterministic() -> None:
    ds = make_dataset("moons", samples=200)
    ds.x[:, 0] = np.arange(200)  # tag rows to identify them
    tr, va = ds.split(0.25, seed=7)
    assert len(tr) == 150 and len(va) == 50
    a, b = set(tr.x[:, 0]), set(va.x[:, 0])
    assert not a & b and a | b == set(range(200))
    tr2, va2 = ds.split(0.25, seed=7)
    assert np.array_equal(tr.x, tr2.x) and np.array_equal(va.y, va2.y)
    _, va3 = ds.split(0.25, seed=8)
    assert set(va3.x[:, 0]) != b
    assert tr.class_names == ds.class_names and tr.num_classes == 2
    # Rows keep their targets.
    assert np.array_equal(ds.y[va.x[:, 0].astype(int)], va.y)


def test_split_edge_cases() -> None:
    ds = make_dataset("sine", samples=10)
    tr, va = ds.split(0, seed=0)
    assert tr is ds and len(va) == 0 and va.x.shape == (0, 1) and va.y.shape == (0, 1)
    tr, va = ds.split(0.01, seed=0)
    assert (len(tr), len(va)) == (9, 1)
    tr, va = ds.split(0.99, seed=0)
    assert (len(tr), len(va)) == (1, 9)
    for bad in (1.0, -0.1, "0.2"):
        with pytest.raises(DataError, match="validation fraction"):
            ds.split(bad, seed=0)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="too few"):
        ds.subset(np.array([0])).split(0.5, seed=0)


def test_subset_and_one_hot() -> None:
    ds = make_dataset("blobs", classes=4, samples=40)
    sub = ds.subset(np.array([3, 1]))
    assert len(sub) == 2 and np.array_equal(sub.x, ds.x[[3, 1]])
    sub.x[0, 0] = 1e9
    assert ds.x[3, 0] != 1e9
    oh = ds.one_hot()
    assert oh.shape == (40, 4) and np.array_equal(oh.argmax(1), ds.y[:, 0])
    assert np.all(oh.sum(1) == 1)
    with pytest.raises(DataError, match="regression"):
        make_dataset("sine").one_hot()


def test_dataset_validation() -> None:
    with pytest.raises(DataError, match="same number of rows"):
        Dataset("d", np.zeros((3, 2)), np.zeros((2, 1)), "regression", 0, ["a", "b"], ["y"])
    with pytest.raises(DataError, match="classification or regression"):
        Dataset("d", np.zeros((3, 2)), np.zeros((3, 1)), "clustering", 0, ["a", "b"], ["y"])
    ds = Dataset("d", [[1, 2]], [5], "regression", 0, ["a", "b"], ["y"])
    assert ds.y.shape == (1, 1) and ds.x.dtype == np.float64


# -- batches --------------------------------------------------------------------------------

@pytest.mark.parametrize("n,bs,sizes", [
    (20, 7, [7, 7, 6]),
    (20, None, [20]),
    (20, 20, [20]),
    (20, 64, [20]),
    (5, 1, [1] * 5),
    (0, 4, []),
])
def test_batches_cover_epoch(n: int, bs: int | None, sizes: list[int]) -> None:
    parts = list(batches(n, bs, np.random.default_rng(0)))
    assert [len(p) for p in parts] == sizes
    joined = np.concatenate(parts) if parts else np.array([], dtype=int)
    assert sorted(joined.tolist()) == list(range(n))


def test_batches_shuffle_and_determinism() -> None:
    a = np.concatenate(list(batches(50, 8, np.random.default_rng(1))))
    b = np.concatenate(list(batches(50, 8, np.random.default_rng(1))))
    assert np.array_equal(a, b) and not np.array_equal(a, np.arange(50))
    rng = np.random.default_rng(1)
    e1 = np.concatenate(list(batches(50, 8, rng)))
    e2 = np.concatenate(list(batches(50, 8, rng)))
    assert not np.array_equal(e1, e2)  # a new order every epoch
    plain = np.concatenate(list(batches(10, 3, rng, shuffle=False)))
    assert np.array_equal(plain, np.arange(10))
    for bad in (0, -2, 1.5, True):
        with pytest.raises(DataError, match="batch size"):
            list(batches(10, bad, rng))  # type: ignore[arg-type]


# -- CSV import -----------------------------------------------------------------------------

def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8", newline="")
    return p


IRIS_LIKE = (
    "sepal,petal,species\n"
    "5.1,1.4,setosa\n"
    "7.0,4.7,versicolor\n"
    "6.3,6.0,virginica\n"
    "4.9,1.5,setosa\n"
    "6.4,4.5,versicolor\n"
)


def test_csv_header_and_text_classes(tmp_path: Path) -> None:
    ds = load_csv(write(tmp_path, IRIS_LIKE, "iris.csv"))
    assert ds.name == "iris"
    assert ds.task == "classification" and ds.num_classes == 3
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert ds.y[:, 0].tolist() == [0, 1, 2, 0, 1]
    assert ds.feature_names == ["sepal", "petal"] and ds.target_names == ["species"]
    assert ds.preprocessing["header"] is True
    json.dumps(ds.preprocessing)


def test_csv_headerless(tmp_path: Path) -> None:
    ds = load_csv(write(tmp_path, "1,2,0\n3,4,1\n5,6,0\n7,8,1\n"), standardize=False)
    assert ds.feature_names == ["column 1", "column 2"]
    assert ds.x.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert ds.task == "classification" and ds.class_names == ["0", "1"]
    assert ds.preprocessing["header"] is False


def test_csv_semicolon_decimal_comma_crlf_bom(tmp_path: Path) -> None:
    p = tmp_path / "eu.csv"
    p.write_bytes("\ufeffa;b;y\r\n1,5;2;0,25\r\n3;4,5;1,75\r\n\r\n5;6;2,5\r\n".encode())
    ds = load_csv(p, standardize=False, task="regression")
    assert ds.preprocessing["delimiter"] == ";"
    assert ds.feature_names == ["a", "b"]
    assert ds.x.tolist() == [[1.5, 2], [3, 4.5], [5, 6]]
    assert ds.y[:, 0].tolist() == [0.25, 1.75, 2.5]


def test_csv_tab_and_quotes(tmp_path: Path) -> None:
    ds = load_csv(write(tmp_path, "x\ty\n1\t2.5\n2\t3.5\n3\t4.25\n"), standardize=False)
    assert ds.preprocessing["delimiter"] == "\t" and ds.task == "regression"
    quoted = 'x,label\n1,"red, dark"\n2,blue\n3,"red, dark"\n'
    ds = load_csv(write(tmp_path, quoted, "q.csv"))
    assert ds.class_names == ["blue", "red, dark"]


def test_csv_regression_and_auto_task(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * 1.5 + 0.1}" for i in range(30))
    ds = load_csv(write(tmp_path, "x,y\n" + rows + "\n"))
    assert ds.task == "regression" and ds.num_classes == 0 and ds.class_names == []
    assert np.isclose(ds.y[3, 0], 4.6)
    # Integers with many distinct values are a quantity, not classes.
    rows = "\n".join(f"{i},{i * 3}" for i in range(40))
    assert load_csv(write(tmp_path, "x,y\n" + rows + "\n", "b.csv")).task == "regression"
    # Few integer values: classes, sorted numerically.
    rows = "\n".join(f"{i},{[10, 2, 33][i % 3]}" for i in range(30))
    ds = load_csv(write(tmp_path, "x,y\n" + rows + "\n", "c.csv"))
    assert ds.task == "classification" and ds.class_names == ["2", "10", "33"]
    assert ds.y[:3, 0].tolist() == [1, 0, 2]
    # Forced tasks.
    assert load_csv(write(tmp_path, "x,y\n" + rows + "\n", "c.csv"), task="regression").task \
        == "regression"
    rows = "\n".join(f"{i},{i % 2 + 0.5}" for i in range(30))
    ds = load_csv(write(tmp_path, "x,y\n" + rows + "\n", "d.csv"), task="classification")
    assert ds.class_names == ["0.5", "1.5"]


def test_csv_column_selection(tmp_path: Path) -> None:
    text = "id,a,b,c,t\n" + "".join(f"{i},{i},{i * 2},{i % 3},{i * 0.5}\n" for i in range(12))
    p = write(tmp_path, text)
    ds = load_csv(p, target="a", features=["c", "b"], standardize=False)
    assert ds.feature_names == ["c", "b"] and ds.target_names == ["a"]
    assert ds.x[5].tolist() == [2, 10] and ds.task == "regression"
    ds = load_csv(p, target=0, features=[3, -1], standardize=False)
    assert ds.feature_names == ["c", "t"] and ds.target_names == ["id"]
    ds = load_csv(p, target=-1)
    assert ds.feature_names == ["id", "a", "b", "c"]
    ds = load_csv(p, target=["b", "t"], features=["a"])
    assert ds.y.shape == (12, 2) and ds.task == "regression"
    assert load_csv(p, target="C").target_names == ["c"]  # case-insensitive fallback
    ds = load_csv(p, target="c")
    assert ds.task == "classification" and ds.num_classes == 3


def test_csv_standardisation_and_apply_preprocessing(tmp_path: Path) -> None:
    text = "a,b,const,y\n1,10,5,0\n2,30,5,1\n3,20,5,0\n6,40,5,1\n"
    p = write(tmp_path, text)
    ds = load_csv(p)
    raw = np.array([[1, 10, 5], [2, 30, 5], [3, 20, 5], [6, 40, 5]], dtype=float)
    pp = ds.preprocessing
    assert np.allclose(pp["mean"], raw.mean(0))
    assert np.allclose(pp["std"], [raw[:, 0].std(), raw[:, 1].std(), 1.0])
    assert np.allclose(ds.x.mean(0), 0) and np.allclose(ds.x[:, :2].std(0), 1)
    assert np.all(ds.x[:, 2] == 0)
    pp = json.loads(json.dumps(pp))  # survives a round trip through a model file
    # The training file itself, a features-only file, rows, arrays: all give the same x.
    assert np.allclose(apply_preprocessing(pp, p), ds.x)
    q = write(tmp_path, "1,10,5\n2,30,5\n3,20,5\n6,40,5\n", "new.csv")
    assert np.allclose(apply_preprocessing(pp, q), ds.x)
    q = write(tmp_path, "y,const,b,a\n,5,10,1\n,5,30,2\n", "named.csv")
    assert np.allclose(apply_preprocessing(pp, q), ds.x[:2])
    q = write(tmp_path, "1,10,5,\n2,30,5,\n", "blank_target.csv")
    assert np.allclose(apply_preprocessing(pp, q), ds.x[:2])
    assert np.allclose(apply_preprocessing(pp, [[1, 10, 5], ["2", "30", "5"]]), ds.x[:2])
    assert np.allclose(apply_preprocessing(pp, raw), ds.x)
    assert np.allclose(apply_preprocessing(pp, np.array([1, 10, 5, 0])), ds.x[:1])
    raw_ds = load_csv(p, standardize=False)
    assert np.allclose(apply_preprocessing(raw_ds.preprocessing, raw), raw)


def test_apply_preprocessing_generated() -> None:
    ds = make_dataset("moons")
    assert np.allclose(apply_preprocessing(ds.preprocessing, ds.x), ds.x)


def test_apply_preprocessing_errors(tmp_path: Path) -> None:
    pp = load_csv(write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n5,7,1\n")).preprocessing
    with pytest.raises(DataError, match="no column named 'b'"):
        apply_preprocessing(pp, write(tmp_path, "a,c\n1,2\n", "n.csv"))
    with pytest.raises(DataError, match="has 5 values; expected the 2 features"):
        apply_preprocessing(pp, [[1, 2, 3, 4, 5]])
    with pytest.raises(DataError, match="Line 3, column 'b' holds 'x'"):
        apply_preprocessing(pp, write(tmp_path, "a,b\n1,2\n3,x\n", "m.csv"))
    with pytest.raises(DataError, match="Row 2, column 'b'"):
        apply_preprocessing(pp, np.array([[1, 2], [3, np.nan]]))


def test_csv_trailing_separator_and_blank_lines(tmp_path: Path) -> None:
    ds = load_csv(write(tmp_path, "a,b,y,\n1,2,3.5,\n\n4,5,6.5,\n7,8,9.25,\n"))
    assert ds.feature_names == ["a", "b"] and ds.target_names == ["y"]
    with pytest.raises(DataError, match="Line 5, column 'b' is empty"):
        load_csv(write(tmp_path, "a,b,y\n1,2,3\n\n4,5,6\n7,,9\n", "gap.csv"))


def test_csv_preview(tmp_path: Path) -> None:
    body = "".join(f"{i},{i + 1},{i % 2}\n" for i in range(50))
    header, rows, has_header = csv_preview(write(tmp_path, "p,q,r\n" + body), rows=5)
    assert header == ["p", "q", "r"] and has_header
    assert rows == [["0", "1", "0"], ["1", "2", "1"], ["2", "3", "0"], ["3", "4", "1"],
                    ["4", "5", "0"]]
    header, rows, has_header = csv_preview(write(tmp_path, body, "nh.csv"))
    assert header == ["column 1", "column 2", "column 3"] and not has_header and len(rows) == 20
    # Only the start is read: a broken tail or a huge file does not matter.
    p = tmp_path / "big.csv"
    p.write_bytes(b"a,b\n" + b"1,2\n" * 400_000 + b"\xff\xff\n")
    assert csv_preview(p)[0] == ["a", "b"]
    header, rows, _ = csv_preview(write(tmp_path, "a,b\n1,2\n3\n", "ragged.csv"))
    assert rows == [["1", "2"], ["3"]]


# -- CSV errors: each names the line (1-based) and the column --------------------------------

AGES = "name_id,age,score\n" + "".join(f"{i},{20 + i},{i % 2}\n" for i in range(1, 5))


def test_error_empty_cell(tmp_path: Path) -> None:
    text = AGES + "5,,1\n"
    with pytest.raises(DataError, match="Line 6, column 'age' is empty"):
        load_csv(write(tmp_path, text))
    with pytest.raises(DataError, match="Line 6, column 'score' is empty"):
        load_csv(write(tmp_path, AGES + "5,25,\n"))


def test_error_not_a_number(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Line 7, column 'age' holds 'twenty', which is not a n"):
        load_csv(write(tmp_path, AGES + "5,25,1\n6,twenty,0\n"))
    with pytest.raises(DataError, match="Line 3, column 'age' holds 'nan'"):
        load_csv(write(tmp_path, "id,age,s\n1,2,0\n2,nan,1\n3,4,0\n"))


def test_error_text_feature_column(tmp_path: Path) -> None:
    text = "colour,size,y\nred,1,0\nblue,2,1\nred,3,1\n"
    with pytest.raises(DataError, match="Line 2, column 'colour' holds 'red'.*leave the column"):
        load_csv(write(tmp_path, text))
    ds = load_csv(write(tmp_path, text), features=["size"])
    assert ds.x.shape == (3, 1)


def test_error_regression_text_target(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Line 4, column 'score' holds 'high'.*regression"):
        load_csv(write(tmp_path, "a,score\n1,2.5\n2,3.5\n3,high\n"), task="regression")


def test_error_wrong_field_count(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Line 4 has 2 values but the header .* column 'score'"):
        load_csv(write(tmp_path, "name_id,age,score\n1,2,3\n4,5,6\n7,8\n"))
    with pytest.raises(DataError, match="Line 3 has 4 values but .* 'score'.*extra comma"):
        load_csv(write(tmp_path, "name_id,age,score\n1,2,3\n4,5,6,7\n8,9,1\n"))
    with pytest.raises(DataError, match="Line 3 has 2 values but line 1 has 3.*'column 3'"):
        load_csv(write(tmp_path, "1,2,3\n4,5,6\n7,8\n"))


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_error_empty_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(DataError, match="'data.csv' is empty"):
        load_csv(write(tmp_path, text))
    with pytest.raises(DataError, match="is empty"):
        csv_preview(write(tmp_path, text))


def test_error_header_without_rows(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no rows of data"):
        load_csv(write(tmp_path, "a,b,label\n"))


def test_error_unknown_column(tmp_path: Path) -> None:
    p = write(tmp_path, AGES)
    with pytest.raises(DataError, match="no column named 'agee'; the columns are 'name_id', "
                                        "'age', 'score'"):
        load_csv(p, target="agee")
    with pytest.raises(DataError, match="no column named 'height'"):
        load_csv(p, features=["age", "height"])
    with pytest.raises(DataError, match="column number 3 is out of range.*0 to 2"):
        load_csv(p, target=3)
    with pytest.raises(DataError, match="by name or by number"):
        load_csv(p, target=1.5)  # type: ignore[arg-type]


def test_error_bad_choices(tmp_path: Path) -> None:
    p = write(tmp_path, AGES)
    with pytest.raises(DataError, match="'age' cannot be both a feature and the target"):
        load_csv(p, target="age", features=["age", "score"])
    with pytest.raises(DataError, match="task must be"):
        load_csv(p, task="clustering")
    with pytest.raises(DataError, match="exactly one target column"):
        load_csv(p, target=["age", "score"], task="classification")
    with pytest.raises(DataError, match="only one class"):
        load_csv(write(tmp_path, "a,y\n1,cat\n2,cat\n", "one.csv"))
    with pytest.raises(DataError, match="single column"):
        load_csv(write(tmp_path, "1\n2\n3\n", "single.csv"))


def test_error_file_not_found_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_csv(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="does not exist"):
        csv_preview(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="is a folder"):
        load_csv(tmp_path)


def test_error_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes("name,x\nA,1\nJosé,2\n".encode("latin-1"))
    with pytest.raises(DataError, match="Line 3, column 'name' of 'latin1.csv' is not UTF-8"):
        load_csv(p)


def test_error_too_big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, AGES)
    monkeypatch.setattr(csv_import, "MAX_BYTES", 20)
    with pytest.raises(DataError, match="up to 0 MB"):
        load_csv(p)
    monkeypatch.setattr(csv_import, "MAX_BYTES", 10**9)
    monkeypatch.setattr(csv_import, "MAX_CELLS", 9)
    with pytest.raises(DataError, match="more than the 9 values"):
        load_csv(p)
