"""A small table of numbers kept inside the graph file (the training block's `data`).

Shape of the block (docs/file-format.md):

    "data": {"columns": ["x", "y"], "rows": [[0.5, 1.0], [-1, 0]], "targets": ["y"],
             "task": "auto"}

Cells are JSON numbers, text (class labels in a target column) or null (empty).
`targets` defaults to the last column, `task` to "auto". Every problem is a DataError that
names the row (1-based, as shown in the Data dock) and the column.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

from engine.data.csv_import import (
    MAX_CELLS,
    _bad_cell,
    _check_width,
    _number,
    _one_line,
    _open_table,
    standardize_features,
    target_values,
)
from engine.data.dataset import Dataset
from engine.errors import DataError

UNIT = "Data table row"
TASKS = ("auto", "classification", "regression")

Cell = float | str | None


def cell_text(v: Any) -> str:
    """A cell as text: numbers written exactly and short (3 rather than 3.0), None as ""."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return str(v)


def cell_value(text: str) -> Cell:
    """What a typed or pasted cell holds: a number if it reads as one, else text, "" -> None."""
    s = text.strip()
    if not s:
        return None
    v = _number(s, decimal_comma=s.count(",") == 1 and "." not in s)
    return s if v is None else v


def check_table(block: Any) -> tuple[list[str], list[list[Any]], list[int], str]:
    """(columns, rows, target indices, task) of a `data` block, or a DataError saying why not.

    Checks the structure only (sizes first, before anything is built from it); cell
    contents are checked by `load_table`.
    """
    if not isinstance(block, dict):
        raise DataError("The data table in the training block must be an object with "
                        "'columns' and 'rows'.")
    columns = block.get("columns")
    rows = block.get("rows")
    if not isinstance(columns, list) or not all(isinstance(c, str) and c.strip()
                                                for c in columns):
        raise DataError("The data table's 'columns' must be a list of column names.")
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise DataError(f"The data table has two columns named {dup!r}; rename one.")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise DataError("The data table's 'rows' must be a list of rows, each a list of "
                        "values.")
    if len(rows) * max(len(columns), 1) > MAX_CELLS:
        raise DataError(f"The data table holds more than {MAX_CELLS:,} values; use a CSV "
                        "file for data this large.")
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise DataError(
                f"{UNIT} {i + 1} has {len(row)} values but the table has {len(columns)} "
                f"columns ({_one_line(', '.join(columns[:8]))}); every row needs one value "
                "per column.")
    targets = block.get("targets")
    if targets is None:
        t_idx = [len(columns) - 1] if columns else []
    elif not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise DataError("The data table's 'targets' must be a list of column names.")
    else:
        missing = [t for t in targets if t not in columns]
        if missing:
            raise DataError(f"The data table has no column named {missing[0]!r} to use as a "
                            "target.")
        t_idx = [columns.index(t) for t in dict.fromkeys(targets)]
    task = block.get("task", "auto")
    if task not in TASKS:
        raise DataError(f"The data table's task must be 'auto', 'classification' or "
                        f"'regression', not {task!r}.")
    return columns, rows, t_idx, task


def load_table(block: Any, standardize: bool = True, name: str = "data table") -> Dataset:
    """The Dataset held by a training block's `data` table.

    Features are standardised like a CSV file's when `standardize` is on; preprocessing
    records the columns, so predict prepares new rows exactly alike.
    """
    columns, rows, t_idx, task = check_table(block)
    if not t_idx:
        raise DataError("Choose a target column in the data table (the value to predict).")
    f_idx = [j for j in range(len(columns)) if j not in t_idx]
    if not f_idx:
        raise DataError("The data table needs at least one feature column besides the "
                        "target (an input for the network).")
    if not rows:
        raise DataError("The data table is empty: add a row of numbers (Data dock, "
                        "Add row) or paste some from a spreadsheet.")
    x = np.empty((len(rows), len(f_idx)))
    targets: list[list[str]] = [[] for _ in t_idx]
    for i, row in enumerate(rows):
        for k, j in enumerate(f_idx):
            v = _feature(row[j])
            if v is None:
                _bad_cell(i + 1, columns[j], cell_text(row[j]), "a feature", UNIT)
            x[i, k] = v
        for k, j in enumerate(t_idx):
            text = cell_text(row[j]).strip()
            if not text:
                _bad_cell(i + 1, columns[j], "", "the target", UNIT)
            targets[k].append(text)
    names = [columns[j] for j in t_idx]
    y, task_out, class_names = target_values(targets, names, range(1, len(rows) + 1), task,
                                             unit=UNIT)
    x, scaling = standardize_features(x, standardize)
    feature_names = [columns[j] for j in f_idx]
    return Dataset(
        name=name, x=x, y=y, task=task_out, num_classes=len(class_names),
        feature_names=feature_names, target_names=names, class_names=class_names,
        preprocessing={
            "source": "table", "columns": list(columns), "feature_names": feature_names,
            "feature_indices": f_idx, "target_names": names, "target_indices": t_idx,
            "task": task_out, "class_names": class_names, **scaling,
        },
    )


def _feature(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        return _number(v.strip(), decimal_comma=True) if v.strip() else None
    return None


def parse_pasted(text: str) -> tuple[list[str] | None, list[list[Cell]]]:
    """(header or None, rows of cells) of text copied from a spreadsheet or a CSV file.

    Tabs, semicolons or commas separate the cells (spreadsheets copy tabs); a first row of
    names above rows of numbers is taken as a header. Rows of different lengths are refused
    with the line and column, like a CSV file's.
    """
    if not text.strip():
        return None, []
    t = _open_table(text, "the pasted text", "\t" if "\t" in text else None)
    records = list(t.rows())
    for line, fields in records:
        _check_width(t, line, fields)
    if t.header and not records:  # a single row of text is data, not a header
        return None, [[cell_value(f) for f in t.columns]]
    rows = [[cell_value(f) for f in fields] for _, fields in records]
    return (list(t.columns) if t.header else None), rows


def table_text(columns: list[str], rows: list[list[Any]], header: bool = True) -> str:
    """Tab-separated text of a table (what Copy puts on the clipboard)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    if header:
        writer.writerow(columns)
    writer.writerows([cell_text(v) for v in row] for row in rows)
    return buf.getvalue()
