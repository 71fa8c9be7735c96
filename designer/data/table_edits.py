"""Edits of the training block's data table as pure functions: block in, new block out.

The Data dock, the drawing tool of the Predictions plane and the tests all use these, and
push the result with `controller.set_training` (one undo step each). A function that
cannot do its edit raises DataError and returns nothing, so the document stays as it was.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.data.table import Cell, check_table, parse_pasted
from engine.errors import DataError
from engine.training.trainer import TABLE_DATASET

EMPTY_TABLE: dict[str, Any] = {"columns": ["x", "y"], "rows": [], "targets": ["y"]}


def table_of(training: dict[str, Any]) -> dict[str, Any]:
    """A copy of the training block's table (an empty x, y table if there is none)."""
    data = training.get("data")
    return copy.deepcopy(data if isinstance(data, dict) else EMPTY_TABLE)


def with_table(training: dict[str, Any], table: dict[str, Any],
               use: bool | None = None) -> dict[str, Any]:
    """The training block holding `table`; with `use`, also train on it (or stop)."""
    check_table(table)
    block = copy.deepcopy(training)
    block["data"] = table
    if use:
        block["dataset"] = TABLE_DATASET
        block.pop("csv", None)
        block.pop("images", None)
        block.pop("target_columns", None)
        block.pop("feature_columns", None)
    return block


def uses_table(training: dict[str, Any]) -> bool:
    """Whether training runs on the table (no CSV file or image folder takes precedence)."""
    return (training.get("dataset") == TABLE_DATASET and not training.get("csv")
            and not training.get("images"))


def _targets(table: dict[str, Any]) -> list[str]:
    t = table.get("targets")
    return list(t) if isinstance(t, list) else table["columns"][-1:]


def set_cell(table: dict[str, Any], row: int, col: int, value: Cell) -> dict[str, Any]:
    out = copy.deepcopy(table)
    out["rows"][row][col] = value
    return out


def insert_rows(table: dict[str, Any], at: int, rows: list[list[Cell]] | int) -> dict[str, Any]:
    """Insert rows (or that many empty rows) before row `at`."""
    out = copy.deepcopy(table)
    width = len(out["columns"])
    new = [[None] * width for _ in range(rows)] if isinstance(rows, int) else rows
    for r in new:
        if len(r) != width:
            raise DataError(f"A new row needs {width} values, not {len(r)}.")
    out["rows"][at:at] = [list(r) for r in new]
    return out


def remove_rows(table: dict[str, Any], rows: list[int]) -> dict[str, Any]:
    out = copy.deepcopy(table)
    drop = set(rows)
    out["rows"] = [r for i, r in enumerate(out["rows"]) if i not in drop]
    return out


def unique_name(columns: list[str], base: str) -> str:
    name, k = base, 2
    while name in columns:
        name, k = f"{base}{k}" if base[-1:].isalpha() else f"{base}_{k}", k + 1
    return name


def add_column(table: dict[str, Any], name: str | None = None,
               at: int | None = None) -> dict[str, Any]:
    """A new empty feature column (by default just before the first target column)."""
    out = copy.deepcopy(table)
    cols = out["columns"]
    targets = _targets(out)
    if at is None:
        at = min((cols.index(t) for t in targets if t in cols), default=len(cols))
    name = name.strip() if name else unique_name(cols, f"x{at + 1}")
    if not name or name in cols:
        raise DataError(f"There is already a column named '{name}'." if name else
                        "A column needs a name.")
    cols.insert(at, name)
    for r in out["rows"]:
        r.insert(at, None)
    out["targets"] = targets
    return out


def remove_columns(table: dict[str, Any], cols: list[int]) -> dict[str, Any]:
    out = copy.deepcopy(table)
    drop = set(cols)
    if len(drop) >= len(out["columns"]):
        raise DataError("The table needs at least one column; keep one.")
    names = [c for j, c in enumerate(out["columns"]) if j not in drop]
    out["targets"] = [t for t in _targets(out) if t in names]
    out["columns"] = names
    out["rows"] = [[v for j, v in enumerate(r) if j not in drop] for r in out["rows"]]
    return out


def rename_column(table: dict[str, Any], col: int, name: str) -> dict[str, Any]:
    out = copy.deepcopy(table)
    name = name.strip()
    old = out["columns"][col]
    if not name:
        raise DataError("A column needs a name.")
    if name != old and name in out["columns"]:
        raise DataError(f"There is already a column named '{name}'.")
    targets = _targets(out)
    out["columns"][col] = name
    out["targets"] = [name if t == old else t for t in targets]
    return out


def set_targets(table: dict[str, Any], names: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(table)
    missing = [n for n in names if n not in out["columns"]]
    if missing:
        raise DataError(f"There is no column named '{missing[0]}'.")
    out["targets"] = [c for c in out["columns"] if c in names]
    return out


def set_task(table: dict[str, Any], task: str) -> dict[str, Any]:
    out = copy.deepcopy(table)
    out["task"] = task
    return out


def paste(table: dict[str, Any], text: str, row: int, col: int) -> dict[str, Any]:
    """Paste spreadsheet text with its top-left cell at (`row`, `col`).

    The table grows to fit (new rows; new columns named x3, x4…). A header row of names
    pasted into an empty table names its columns. Bad text raises DataError.
    """
    header, rows = parse_pasted(text)
    if not rows and header is None:
        raise DataError("The clipboard holds no table to paste.")
    out = copy.deepcopy(table)
    width = max((len(r) for r in rows), default=len(header or []))
    if header is not None and not out["rows"]:
        out["columns"] = list(header)
        out["targets"] = [header[-1]]
        row, col = 0, 0
        out["rows"] = []
    while len(out["columns"]) < col + width:
        out = add_column(out, at=len(out["columns"]))
    n_cols = len(out["columns"])
    while len(out["rows"]) < row + len(rows):
        out["rows"].append([None] * n_cols)
    for i, values in enumerate(rows):
        for j, v in enumerate(values):
            out["rows"][row + i][col + j] = v
    check_table(out)
    return out
