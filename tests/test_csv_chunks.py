"""CSV import converts whole columns of a chunk of rows at once (numpy); a chunk with a
problem is read again row by row. These tests check that both ways give the same data and
the same message (file, line, column) — with chunks made tiny so that files of a few hundred
rows span many of them."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data import apply_preprocessing, csv_import, load_csv
from engine.errors import DataError

TINY = 12  # values per chunk: a 3-column file has 4 rows per chunk


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_import, "CHUNK_CELLS", TINY)


@pytest.fixture
def row_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the chunks read again row by row."""
    calls: list[int] = []
    real = csv_import._convert_rows

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(csv_import, "_convert_rows", counted)
    return calls


def table(rows: int, bad: dict[int, str] | None = None, sep: str = ",") -> str:
    """A header and `rows` rows of x1, x2, label; `bad` puts text in x2 at data row i."""
    lines = [sep.join(["x1", "x2", "label"])]
    for i in range(rows):
        x2 = (bad or {}).get(i, f"{i * 0.25:.2f}")
        lines.append(sep.join([str(i), x2, str(i % 3)]))
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


def test_clean_file_never_reads_rows_one_by_one(tmp_path, tiny_chunks, row_reads) -> None:
    ds = load_csv(write(tmp_path, table(300)), standardize=False)
    assert row_reads == []
    assert ds.x.shape == (300, 2) and ds.class_names == ["0", "1", "2"]
    np.testing.assert_array_equal(ds.x[:, 1], np.arange(300) * 0.25)
    np.testing.assert_array_equal(ds.y[:, 0], np.arange(300) % 3)


@pytest.mark.parametrize("cell, message", [
    ("abc", "Line 202, column 'x2' holds 'abc', which is not a number"),
    ("", "Line 202, column 'x2' is empty"),
    ("inf", "Line 202, column 'x2' holds 'inf'"),
    ("1e999", "Line 202, column 'x2' holds '1e999'"),
])
def test_bad_cell_far_into_the_file(tmp_path, tiny_chunks, row_reads, cell, message) -> None:
    with pytest.raises(DataError, match=message):
        load_csv(write(tmp_path, table(300, {200: cell})))
    assert row_reads == [1]  # only the chunk holding the cell was read again


def test_ragged_and_blank_rows_in_later_chunks(tmp_path, tiny_chunks) -> None:
    text = table(100).replace("\n77,", "\n\n  \n77,")  # blank lines: skipped, lines counted
    ds = load_csv(write(tmp_path, text), standardize=False)
    assert len(ds) == 100
    lines = text.splitlines()
    lines[90] = "89,1"
    with pytest.raises(DataError, match="Line 91 has 2 values but the header .* 'label'"):
        load_csv(write(tmp_path, "\n".join(lines) + "\n"))


def test_record_spanning_lines_keeps_line_numbers(tmp_path, tiny_chunks) -> None:
    """A quoted label holding a line break: later lines still number as in an editor."""
    rows = [f"{i},{i},{'a' if i % 2 else 'b'}" for i in range(60)]
    rows[30] = '30,30,"b\nb"'
    rows[50] = "50,x,a"
    text = "x1,x2,label\n" + "\n".join(rows) + "\n"
    with pytest.raises(DataError, match="Line 53, column 'x2' holds 'x'"):
        load_csv(write(tmp_path, text))


def test_unreadable_line_after_a_bad_cell(tmp_path, tiny_chunks) -> None:
    """The first problem in the file wins, even within one chunk (past the rows read to
    sniff the layout)."""
    long = "9," + "1" * 140_000 + ",0"
    lines = table(100).splitlines()
    lines[81] = "80,no,1"
    lines[83] = long
    with pytest.raises(DataError, match="Line 82, column 'x2' holds 'no'"):
        load_csv(write(tmp_path, "\n".join(lines) + "\n"))
    lines[81] = "80,2,1"
    with pytest.raises(DataError, match="Line 84 of 'data.csv' could not be read: field la"):
        load_csv(write(tmp_path, "\n".join(lines) + "\n"))


def test_decimal_comma_and_trailing_separator(tmp_path, tiny_chunks, row_reads) -> None:
    text = "a;b;y;\n" + "".join(f"{i},5;{i};{i % 2};\n" for i in range(50))
    ds = load_csv(write(tmp_path, text), standardize=False)
    assert row_reads == []
    np.testing.assert_array_equal(ds.x[:, 0], np.arange(50) + 0.5)
    assert ds.feature_names == ["a", "b"] and ds.class_names == ["0", "1"]
    with pytest.raises(DataError, match="Line 41, column 'a' holds '1,5.0'"):
        load_csv(write(tmp_path, text.replace("\n39,5;", "\n1,5.0;")))


def test_regression_target_message_names_the_line(tmp_path, tiny_chunks) -> None:
    text = table(80).replace("\n70,17.50,1\n", "\n70,17.50,high\n")
    with pytest.raises(DataError, match="Line 72, column 'label' holds 'high'.*regression"):
        load_csv(write(tmp_path, text), task="regression")


def test_predict_rows_far_into_the_file(tmp_path, tiny_chunks) -> None:
    ds = load_csv(write(tmp_path, table(50), "train.csv"))
    x = apply_preprocessing(ds.preprocessing, write(tmp_path, table(200), "new.csv"))
    assert x.shape == (200, 2)
    with pytest.raises(DataError, match="Line 151, column 'x2' holds 'z'"):
        apply_preprocessing(ds.preprocessing, write(tmp_path, table(200, {149: "z"}), "b.csv"))


# -- files of numbers only: numpy.loadtxt after the sniffed rows ------------------------------

@pytest.fixture
def loadtxt_used(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether numpy.loadtxt read the rows after the sample (one entry per attempt)."""
    used: list[bool] = []
    real = csv_import._Table.numbers_after_sample

    def spy(self):
        got = real(self)
        used.append(got is not None)
        return got

    monkeypatch.setattr(csv_import._Table, "numbers_after_sample", spy)
    return used


def test_numbers_only_file_is_read_at_once(tmp_path, loadtxt_used, row_reads) -> None:
    text = table(200).replace("\n", "\r\n")
    ds = load_csv(write(tmp_path, text), standardize=False)
    assert loadtxt_used == [True] and row_reads == []
    np.testing.assert_array_equal(ds.x[:, 1], np.arange(200) * 0.25)
    assert ds.class_names == ["0", "1", "2"]


@pytest.mark.parametrize("change, message", [
    (lambda ls: ls[:120] + [""] + ls[120:], "Line 151, column 'x2' holds 'bad'"),  # blank
    (lambda ls: ls[:120] + ["  "] + ls[120:], "Line 151, column 'x2' holds 'bad'"),
    (lambda ls: ls[:120] + ["1," + "0" * 140_000 + ",1"] + ls[120:],
     "Line 121 of 'data.csv' could not be read: field larger than field limit"),
])
def test_loadtxt_gives_way_where_lines_would_differ(tmp_path, loadtxt_used, change,
                                                    message) -> None:
    lines = table(200, {148: "bad"}).splitlines()
    with pytest.raises(DataError, match=message):
        load_csv(write(tmp_path, "\n".join(change(lines)) + "\n"))
    good = "\n".join(change(table(200).splitlines())) + "\n"
    if "field" not in message:
        assert len(load_csv(write(tmp_path, good))) == 200
    assert loadtxt_used[-1] is False


def test_text_class_names_are_kept_as_written(tmp_path, loadtxt_used) -> None:
    """Numbers in the sniffed rows but text further down: classes named as in the file."""
    rows = [f"{i},{i % 2}" for i in range(100)] + ["100,1.0", "101,one"]
    ds = load_csv(write(tmp_path, "x,y\n" + "\n".join(rows) + "\n"))
    assert ds.class_names == ["0", "1", "1.0", "one"]
    assert loadtxt_used == [False]


# -- both ways agree on any text --------------------------------------------------------------

CELLS = ["1", "-2.5", " 3 ", "4,5", "1e3", "", " ", "nan", "inf", "1e999", "x", "y", "١٢",
         '"7"', '"a,b"', '"l\nm"', "0x1F", "1_0"]


@st.composite
def csv_texts(draw) -> str:
    """Mostly numbers with a few odd cells and rows; one byte draw picks all cells (the rows
    repeated, so that files go on past the rows read to sniff the layout)."""
    sep = draw(st.sampled_from([",", ";", "\t"]))
    width = draw(st.integers(2, 4))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    rows, row = [], []
    odd = draw(st.sampled_from([220, 250, 256]))  # 256: numbers only
    for b in draw(st.binary(min_size=1, max_size=200)):
        ragged = odd < 256 and b >= 254  # 255: a short row, 254: a long one
        if (ragged and b == 255) or len(row) == width + (ragged and b == 254):
            rows.append(sep.join(row))
            row = []
        row.append(CELLS[b % len(CELLS)] if b >= odd else str(b % 7 - 3))
    rows.append(sep.join(row))
    rows = rows * draw(st.sampled_from([1, 1, 5, 30]))  # past the 51 rows sniffed
    head = [sep.join(f"c{j}" for j in range(width))] if draw(st.booleans()) else []
    return end.join(head + rows) + end


@functools.cache
def _model(folder: Path):
    return load_csv(write(folder, "a,b,c,d,e\n1,2,3,4,0\n5,6,7,8,1\n", "m.csv"),
                    features=[0, 1, 2])


def _outcome(call):
    try:
        return call()
    except DataError as exc:
        return str(exc)


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return (np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
            and a.class_names == b.class_names and a.preprocessing == b.preprocessing)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=csv_texts(), chunk=st.sampled_from([1, 5, 12, 1 << 18]))
def test_columns_at_once_equal_row_by_row(tmp_path, monkeypatch, text: str, chunk: int) -> None:
    monkeypatch.setattr(csv_import, "CHUNK_CELLS", chunk)
    path = write(tmp_path, text)
    model = _model(tmp_path)
    fast = (_outcome(lambda: load_csv(path)),
            _outcome(lambda: apply_preprocessing(model.preprocessing, path)))
    with monkeypatch.context() as m:
        m.setattr(csv_import, "_convert_chunk", lambda *a: None)
        m.setattr(csv_import._Table, "numbers_after_sample", lambda self: None)
        slow = (_outcome(lambda: load_csv(path)),
                _outcome(lambda: apply_preprocessing(model.preprocessing, path)))
    assert all(_same(a, b) for a, b in zip(fast, slow)), (fast, slow)
