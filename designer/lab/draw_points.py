"""Draw your data on the Predictions plane: click adds a point, drag moves it, right-click
deletes it.

Works on a 2-D classification plane (a point of the chosen class) and on a 1-D regression
curve (a point at the clicked x and y). The points are rows of the document's data table,
so every edit is one undo step and the training session recompiles with the new data.
Drawing on another data source first copies the points shown into a table (raw values,
not standardised), in the same undo step as the first edit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox

from designer.data import table_edits as edits
from engine.data.table import cell_value
from engine.errors import GradscapeError

HIT_PIXELS = 9  # a press this close to a point grabs it
OFF = "off"


def pass_clicks_on(item) -> None:
    """Let clicks on a plot item (a data point) fall through to the ViewBox below it.

    pyqtgraph offers a click to the items under the mouse first, and a scatter plot keeps
    a click that lands on one of its points; the plane needs it to add a point there.
    """
    item.mouseClickEvent = lambda ev: ev.ignore()


class DrawingViewBox(pg.ViewBox):
    """A ViewBox that hands mouse clicks and drags to a PointDrawer while drawing is on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drawer: PointDrawer | None = None

    def mouseClickEvent(self, ev) -> None:
        if self.drawer is not None and self.drawer.active:
            ev.accept()
            pos = self.mapSceneToView(ev.scenePos())
            if ev.button() == Qt.MouseButton.RightButton:
                self.drawer.delete_near(pos.x(), pos.y())
            elif ev.button() == Qt.MouseButton.LeftButton:
                self.drawer.add_at(pos.x(), pos.y())
            return
        super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if self.drawer is not None and self.drawer.active and (
                ev.button() == Qt.MouseButton.LeftButton):
            ev.accept()
            pos = self.mapSceneToView(ev.scenePos())
            if ev.isStart():
                start = self.mapSceneToView(ev.buttonDownScenePos())
                self.drawer.begin_drag(start.x(), start.y())
            self.drawer.drag_to(pos.x(), pos.y())
            if ev.isFinish():
                self.drawer.end_drag()
            return
        super().mouseDragEvent(ev, axis)


class PointDrawer:
    """Turns clicks on the plane into data-table edits for one PredictionView.

    `combo` chooses what a click adds ("off", a class index, "new" class, or "value").
    """

    def __init__(self, view, controller):
        self.view = view
        self.controller = controller
        self.document = controller.document
        self.mode: Any = OFF
        self.message = ""
        self._drag: tuple[int, float, float] | None = None  # row, x, y (view coordinates)
        self.ghost = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#202020", width=1.5),
                                        brush=pg.mkBrush(255, 255, 255, 160))
        self.ghost.setZValue(20)
        self.combo = QComboBox()
        self.combo.setToolTip("Draw your data: click adds a point, drag moves one, "
                              "right-click deletes one (each an undo step)")
        self.combo.activated.connect(lambda i: self.set_mode(self.combo.itemData(i)))
        # Never wider than a short name: the Predictions dock must not grow for it.
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(8)
        self.combo.hide()
        self._choices: tuple = ()

    @property
    def active(self) -> bool:
        res = self.view.last
        return self.mode != OFF and res is not None and res.kind in ("regions", "curve")

    def set_mode(self, mode: Any) -> None:
        self.mode = mode

    # -- following the predictions --------------------------------------------------------
    def on_prediction(self, res) -> None:
        """Offer the classes of a plane (or 'points' for a curve); hide for other views."""
        if res is None or res.kind not in ("regions", "curve"):
            self.combo.hide()
            return
        if res.kind == "regions":
            choices = (("Draw: off", OFF),) + tuple(
                (f"Draw class {name}", k) for k, name in enumerate(res.class_names)) + (
                ("Draw a new class", "new"),)
        else:
            choices = (("Draw: off", OFF), ("Draw points", "value"))
        if choices != self._choices:
            self._choices = choices
            self.combo.clear()
            for text, data in choices:
                self.combo.addItem(text, data)
            if self.mode not in [d for _, d in choices]:
                self.mode = OFF
            self.combo.setCurrentIndex(max(self.combo.findData(self.mode), 0))
        self.combo.show()

    # -- coordinates -----------------------------------------------------------------------
    def _scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) mapping raw features to the plane (0 and 1 when not standardised)."""
        res = self.view.last
        if res is not None and res.feature_mean is not None:
            return np.asarray(res.feature_mean), np.asarray(res.feature_std)
        n = 2 if res is None or res.kind == "regions" else 1
        return np.zeros(n), np.ones(n)

    def _table(self) -> tuple[dict[str, Any], bool]:
        """(table to edit, whether it must first become the training data)."""
        training = self.document.training()
        if edits.uses_table(training):
            return edits.table_of(training), False
        return self._table_from_shown(), True

    def _table_from_shown(self) -> dict[str, Any]:
        """The points the plane shows as a raw table (x1, x2, class or x, y)."""
        res = self.view.last
        xs = [res.train_x] + ([res.val_x] if res.val_x is not None else [])
        ys = [res.train_y] + ([res.val_y] if res.val_y is not None else [])
        mean, std = self._scaling()
        if res.kind == "regions":
            pts = np.concatenate(xs) * std + mean
            cls = np.concatenate(ys).astype(np.int64)
            names = res.class_names
            rows = [[float(a), float(b), cell_value(names[c] if c < len(names) else str(c))]
                    for (a, b), c in zip(pts, cls)]
            return {"columns": ["x1", "x2", "class"], "rows": rows, "targets": ["class"],
                    "task": "classification"}
        x = np.concatenate(xs) * std[0] + mean[0]
        y = np.concatenate(ys)
        return {"columns": ["x", "y"], "rows": [[float(a), float(b)] for a, b in zip(x, y)],
                "targets": ["y"], "task": "regression"}

    def _layout(self, table: dict[str, Any]) -> tuple[list[int], int]:
        cols = table["columns"]
        targets = table.get("targets") or cols[-1:]
        t = cols.index(targets[0])
        return [j for j in range(len(cols)) if cols[j] not in targets], t

    def plane_points(self) -> tuple[np.ndarray, list[int]]:
        """(N, 2) plane coordinates of the table's rows that hold numbers, and their rows."""
        table, _ = self._table()
        feats, t = self._layout(table)
        mean, std = self._scaling()
        res = self.view.last
        pts, rows = [], []
        for i, row in enumerate(table["rows"]):
            try:
                raw = [float(row[j]) for j in feats]
                ty = float(row[t]) if res.kind == "curve" else 0.0
            except (TypeError, ValueError):
                continue
            if res.kind == "regions" and len(raw) == 2:
                pts.append([(raw[0] - mean[0]) / std[0], (raw[1] - mean[1]) / std[1]])
            elif res.kind == "curve" and len(raw) == 1:
                pts.append([(raw[0] - mean[0]) / std[0], ty])
            else:
                continue
            rows.append(i)
        return np.asarray(pts, dtype=np.float64).reshape(-1, 2), rows

    def _raw_row(self, table: dict[str, Any], x: float, y: float, target: Any) -> list[Any]:
        feats, t = self._layout(table)
        mean, std = self._scaling()
        row: list[Any] = [None] * len(table["columns"])
        res = self.view.last
        if res.kind == "regions":
            row[feats[0]] = float(x * std[0] + mean[0])
            row[feats[1]] = float(y * std[1] + mean[1])
            row[t] = target
        else:
            row[feats[0]] = float(x * std[0] + mean[0])
            row[t] = float(y)
        return row

    def _class_cell(self, table: dict[str, Any]) -> Any:
        res = self.view.last
        if res.kind != "regions":
            return None
        names = list(res.class_names)
        if self.mode == "new":
            if all(isinstance(cell_value(n), float) for n in names):
                return float(max((cell_value(n) for n in names), default=-1.0) + 1)
            return f"class {len(names) + 1}"
        return cell_value(names[int(self.mode)])

    def nearest(self, x: float, y: float) -> int | None:
        """Table row of the point within HIT_PIXELS of (x, y) on screen, if any."""
        pts, rows = self.plane_points()
        if not len(rows):
            return None
        px, py = self.view.plot.getPlotItem().getViewBox().viewPixelSize()
        d = np.hypot((pts[:, 0] - x) / max(px, 1e-12), (pts[:, 1] - y) / max(py, 1e-12))
        k = int(np.argmin(d))
        return rows[k] if d[k] <= HIT_PIXELS else None

    # -- edits -------------------------------------------------------------------------------
    def _push(self, table: dict[str, Any], convert: bool, text: str) -> bool:
        training = self.document.training()
        if convert:
            training["standardize"] = False  # the plane's numbers are the table's numbers
        try:
            block = edits.with_table(training, table, use=True if convert else None)
        except GradscapeError as exc:  # say why in the status bar, change nothing
            self.message = str(exc)
            self.controller.message.emit(self.message)
            return False
        self.message = ""
        self.controller.set_training(block, text)
        return True

    def add_at(self, x: float, y: float) -> bool:
        """Add a point at plane coordinates (x, y) of the chosen class (or y value)."""
        if not self.active or not (math.isfinite(x) and math.isfinite(y)):
            return False
        table, convert = self._table()
        row = self._raw_row(table, x, y, self._class_cell(table))
        table = edits.insert_rows(table, len(table["rows"]), [row])
        return self._push(table, convert, "Add point")

    def delete_near(self, x: float, y: float) -> bool:
        """Delete the point under (x, y), if there is one."""
        if not self.active:
            return False
        row = self.nearest(x, y)
        if row is None:
            return False
        table, convert = self._table()
        return self._push(edits.remove_rows(table, [row]), convert, "Delete point")

    def move(self, row: int, x: float, y: float) -> bool:
        """Move the point of table row `row` to plane coordinates (x, y)."""
        table, convert = self._table()
        old = table["rows"][row]
        _, t = self._layout(table)
        new = self._raw_row(table, x, y, old[t])
        for j, v in enumerate(new):
            if v is not None:
                table = edits.set_cell(table, row, j, v)
        return self._push(table, convert, "Move point")

    def begin_drag(self, x: float, y: float) -> None:
        row = self.nearest(x, y)
        self._drag = None if row is None else (row, x, y)
        if row is not None:
            self.view.plot.addItem(self.ghost) if self.ghost.scene() is None else None

    def drag_to(self, x: float, y: float) -> None:
        if self._drag is not None:
            self._drag = (self._drag[0], x, y)
            self.ghost.setData([x], [y])

    def end_drag(self) -> None:
        drag, self._drag = self._drag, None
        self.ghost.setData([], [])
        if drag is not None:
            self.move(*drag)
