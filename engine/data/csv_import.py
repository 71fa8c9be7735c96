"""CSV import: read a table of numbers into a Dataset, and prepare new rows the same way.

Uses the csv module only (never pickle). Handles a header row or none, comma, semicolon
or tab separators (with decimal commas when the separator is not a comma), text class
labels, and standardisation of the features. Every problem is a DataError whose message
names the line (1-based, as in a text editor) and the column.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import Dataset
from engine.errors import DataError

MAX_BYTES = 200 * 1024 * 1024  # biggest CSV file read
MAX_CELLS = 10_000_000  # most values (rows x columns) read
MAX_CLASSES = 100  # a target with more distinct labels is almost surely not a class column
AUTO_MAX_CLASSES = 20  # task="auto": an integer target with at most this many values is classes
FIELD_LIMIT = csv.field_size_limit()  # the csv reader's longest field
CHUNK_CELLS = 1 << 16  # values converted together (a chunk holds the GIL ~30 ms)
PREVIEW_BYTES = 1 << 20  # csv_preview reads only this much of the file
SNIFF_ROWS = 50  # rows looked at to guess the separator and the header
SNIFF_CHARS = 1 << 20  # at most this much text is looked at to guess the separator
MAX_COLUMNS = 65_536  # a wider file is refused before its first line is split
DELIMITERS = ("\t", ";", ",")  # in order of preference when several fit
_DELIM_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}

PathLike = str | os.PathLike[str]


# -- reading text ---------------------------------------------------------------------------

def _read_text(path: PathLike, limit: int | None = None) -> tuple[str, str]:
    """(text, display name) of a UTF-8 file; at most `limit` bytes, cut at a line end."""
    p = Path(path)
    name = p.name or str(path)
    if not p.exists():
        raise DataError(f"The file '{path}' does not exist; check its name and folder.")
    if p.is_dir():
        raise DataError(f"'{path}' is a folder, not a CSV file.")
    try:
        size = p.stat().st_size
        if limit is None and size > MAX_BYTES:
            raise DataError(
                f"The file '{name}' is {size / 1e6:.0f} MB; Gradscape reads CSV files of up "
                f"to {MAX_BYTES // (1024 * 1024)} MB. Use a smaller sample of its rows."
            )
        with open(p, "rb") as fh:
            data = fh.read(-1 if limit is None else limit)
    except OSError as exc:
        raise DataError(f"The file '{path}' could not be read: {exc.strerror or exc}.") from exc
    if limit is not None and size > limit:
        data = data[: data.rfind(b"\n") + 1] or data
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"Line {line}{_column_at(data, exc.start, name)} of '{name}' is not UTF-8 text. "
            "Save the file as UTF-8 CSV (in Excel: \"CSV UTF-8\") and try again."
        ) from exc
    if not text.strip():
        raise DataError(
            f"The file '{name}' is empty; it needs one line per sample with the values "
            "separated by commas."
        )
    return text, name


def _column_at(data: bytes, pos: int, name: str) -> str:
    """", column 'x'" for the byte at `pos`, judged from the text before it ("" if unsure)."""
    before = data[:pos].decode("utf-8", errors="replace")
    done, _, partial = before.rpartition("\n")
    if not done.strip():
        return ""
    try:
        t = _open_table(done + "\n", name)
    except DataError:
        return ""
    j = partial.count(t.delimiter)
    return f", column '{t.columns[j]}'" if j < len(t.columns) else ""


class _Records:
    """The records of CSV text, one at a time (with the line each starts on) or a chunk at
    a time (raw, for converting whole columns at once).

    The csv reader pulls lines from a StringIO without reading ahead, so the offset and the
    count of lines read are exact between records: a chunk can be read again record by
    record to find the exact line of a problem.
    """

    def __init__(self, text: str, delimiter: str, name: str) -> None:
        self.text = text
        self.buf = io.StringIO(text, newline="")
        self.delimiter = delimiter
        self.name = name
        self.rewind(0, 0)

    def rewind(self, pos: int, line: int) -> None:
        """Read on from text offset `pos`, which is after `line` lines."""
        self.buf.seek(pos)
        self.reader = csv.reader(self.buf, delimiter=self.delimiter)
        self._line0 = line

    @property
    def lines_read(self) -> int:
        return self._line0 + self.reader.line_num

    def records(self, count: int | None = None) -> Iterator[tuple[int, list[str]]]:
        """(line number where the record starts, stripped fields) of the next `count`
        records (all if None), skipping blank lines."""
        start = self.lines_read + 1
        try:
            for fields in itertools.islice(self.reader, count):
                line, start = start, self.lines_read + 1
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                yield line, [f.strip() for f in fields]
        except csv.Error as exc:
            raise DataError(
                f"Line {self.lines_read} of '{self.name}' could not be read: {exc}."
            ) from exc

    def chunk(self, size: int) -> tuple[int, int, list[list[str]] | None] | None:
        """(text offset, lines read before, raw records) of the next `size` records, None at
        the end. The records are None if one could not be read: read them again with
        rewind + records to get the message at its line."""
        pos, line = self.buf.tell(), self.lines_read
        try:
            raw = list(itertools.islice(self.reader, size))
        except csv.Error:
            return pos, line, None
        return (pos, line, raw) if raw else None


def _sniff(text: str) -> str:
    """Guess the separator from the first lines: tab, semicolon or comma."""
    head = text[:SNIFF_CHARS]
    sample = "\n".join(itertools.islice((ln for ln in head.splitlines() if ln.strip()),
                                        SNIFF_ROWS))
    best, best_count = ",", 1
    for d in DELIMITERS:
        try:
            counts = [len(r) for r in csv.reader(io.StringIO(sample), delimiter=d) if r]
        except csv.Error:  # e.g. a whole wide line is one field longer than csv allows
            continue
        if not counts:
            continue
        if min(counts) > 1 and len(set(counts)) == 1:
            return d
        mode = max(set(counts), key=counts.count)
        if mode > best_count:
            best, best_count = d, mode
    return best


def _number(s: str, decimal_comma: bool) -> float | None:
    """The finite number written in `s`, or None."""
    try:
        v = float(s)
    except ValueError:
        if not (decimal_comma and s.count(",") == 1 and "." not in s):
            return None
        try:
            v = float(s.replace(",", "."))
        except ValueError:
            return None
    return v if math.isfinite(v) else None


def _fmt_num(v: float) -> str:
    """A class value as short text: 3 rather than 3.0."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _name_list(names: Sequence[str], limit: int = 30) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- table structure ------------------------------------------------------------------------

@dataclass
class _Chunk:
    """Data rows read together: raw fields for converting whole columns at once, and a
    way to read the same rows one by one when something needs a closer look."""

    rows: list[list[str]] | None  # fields as read (None: a record could not be read)
    lines: np.ndarray | None  # line of each row (None: some record spans several lines)
    one_by_one: Callable[[], Iterator[tuple[int, list[str]]]]  # like _Table.rows()


@dataclass
class _Table:
    """A CSV file after sniffing: its layout and its data rows."""

    name: str
    delimiter: str
    decimal_comma: bool
    header: bool
    columns: list[str]
    first_line: int  # line of the first record (the header, if any)
    trailing: bool  # an empty last column (separator at each line end) was dropped
    sample: list[tuple[int, list[str]]]  # data rows among the records read to sniff
    source: _Records  # the records after the sample

    def _trim(self, fields: list[str]) -> list[str]:
        width = len(self.columns)
        if self.trailing and len(fields) == width + 1 and fields[-1] == "":
            return fields[:-1]
        return fields

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line, stripped fields) of each data row (after the header), blank lines skipped."""
        for line, fields in itertools.chain(self.sample, self.source.records()):
            yield line, self._trim(fields)

    def numbers_after_sample(self) -> tuple[np.ndarray, int] | None:
        """(every record after the sample as a row of numbers, line before the first) read
        by numpy.loadtxt in one go — if each is one line of `width` finite numbers that the
        csv reader would split the same way. None otherwise, and nothing is read."""
        src = self.source
        pos, before = src.buf.tell(), src.lines_read
        rest = src.text[pos:]
        if not rest.strip() or rest.count("\r") != rest.count("\r\n"):
            return None  # nothing left, or lines ending in a lone CR
        data = np.frombuffer(rest.encode(), dtype=np.uint8)
        ends = np.flatnonzero(data == 10)  # line lengths in bytes: never less than in characters
        if np.diff(ends, prepend=-1, append=len(data)).max() > FIELD_LIMIT:
            return None  # the csv reader refuses a field this long: let it say where
        try:
            values = np.loadtxt(io.StringIO(rest), delimiter=self.delimiter, comments=None,
                                quotechar=None, dtype=np.float64, ndmin=2)
        except ValueError:
            return None
        lines = rest.count("\n") + (not rest.endswith("\n"))
        if values.shape != (lines, len(self.columns)) or not np.isfinite(values).all():
            return None  # blank lines skipped (their numbers shift), or not every cell finite
        src.rewind(len(src.text), before + lines)
        return values, before

    def chunks(self) -> Iterator[_Chunk]:
        """The data rows about CHUNK_CELLS values at a time (blank rows included)."""
        if self.sample:
            sample = self.sample
            yield _Chunk([f for _, f in sample], np.array([ln for ln, _ in sample]),
                         lambda: ((ln, self._trim(f)) for ln, f in sample))
        size = max(1, CHUNK_CELLS // max(len(self.columns), 1))
        while (got := self.source.chunk(size)) is not None:
            pos, before, raw = got
            count = None if raw is None else len(raw)
            lines = None
            if raw is not None and self.source.lines_read - before == len(raw):
                lines = np.arange(before + 1, before + 1 + len(raw))  # one line per record

            def one_by_one(pos=pos, before=before, count=count):
                self.source.rewind(pos, before)
                return ((ln, self._trim(f)) for ln, f in self.source.records(count))

            yield _Chunk(raw, lines, one_by_one)


def _detect_header(first: list[str], body: list[list[str]], dc: bool) -> bool:
    """True if the first row is text where the rows below hold numbers."""
    if not body:
        return any(c and _number(c, dc) is None for c in first)
    for j, cell in enumerate(first):
        if not cell or _number(cell, dc) is not None:
            continue
        below = [r[j] for r in body if j < len(r) and r[j]]
        if below and all(_number(v, dc) is not None for v in below):
            return True
    return False


def _unique_names(raw: list[str]) -> list[str]:
    """Column names made unique with _2, _3, … (linear: a set and the next free suffix)."""
    names: list[str] = []
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}
    for j, n in enumerate(raw):
        base = n or f"column {j + 1}"
        name = base
        if name in taken:
            k = next_suffix.get(base, 2)
            while f"{base}_{k}" in taken:
                k += 1
            name = f"{base}_{k}"
            next_suffix[base] = k + 1
        taken.add(name)
        names.append(name)
    return names


def _open_table(text: str, name: str, delimiter: str | None = None) -> _Table:
    delimiter = delimiter or _sniff(text)
    top = text.lstrip("\r\n")
    end = top.find("\n")
    guess = top.count(delimiter, 0, end if end >= 0 else len(top)) + 1
    if guess > MAX_COLUMNS:
        raise DataError(
            f"The first line of '{name}' has more than {MAX_COLUMNS:,} values; Gradscape "
            f"reads files of up to {MAX_COLUMNS:,} columns."
        )
    dc = delimiter != ","
    source = _Records(text, delimiter, name)
    # The generator stops right after the last record taken: the rest is read from there.
    sample = list(itertools.islice(source.records(), SNIFF_ROWS + 1))
    if not sample:
        raise DataError(f"The file '{name}' is empty; it has no lines with values.")
    first_line, first = sample[0]
    body = [f for _, f in sample[1:]]
    header = _detect_header(first, body, dc)
    width = len(first)
    # A separator at the end of every line makes an empty last column: drop it.
    trailing = width > 1 and all(len(f) == width and f[-1] == "" for _, f in sample)
    if trailing:
        width -= 1
    columns = _unique_names(first[:width]) if header else [
        f"column {j + 1}" for j in range(width)
    ]
    return _Table(name, delimiter, dc, header, columns, first_line, trailing,
                  sample[1:] if header else sample, source)


def _check_width(t: _Table, line: int, fields: list[str]) -> None:
    n = len(t.columns)
    if len(fields) == n:
        return
    sep = _DELIM_NAMES[t.delimiter]
    where = f"the header (line {t.first_line})" if t.header else f"line {t.first_line}"
    if len(fields) < n:
        missing = t.columns[len(fields)]
        raise DataError(
            f"Line {line} has {len(fields)} values but {where} has {n}, so column "
            f"'{missing}' is missing there. Check that line for a missing {sep}."
        )
    raise DataError(
        f"Line {line} has {len(fields)} values but {where} has {n} (last column "
        f"'{t.columns[-1]}'). Check that line for an extra {sep}, or put text that contains "
        f"a {sep} in double quotes."
    )


def _resolve(spec: Any, columns: list[str], what: str) -> int:
    """Index of the column given by name or 0-based number (negative counts from the end)."""
    n = len(columns)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        j = int(spec)
        if -n <= j < n:
            return j % n
        raise DataError(
            f"The {what} column number {j} is out of range: the file has {n} columns, "
            f"numbered 0 to {n - 1} (or -1 for the last)."
        )
    if isinstance(spec, str):
        if spec in columns:
            return columns.index(spec)
        folded = [j for j, c in enumerate(columns) if c.lower() == spec.strip().lower()]
        if len(folded) == 1:
            return folded[0]
        raise DataError(
            f"There is no column named '{spec}'; the columns are {_name_list(columns)}."
        )
    raise DataError(f"A {what} column must be given by name or by number, not {spec!r}.")


# -- reading the data rows -------------------------------------------------------------------

def _read_columns(
    t: _Table, numeric: list[int], text: list[int], decimal_comma: bool,
    max_cells: int | None = None,
) -> tuple[np.ndarray, list[Any], np.ndarray]:
    """(numbers of the `numeric` columns (rows, len(numeric)), the `text` columns (stripped
    text, or an array of numbers when every cell is one), line of each row) of all data rows.

    A file of numbers only is read by numpy.loadtxt after the rows sniffed. Otherwise whole
    columns of a chunk of rows are converted at once; a chunk where that fails (a blank or
    ragged row, a cell that is not a number, an empty target) is read again row by row,
    which raises the message for the first problem, naming its line and column.
    """
    n_cols = len(t.columns)
    numbers: list[np.ndarray] = []
    texts: list[Any] = [[] for _ in text]
    lines: list[np.ndarray] = []
    cells = 0
    for chunk in t.chunks():
        fast = None
        if chunk.rows is not None and chunk.lines is not None and (
                max_cells is None or cells + len(chunk.rows) * n_cols <= max_cells):
            fast = _convert_chunk(t, chunk.rows, numeric, text, decimal_comma)
        if fast is not None:
            cells += len(chunk.rows) * n_cols  # type: ignore[arg-type]
            x, cols, at = fast[0], fast[1], chunk.lines
        else:
            x, cols, at, cells = _convert_rows(t, chunk.one_by_one(), numeric, text,
                                               decimal_comma, cells, max_cells)
        numbers.append(x)
        for k, col in enumerate(cols):
            texts[k].extend(col)
        lines.append(at)  # type: ignore[arg-type]
        if len(numbers) == 1 and t.sample and _rest_at_once(
                t, numeric, text, decimal_comma, numbers, texts, lines):
            break
    x = np.concatenate(numbers) if numbers else np.zeros((0, len(numeric)))
    return x, texts, np.concatenate(lines) if lines else np.zeros(0, dtype=np.int64)


def _rest_at_once(t: _Table, numeric: list[int], text: list[int], decimal_comma: bool,
                  numbers: list[np.ndarray], texts: list[Any], lines: list[np.ndarray]) -> bool:
    """After the sample, read all other rows with numpy.loadtxt when every cell is a number
    (about 10× faster than the csv module); False if that does not apply (nothing read).

    Target columns then become arrays of numbers, which needs the sample's targets to be
    numbers too (text class names keep their exact spelling only as text)."""
    head = [_floats(col, decimal_comma) for col in texts]
    if any(h is None for h in head):
        return False
    got = t.numbers_after_sample()
    if got is None:
        return False
    values, before = got
    numbers.append(values[:, numeric])
    for k, j in enumerate(text):
        texts[k] = np.concatenate([head[k], values[:, j]])  # type: ignore[list-item]
    lines.append(np.arange(before + 1, before + 1 + len(values)))
    return True


def _convert_chunk(
    t: _Table, rows: list[list[str]], numeric: list[int], text: list[int],
    decimal_comma: bool,
) -> tuple[np.ndarray, list[list[str]]] | None:
    """A chunk's columns converted whole, or None if some row needs a closer look."""
    width = len(t.columns)
    widths = set(map(len, rows))
    if widths != {width} and not (
            t.trailing and widths == {width + 1}
            and not any(s.strip() for s in set(map(itemgetter(width), rows)))):
        return None
    x = np.empty((len(rows), len(numeric)))
    for k, j in enumerate(numeric):
        values = _floats(list(map(itemgetter(j), rows)), decimal_comma)
        if values is None:
            return None
        x[:, k] = values
    cols = []
    for j in text:
        col = [s.strip() for s in map(itemgetter(j), rows)]
        if not all(col):
            return None
        cols.append(col)
    return x, cols


def _convert_rows(
    t: _Table, rows: Iterator[tuple[int, list[str]]], numeric: list[int], text: list[int],
    decimal_comma: bool, cells: int, max_cells: int | None,
) -> tuple[np.ndarray, list[list[str]], np.ndarray, int]:
    """Like _convert_chunk, one row at a time: raises the first problem's message."""
    values = array("d")
    cols: list[list[str]] = [[] for _ in text]
    lines = array("q")
    for line, fields in rows:
        _check_width(t, line, fields)
        cells += len(t.columns)
        if max_cells is not None and cells > max_cells:
            raise DataError(
                f"The file '{t.name}' holds more than {max_cells:,} values (reached at line "
                f"{line}); use a smaller sample of its rows."
            )
        for j in numeric:
            s = fields[j]
            v = _number(s, decimal_comma) if s else None
            if v is None:
                _bad_cell(line, t.columns[j], s, "a feature")
            values.append(v)  # type: ignore[arg-type]
        for k, j in enumerate(text):
            if not fields[j]:
                _bad_cell(line, t.columns[j], "", "the target")
            cols[k].append(fields[j])
        lines.append(line)
    x = np.frombuffer(values, dtype=np.float64).reshape(len(lines), len(numeric)).copy()
    return x, cols, np.frombuffer(lines, dtype=np.int64).copy(), cells


def _floats(cells: Sequence[str], decimal_comma: bool) -> np.ndarray | None:
    """Every cell as a finite number (as _number reads it), or None if one is not."""
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        if not decimal_comma:
            return None
        # Replacing every comma reads "1,5" as 1.5 like _number; text with a comma and a
        # point, or two commas, has two points then and still fails.
        try:
            values = np.array([s.replace(",", ".") for s in cells], dtype=np.float64)
        except ValueError:
            return None
    return values if np.isfinite(values).all() else None


# -- public API -----------------------------------------------------------------------------

def csv_preview(path: PathLike, rows: int = 20) -> tuple[list[str], list[list[str]], bool]:
    """(column names, first `rows` data rows as text, whether a header row was found).

    Reads only the start of the file. Without a header the names are "column 1",
    "column 2", ...; rows are returned as found (a broken row may be shorter or longer).
    """
    text, name = _read_text(path, limit=PREVIEW_BYTES)
    t = _open_table(text, name)
    return t.columns, [f for _, f in itertools.islice(t.rows(), max(rows, 0))], t.header


def load_csv(
    path: PathLike,
    target: str | int | list[str] | list[int] | None = None,
    features: list[str] | list[int] | None = None,
    task: str = "auto",
    standardize: bool = True,
) -> Dataset:
    """Read a CSV file of numbers into a Dataset.

    Columns are chosen by name or by 0-based number (-1 is the last). By default the last
    column is the target and all others are features. task "auto" makes a text target,
    or an integer target with few distinct values, a classification; class names are
    kept sorted. Features are standardised to mean 0 and std 1 when `standardize` is on;
    `preprocessing` records everything needed to prepare new rows with apply_preprocessing.
    """
    if task not in ("auto", "classification", "regression"):
        raise DataError(
            f"The task must be 'auto', 'classification' or 'regression', not {task!r}."
        )
    text, name = _read_text(path)
    t = _open_table(text, name)
    cols = t.columns
    n_cols = len(cols)
    est_rows = text.count("\n") + 1
    if est_rows * n_cols > MAX_CELLS:
        raise DataError(
            f"The file '{name}' has about {est_rows:,} lines of {n_cols} values, more than "
            f"the {MAX_CELLS:,} values Gradscape reads. Use a smaller sample of its rows."
        )

    # Which columns are features and which are targets.
    if target is None:
        if n_cols < 2:
            raise DataError(
                f"The file '{name}' has a single column; it needs at least one feature "
                "column and a target column."
            )
        t_idx = [n_cols - 1]
    elif isinstance(target, (list, tuple)):
        if not target:
            raise DataError("Choose at least one target column.")
        t_idx = list(dict.fromkeys(_resolve(s, cols, "target") for s in target))
    else:
        t_idx = [_resolve(target, cols, "target")]
    if features is None:
        f_idx = [j for j in range(n_cols) if j not in t_idx]
    else:
        f_idx = list(dict.fromkeys(_resolve(s, cols, "feature") for s in features))
        both = [cols[j] for j in f_idx if j in t_idx]
        if both:
            raise DataError(
                f"Column '{both[0]}' cannot be both a feature and the target; "
                "leave it out of the features."
            )
    if not f_idx:
        raise DataError("Choose at least one feature column (an input for the network).")

    # Read the rows: features become numbers right away, targets stay text for now.
    x, targets, lines = _read_columns(t, f_idx, t_idx, t.decimal_comma, MAX_CELLS)
    if len(lines) == 0:
        raise DataError(f"The file '{name}' has a header line but no rows of data below it.")

    y, task_out, class_names = target_values(targets, [cols[j] for j in t_idx], lines, task,
                                             t.decimal_comma)
    del targets

    x, scaling = standardize_features(x, standardize)
    preprocessing: dict[str, Any] = {
        "source": "csv",
        "file": name,
        "delimiter": t.delimiter,
        "decimal_comma": t.decimal_comma,
        "header": t.header,
        "columns": list(cols),
        "feature_names": [cols[j] for j in f_idx],
        "feature_indices": f_idx,
        "target_names": [cols[j] for j in t_idx],
        "target_indices": t_idx,
        "task": task_out,
        "class_names": class_names,
        **scaling,
    }
    return Dataset(
        name=Path(path).stem or name,
        x=x,
        y=y,
        task=task_out,
        num_classes=len(class_names),
        feature_names=[cols[j] for j in f_idx],
        target_names=[cols[j] for j in t_idx],
        class_names=class_names,
        preprocessing=preprocessing,
    )


def standardize_features(x: np.ndarray, standardize: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """(features, preprocessing entries): standardised to mean 0 and std 1 if asked.

    The mean and std are recorded either way, so a model can say what its raw data looked
    like; `standardize` says whether predict must apply them.
    """
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1:])
    std = x.std(axis=0) if len(x) else np.ones(x.shape[1:])
    std[~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0
    if standardize:
        x = (x - mean) / std
    return x, {"standardize": bool(standardize), "mean": mean.tolist(), "std": std.tolist()}


def _one_line(text: str) -> str:
    """Text shown inside a one-line message: line breaks written as \\n."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _bad_cell(line: int, column: str, value: str, role: str, unit: str = "Line") -> None:
    column = _one_line(column)
    if not value:
        raise DataError(
            f"{unit} {line}, column '{column}' is empty. Fill it in or delete the "
            f"{unit.lower()}."
        )
    raise DataError(
        f"{unit} {line}, column '{column}' holds '{_one_line(value[:40])}', which is not a "
        f"number; {role} must be numeric. Fix the cell, or leave the column out."
    )


def target_values(
    targets: list[list[str]], names: list[str], lines: Sequence[int], task: str,
    decimal_comma: bool = False, unit: str = "Line",
) -> tuple[np.ndarray, str, list[str]]:
    """(y, task, class names) from the target columns' text.

    `lines` numbers each row for messages ("Line 4, column 'y' ..."; `unit` "Row" for a
    table). task "auto" picks classification for text or few whole numbers.
    """
    n = len(lines)
    names = [_one_line(name) for name in names]
    numeric: list[np.ndarray | None] = []
    first_bad: list[int | None] = []
    for col in targets:
        vals = _floats(col, decimal_comma)
        numeric.append(vals)
        first_bad.append(None if vals is not None else
                         next(i for i, s in enumerate(col) if _number(s, decimal_comma) is None))

    if task == "auto":
        if len(targets) > 1:
            task = "regression"
        elif numeric[0] is None:
            task = "classification"
        else:
            v = numeric[0]
            distinct = np.unique(v)
            few = len(distinct) <= min(AUTO_MAX_CLASSES, max(2, n // 2))
            task = "classification" if few and np.all(v == np.round(v)) else "regression"

    if task == "regression":
        for k, vals in enumerate(numeric):
            if vals is None:
                i = first_bad[k]
                assert i is not None
                shown = _one_line(str(targets[k][i])[:40])
                raise DataError(
                    f"{unit} {lines[i]}, column '{names[k]}' holds '{shown}', which is not a "
                    "number; a regression target must be numeric (choose task "
                    "'classification' for labels)."
                )
        return np.stack(numeric, axis=1), task, []  # type: ignore[arg-type]

    if len(targets) != 1:
        raise DataError(
            f"Classification needs exactly one target column, but {len(targets)} were "
            f"chosen ({_name_list(names)})."
        )
    vals = numeric[0]
    if vals is not None:
        distinct = np.unique(vals)
        class_names = [_fmt_num(v) for v in distinct]
        index = np.searchsorted(distinct, vals)
    else:
        class_names = sorted(set(targets[0]))
        lookup = {c: i for i, c in enumerate(class_names)}
        index = np.fromiter(map(lookup.__getitem__, targets[0]), dtype=np.int64, count=n)
    if len(class_names) < 2:
        raise DataError(
            f"The target column '{names[0]}' holds only one class ('{class_names[0]}'); "
            "a classifier needs at least two."
        )
    if len(class_names) > MAX_CLASSES:
        raise DataError(
            f"The target column '{names[0]}' has {len(class_names)} different values, too "
            f"many classes (at most {MAX_CLASSES}). Choose task 'regression' if it is a "
            "quantity, or another target column."
        )
    return index.astype(np.float64).reshape(-1, 1), "classification", class_names


def apply_preprocessing(
    preprocessing: dict[str, Any], path_or_rows: PathLike | Sequence[Sequence[Any]] | np.ndarray
) -> np.ndarray:
    """Features of new rows, prepared exactly like the training data (for predict).

    `path_or_rows` is a CSV file, a list of rows (text or numbers) or a 2-D array. A row
    may hold just the features, in training order, or all columns of the training file
    (the target may be blank); with a header row, columns are found by name.
    """
    feature_names = list(preprocessing.get("feature_names") or [])
    if isinstance(path_or_rows, np.ndarray):
        arr = np.asarray(path_or_rows, dtype=np.float64)
        arr = arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(len(arr), -1)
        x = _pick_numeric(preprocessing, arr, feature_names)
    else:
        if isinstance(path_or_rows, (str, os.PathLike)):
            text, name = _read_text(path_or_rows)
        else:
            buf = io.StringIO()
            csv.writer(buf).writerows([_cell_text(v) for v in row] for row in path_or_rows)
            text, name = buf.getvalue(), "the new rows"
            if not text.strip():
                return _finish(preprocessing, np.zeros((0, len(feature_names))))
        x = _pick_text(preprocessing, _open_table(text, name), feature_names)
    return _finish(preprocessing, x)


def _cell_text(v: Any) -> str:
    """A cell of an in-memory row as CSV text (floats written exactly)."""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    return str(v)


def _expected_widths(pp: dict[str, Any], feature_names: list[str]) -> str:
    cols = pp.get("columns")
    text = f"the {len(feature_names)} features ({_name_list(feature_names, 10)})"
    if cols and len(cols) != len(feature_names):
        text += f" or all {len(cols)} columns of the training file"
    return text


def _choose_columns(
    pp: dict[str, Any], feature_names: list[str], width: int, header: list[str] | None,
    where: str,
) -> list[int]:
    if header is not None and feature_names:
        missing = [f for f in feature_names if f not in header]
        if not missing:
            return [header.index(f) for f in feature_names]
        raise DataError(
            f"The new data has no column named '{missing[0]}'; it needs the training "
            f"features {_name_list(feature_names)}."
        )
    cols = pp.get("columns")
    if feature_names and width == len(feature_names):
        return list(range(width))
    if cols and width == len(cols):
        return list(pp["feature_indices"])
    if not feature_names:
        return list(range(width))
    raise DataError(
        f"{where} has {width} values; expected {_expected_widths(pp, feature_names)}."
    )


def _pick_numeric(pp: dict[str, Any], arr: np.ndarray, feature_names: list[str]) -> np.ndarray:
    idx = _choose_columns(pp, feature_names, arr.shape[1], None, "Each new row")
    x = arr[:, idx]
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        i, k = bad[0]
        name = feature_names[k] if feature_names else f"column {k + 1}"
        raise DataError(f"Row {i + 1}, column '{name}' is not a finite number.")
    return x


def _pick_text(pp: dict[str, Any], t: _Table, feature_names: list[str]) -> np.ndarray:
    width = len(t.columns)
    cols, f_idx = pp.get("columns"), pp.get("feature_indices")
    if t.trailing and not t.header and cols and f_idx and width + 1 == len(cols) and (
        max(f_idx) < width
    ):
        idx = list(f_idx)  # all training columns, with a blank target as the last one
    else:
        idx = _choose_columns(
            pp, feature_names, width, t.columns if t.header else None, f"Line {t.first_line}"
        )
    dc = bool(pp.get("decimal_comma", t.decimal_comma)) or t.decimal_comma
    return _read_columns(t, idx, [], dc)[0]


def _finish(pp: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Standardise / scale / reshape as recorded in `pp`."""
    x = np.asarray(x, dtype=np.float64)
    if pp.get("standardize") and "mean" in pp:
        mean = np.asarray(pp["mean"], dtype=np.float64)
        std = np.asarray(pp["std"], dtype=np.float64)
        if mean.shape != (x.shape[1],) or std.shape != (x.shape[1],):
            raise DataError(
                f"Each new row has {x.shape[1]} features, but the model was trained on "
                f"{mean.size}; give the same columns as the training file."
            )
        x = (x - mean) / std
    if "scale" in pp:
        x = x * float(pp["scale"])
    if pp.get("input_shape"):
        shape = tuple(int(d) for d in pp["input_shape"])
        if x.shape[1] != int(np.prod(shape)):
            raise DataError(
                f"Each new row has {x.shape[1]} values; expected {int(np.prod(shape))} "
                f"(an image of shape {shape})."
            )
        x = x.reshape((len(x), *shape))
    return x
