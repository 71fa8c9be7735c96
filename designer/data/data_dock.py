"""The Data dock: the table of numbers stored in the graph file, or a view of the CSV file or
image folder the training block names instead.

The table follows the document's training block: typing in a cell, adding or removing rows
and columns, pasting from a spreadsheet and choosing target columns each push one undo step
through `controller.set_training`, and undo/redo/open update the view in place. When the
training data is an image folder, a grid shows a few images of each class resized to the
Input's shape (what the network sees), read on a thread of its own.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.data import table_edits as edits
from designer.data.csv_view import CsvView
from designer.lab.background import start_job
from engine.data.table import cell_text, cell_value, table_text
from engine.errors import DataError, GradscapeError

TASK_LABELS = {"auto": "Task: automatic", "classification": "Task: classification",
               "regression": "Task: regression"}
PREVIEW_PER_CLASS = 6


class DataTableModel(QAbstractTableModel):
    """The document's data table as a Qt model; every edit is one undo step."""

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.document = controller.document
        self.message = ""  # why the last edit was refused ("" if it went through)
        self._table = edits.table_of(self.document.training())
        self.document.training_changed.connect(self.refresh)
        self.document.reset.connect(self.refresh)

    # -- reading ---------------------------------------------------------------------------
    def table(self) -> dict:
        return self._table

    def refresh(self) -> None:
        new = edits.table_of(self.document.training())
        old = self._table
        same_shape = (len(new["rows"]) == len(old["rows"])
                      and len(new["columns"]) == len(old["columns"]))
        if same_shape:
            self._table = new
            if new["rows"] and new["columns"]:
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(len(new["rows"]) - 1, len(new["columns"]) - 1))
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0,
                                        max(len(new["columns"]) - 1, 0))
        else:
            self.beginResetModel()
            self._table = new
            self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._table["rows"])

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._table["columns"])

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        value = self._table["rows"][index.row()][index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return cell_text(value)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int((Qt.AlignmentFlag.AlignLeft if isinstance(value, str)
                        else Qt.AlignmentFlag.AlignRight) | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and self.is_target(index.column()):
            c = QColor(theme.current().selection)
            c.setAlpha(28)
            return c
        return None

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal:
                return ("A target column: the value the network learns to predict"
                        if self.is_target(section) else "A feature column: an input value")
            return None
        if orientation == Qt.Orientation.Vertical:
            return str(section + 1)
        if section >= len(self._table["columns"]):
            return None
        name = self._table["columns"][section]
        return f"{name} (target)" if self.is_target(section) else name

    def flags(self, index: QModelIndex):
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable if index.isValid() else base

    def targets(self) -> list[str]:
        t = self._table.get("targets")
        return list(t) if isinstance(t, list) else self._table["columns"][-1:]

    def is_target(self, col: int) -> bool:
        cols = self._table["columns"]
        return 0 <= col < len(cols) and cols[col] in self.targets()

    # -- editing (each one undo step) --------------------------------------------------------
    def apply(self, change, text: str, use: bool | None = None) -> bool:
        """Push `change(table)` as one undo step; False (and `message`) if it was refused."""
        training = self.document.training()
        try:
            block = edits.with_table(training, change(edits.table_of(training)), use)
        except (DataError, GradscapeError, IndexError) as exc:
            self.message = str(exc)
            return False
        self.message = ""
        self.controller.set_training(block, text)
        return True

    def setData(self, index: QModelIndex, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        r, c = index.row(), index.column()
        return self.apply(lambda t: edits.set_cell(t, r, c, cell_value(str(value))),
                          f"Edit cell {r + 1}, {self._table['columns'][c]}")

    def add_rows(self, at: int | None = None, n: int = 1) -> bool:
        at = len(self._table["rows"]) if at is None else at
        return self.apply(lambda t: edits.insert_rows(t, at, n), "Add row")

    def remove_rows(self, rows: list[int]) -> bool:
        return bool(rows) and self.apply(lambda t: edits.remove_rows(t, rows),
                                         "Remove rows" if len(rows) > 1 else "Remove row")

    def add_column(self, name: str | None = None) -> bool:
        return self.apply(lambda t: edits.add_column(t, name), "Add column")

    def remove_columns(self, cols: list[int]) -> bool:
        return bool(cols) and self.apply(lambda t: edits.remove_columns(t, cols),
                                         "Remove column")

    def rename_column(self, col: int, name: str) -> bool:
        return self.apply(lambda t: edits.rename_column(t, col, name), "Rename column")

    def set_targets(self, names: list[str]) -> bool:
        return self.apply(lambda t: edits.set_targets(t, names), "Choose target columns")

    def set_task(self, task: str) -> bool:
        return self.apply(lambda t: edits.set_task(t, task), "Change data task")

    def clear_cells(self, cells: list[tuple[int, int]]) -> bool:
        def change(t):
            for r, c in cells:
                t = edits.set_cell(t, r, c, None)
            return t
        return bool(cells) and self.apply(change, "Clear cells")

    def paste(self, text: str, row: int = 0, col: int = 0) -> bool:
        return self.apply(lambda t: edits.paste(t, text, row, col), "Paste into data table")

    def use_for_training(self, use: bool) -> None:
        training = self.document.training()
        if use == edits.uses_table(training):
            return
        if use:
            self.apply(lambda t: t, "Train on the data table", use=True)
        else:
            block = dict(training)
            block["dataset"] = "xor"
            block.pop("dataset_params", None)
            self.controller.set_training(block, "Train on a built-in data set")


class DataTableView(QTableView):
    """The table with Ctrl+C, Ctrl+V and Delete of its own (before the window's Edit menu,
    whose shortcuts copy and paste nodes on the canvas)."""

    def __init__(self, dock: DataDock):
        super().__init__(dock)
        self._keys = ((QKeySequence.StandardKey.Paste, dock.paste),
                      (QKeySequence.StandardKey.Copy, dock.copy),
                      (QKeySequence.StandardKey.Delete, dock.clear_selection))

    def _slot_for(self, event):
        if self.state() == QTableView.State.EditingState:
            return None  # the cell editor handles its own keys
        return next((slot for key, slot in self._keys if event.matches(key)), None)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and self._slot_for(event):
            event.accept()  # the key comes here as a key press, not to a menu shortcut
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        slot = self._slot_for(event)
        if slot is None:
            super().keyPressEvent(event)
        else:
            slot()


class ImageGrid(QWidget):
    """A few images per class, each shown as the network sees it (its Input's size)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.images: list[tuple[str, np.ndarray]] = []  # (class, (C, H, W) in 0..1)
        self.setMinimumHeight(80)

    def set_images(self, images: list[tuple[str, np.ndarray]]) -> None:
        self.images = images
        self.update()

    def paintEvent(self, event) -> None:
        if not self.images:
            return
        pal = theme.current()
        p = QPainter(self)
        classes = list(dict.fromkeys(c for c, _ in self.images))
        per_row = max(len([1 for c, _ in self.images if c == k]) for k in classes)
        label_w = 70
        side = max(8.0, min((self.width() - label_w) / per_row - 4,
                            self.height() / len(classes) - 4))
        p.setFont(theme.ui_font(8))
        for r, k in enumerate(classes):
            y = r * (side + 4)
            p.setPen(QColor(pal.text))
            p.drawText(QRectF(0, y, label_w - 4, side),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, k[:12])
            row = [a for c, a in self.images if c == k]
            for j, arr in enumerate(row):
                p.drawImage(QRectF(label_w + j * (side + 4), y, side, side), to_qimage(arr))
        p.end()


def to_qimage(arr: np.ndarray) -> QImage:
    """A (1 or 3, H, W) array of 0..1 values as a QImage (copied)."""
    data = np.clip(np.asarray(arr) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    h, w = data.shape[-2:]
    if data.shape[0] == 3:
        rgb = np.ascontiguousarray(data.transpose(1, 2, 0))
        return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    gray = np.ascontiguousarray(data.reshape(h, w))
    return QImage(gray.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def input_shape(document) -> tuple[int, ...] | None:
    """Per-sample shape of the graph's first Input node, if known."""
    analysis = document.analysis()
    for node in document.nodes():
        if node.op == "Input" and node.id in analysis.shapes:
            return tuple(int(d) for d in analysis.shapes[node.id][1:])
    return None


def preview_images(folder: str, shape: tuple[int, ...]) -> tuple[str, list]:
    """(summary, [(class, image)]) of an image folder at `shape` (runs off the GUI thread)."""
    from engine.data.images import read_image, scan_image_folder

    found = scan_image_folder(folder)
    shown = []
    for name, files in zip(found.classes, found.files):
        for f in files[:PREVIEW_PER_CLASS]:
            arr = read_image(f, shape, found.root)
            shown.append((name, arr if arr.ndim == 3 else arr[None]))
    counts = ", ".join(f"{n} {len(f)}" for n, f in zip(found.classes, found.files))
    size = "×".join(str(d) for d in shape)
    return (f"{sum(len(f) for f in found.files)} images in {len(found.classes)} classes "
            f"({counts}), resized to {size}"), shown


class DataDock(QWidget):
    """The Data dock's widget: the table editor and the image-folder preview."""

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.document = controller.document
        self.model = DataTableModel(controller, self)
        self._preview_key = None
        self.preview_job = None

        self.use_check = QCheckBox("Train on this table")
        self.use_check.setToolTip("Use these rows as the training data (Training dock: "
                                  "Data set → Data table)")
        self.use_check.toggled.connect(self.model.use_for_training)
        self.task_combo = QComboBox()
        for task, label in TASK_LABELS.items():
            self.task_combo.addItem(label, task)
        self.task_combo.setToolTip("Automatic: text or a few whole numbers in the target "
                                   "make a classification, anything else a regression")
        self.task_combo.activated.connect(
            lambda i: self._report(self.model.set_task(self.task_combo.itemData(i))))
        self.targets_button = QToolButton()
        self.targets_button.setText("Targets")
        self.targets_button.setToolTip("Choose which columns the network learns to predict")
        self.targets_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.targets_menu = QMenu(self.targets_button)
        self.targets_menu.aboutToShow.connect(self._fill_targets_menu)
        self.targets_button.setMenu(self.targets_menu)
        # One row of controls above the table: the dock is a tab of the wide, short bottom
        # area (beside Training), where every row of height counts.
        top = QHBoxLayout()
        top.addWidget(self.use_check)
        top.addWidget(self.task_combo)
        self.task_combo.setMinimumWidth(60)

        self.menu = QMenu(self)  # the buttons' actions, also on the table's right-click
        for text, tip, slot in (
                ("+ Row", "Add a row at the end (or below the selection)", self.add_row),
                ("− Row", "Remove the selected rows", self.remove_selected_rows),
                ("+ Col", "Add a feature column", lambda: self._report(
                    self.model.add_column())),
                ("− Col", "Remove the selected columns", self.remove_selected_columns),
                ("Paste", "Paste cells copied from a spreadsheet at the current cell (Ctrl+V)",
                 self.paste),
                ("Copy", "Copy the selection, or the whole table, as tab-separated text "
                         "(Ctrl+C)", self.copy)):
            action = self.menu.addAction(text.replace("Col", "Column"))
            action.setToolTip(tip)
            action.triggered.connect(lambda _c=False, f=slot: f())
        top.addSpacing(8)
        for action in self.menu.actions()[:4]:
            b = QToolButton()
            b.setText(action.text().replace("Column", "Col"))
            b.setToolTip(action.toolTip())
            b.clicked.connect(action.trigger)
            top.addWidget(b)
        top.addStretch(1)
        top.addWidget(self.targets_button)

        self.view = DataTableView(self)
        self.view.setModel(self.model)
        self.view.horizontalHeader().setStretchLastSection(False)
        self.view.horizontalHeader().setDefaultSectionSize(58)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.horizontalHeader().sectionDoubleClicked.connect(self.ask_rename)
        self.view.horizontalHeader().setResizeContentsPrecision(200)  # rows looked at
        self.model.modelReset.connect(self.view.resizeColumnsToContents)
        self.model.headerDataChanged.connect(lambda *_: self.view.resizeColumnsToContents())
        self.view.resizeColumnsToContents()
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(
            lambda pos: self.menu.popup(self.view.viewport().mapToGlobal(pos)))

        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet(f"color: {theme.current().error};")
        self.message_label.hide()
        self.images_label = QLabel()
        self.images_label.setWordWrap(True)
        self.image_grid = ImageGrid()
        self.csv_view = CsvView()  # shown while a CSV file is the training data

        self.table_box = QWidget()  # hidden while an image folder is the training data
        table_layout = QVBoxLayout(self.table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addLayout(top)
        table_layout.addWidget(self.view, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.table_box, 1)
        layout.addWidget(self.message_label)
        layout.addWidget(self.images_label)
        layout.addWidget(self.image_grid, 1)
        layout.addWidget(self.csv_view, 1)

        self.document.training_changed.connect(self.sync)
        self.document.reset.connect(self.sync)
        self.document.changed.connect(self._maybe_preview)
        self.sync()

    # -- document -> widgets -------------------------------------------------------------
    def sync(self) -> None:
        training = self.document.training()
        table = self.model.table()
        self.use_check.blockSignals(True)
        self.use_check.setChecked(edits.uses_table(training))
        self.use_check.blockSignals(False)
        self.task_combo.setCurrentIndex(max(self.task_combo.findData(table.get("task", "auto")),
                                            0))
        csv = training.get("csv")
        images = bool(training.get("images")) and not csv
        for w in (self.images_label, self.image_grid):
            w.setVisible(images)
        self.csv_view.setVisible(bool(csv))
        self.table_box.setVisible(not images and not csv)
        self._maybe_read_csv()
        self._maybe_preview()

    def _maybe_read_csv(self) -> None:
        """Read the training CSV file for the view (only while the dock can be seen: a big
        file takes seconds of a core)."""
        training = self.document.training()
        if training.get("csv") and self.isVisible():
            self.csv_view.load(str(training["csv"]), training.get("target_columns"),
                               training.get("feature_columns"))

    def _report(self, ok: bool) -> None:
        self.message_label.setText("" if ok else self.model.message)
        self.message_label.setVisible(bool(not ok and self.model.message))

    def _fill_targets_menu(self) -> None:
        self.targets_menu.clear()
        targets = self.model.targets()
        for name in self.model.table()["columns"]:
            action = self.targets_menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(name in targets)
            action.toggled.connect(lambda on, n=name: self.toggle_target(n, on))

    def toggle_target(self, name: str, on: bool) -> None:
        targets = [t for t in self.model.targets() if t != name] + ([name] if on else [])
        self._report(self.model.set_targets(targets))

    # -- actions ---------------------------------------------------------------------------
    def _selected_rows(self) -> list[int]:
        return sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})

    def _selected_columns(self) -> list[int]:
        return sorted({i.column() for i in self.view.selectionModel().selectedIndexes()})

    def add_row(self) -> None:
        rows = self._selected_rows()
        self._report(self.model.add_rows(rows[-1] + 1 if rows else None))

    def remove_selected_rows(self) -> None:
        self._report(self.model.remove_rows(self._selected_rows()))

    def remove_selected_columns(self) -> None:
        self._report(self.model.remove_columns(self._selected_columns()))

    def clear_selection(self) -> None:
        cells = [(i.row(), i.column()) for i in self.view.selectionModel().selectedIndexes()]
        self._report(self.model.clear_cells(cells))

    def paste(self, text: str | None = None) -> None:
        """Paste `text` (default: the clipboard) at the current cell."""
        if not isinstance(text, str):
            text = QGuiApplication.clipboard().text()
        current = self.view.currentIndex()
        row, col = (current.row(), current.column()) if current.isValid() else (0, 0)
        self._report(self.model.paste(text, row, col))

    def copy(self) -> str:
        """Copy the selected cells (or the whole table with its header) to the clipboard."""
        table = self.model.table()
        indexes = self.view.selectionModel().selectedIndexes()
        if len(indexes) > 1:
            rows = sorted({i.row() for i in indexes})
            cols = sorted({i.column() for i in indexes})
            text = table_text([table["columns"][c] for c in cols],
                              [[table["rows"][r][c] for c in cols] for r in rows], header=False)
        else:
            text = table_text(table["columns"], table["rows"])
        QGuiApplication.clipboard().setText(text)
        return text

    def ask_rename(self, col: int) -> None:
        old = self.model.table()["columns"][col]
        name, ok = QInputDialog.getText(self, "Rename column", "Column name:", text=old)
        if ok:
            self._report(self.model.rename_column(col, name))

    # -- image folder preview ------------------------------------------------------------
    def _maybe_preview(self) -> None:
        training = self.document.training()
        folder = training.get("images") if not training.get("csv") else None
        if not folder or (not self.isVisible() and self._preview_key is not None):
            return  # hidden: previewed when shown
        shape = input_shape(self.document)
        key = (folder, shape)
        if key == self._preview_key:
            return
        self._preview_key = key
        if shape is None:
            self.images_label.setText(f"Image folder {folder}: connect an Input node with a "
                                      "shape to see the images at its size.")
            self.image_grid.set_images([])
            return
        self.images_label.setText(f"Reading {folder}…")
        self.preview_job = start_job(lambda _job: preview_images(folder, shape),
                                     on_done=self._on_preview,
                                     on_failed=self._on_preview_failed, parent=self,
                                     name="image-preview")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._maybe_preview()  # the folder or the Input may have changed while hidden
        self._maybe_read_csv()

    def _on_preview(self, result) -> None:
        summary, images = result
        self.images_label.setText(summary)
        self.image_grid.set_images(images)

    def _on_preview_failed(self, message: str) -> None:
        self.images_label.setText(message)
        self.image_grid.set_images([])


def install_data_dock(window) -> DataDock:
    """Add the Data dock to a MainWindow: a tab beside the Training dock.

    A table is wide and short, like the bottom dock area; in a side column it would take
    the width the canvas needs to show a graph at a legible zoom.
    """
    widget = DataDock(window.controller)
    dock = QDockWidget("Data", window)
    dock.setObjectName("data_dock")
    dock.setWidget(widget)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    if not (getattr(window, "layout_restored", False) and window.restoreDockWidget(dock)):
        training = getattr(window, "training_dock", None)
        if training is not None:
            window.tabifyDockWidget(training, dock)
            training.raise_()
    window.data_dock = dock
    window.data = widget
    window.menu("panels").addAction(dock.toggleViewAction())
    return widget
