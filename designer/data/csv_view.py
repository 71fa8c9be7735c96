"""The Data dock's view of a CSV training file: a summary, its first rows and a scatter plot.

The file is read in a process of its own (the window stays responsive while a million rows
are parsed); what comes back is small: the first rows for the table and an even subsample
for the plot (engine.data.csv_sample), each labelled with how many rows it stands for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTableView, QVBoxLayout, QWidget

from designer import theme
from designer.lab.background import start_job
from designer.theme import class_color
from designer.training.on_demand import DeferredWidget, pg
from engine.data.csv_sample import HEAD_ROWS, POINTS, CsvSample, sample_to
from engine.errors import DataError


def read_sample(job, path: str, *args) -> CsvSample:
    """sample_csv in a process of its own (run from a BackgroundJob): parsing a big file in
    this process would hold the interpreter lock the window paints with for seconds."""
    from designer.training.session import _context

    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=sample_to, args=(sender, path, *args),
                          daemon=True, name="csv-preview")
    process.start()
    sender.close()
    try:
        while not receiver.poll(0.05):
            if job.cancelled:
                return None
            if not process.is_alive() and not receiver.poll(0):
                raise DataError(f"Reading '{Path(path).name}' stopped unexpectedly.")
        ok, value = receiver.recv()
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    if not ok:
        raise DataError(value)
    return value


class SampleModel(QAbstractTableModel):
    """The first rows of a CsvSample, read-only."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.sample: CsvSample | None = None

    def set_sample(self, sample: CsvSample | None) -> None:
        self.beginResetModel()
        self.sample = sample
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() or self.sample is None else len(self.sample.head)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or self.sample is None else len(self.sample.columns)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.sample is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.sample.text(self.sample.head[index.row(), index.column()],
                                    index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole:  # class names left, numbers right
            text = self.sample.class_names and self.sample.is_target(index.column())
            return int((Qt.AlignmentFlag.AlignLeft if text else Qt.AlignmentFlag.AlignRight)
                       | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole or self.sample is None:
            return None
        if orientation == Qt.Orientation.Vertical:
            return str(section + 1)
        name = self.sample.columns[section]
        return f"{name} (target)" if self.sample.is_target(section) else name


class CsvView(QWidget):
    """Summary, first rows and a subsampled scatter plot of the CSV file training uses."""

    head_rows = HEAD_ROWS  # rows in the table
    points = POINTS  # rows in the plot

    def __init__(self, parent=None):
        super().__init__(parent)
        self.sample: CsvSample | None = None
        self.job = None
        self._key = None
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table_label = QLabel()
        self.model = SampleModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeader().setDefaultSectionSize(70)
        self.table.horizontalHeader().setResizeContentsPrecision(50)  # rows looked at
        self.x_combo, self.y_combo = QComboBox(), QComboBox()
        for combo, tip in ((self.x_combo, "Column along the plot's x axis"),
                           (self.y_combo, "Column along the plot's y axis")):
            combo.setToolTip(tip)
            combo.setMinimumWidth(60)
            combo.activated.connect(lambda _i: self.draw())
        axes = QHBoxLayout()
        axes.addWidget(QLabel("x"))
        axes.addWidget(self.x_combo, 1)
        axes.addWidget(QLabel("y"))
        axes.addWidget(self.y_combo, 1)
        self.plot_label = QLabel()
        self.plot_label.setWordWrap(True)
        # pyqtgraph loads when a CSV is first shown, not with the first window
        self.plot_slot = DeferredWidget(self._make_plot)
        self.plot_slot.setMinimumHeight(140)
        self.layers: list[pg.ScatterPlotItem] = []  # one per class: one brush each is fast
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(axes)
        layout.addWidget(self.plot_label)
        layout.addWidget(self.plot_slot, 1)

    @property
    def plot(self):
        """The scatter plot (built on first use)."""
        return self.plot_slot.widget()

    @staticmethod
    def _make_plot():
        plot = pg.PlotWidget()
        plot.setBackground(theme.current().background)
        plot.setMinimumHeight(140)
        return plot

    def load(self, path: str, target=None, features=None) -> None:
        """Read `path` on a thread (again only if the file or the columns changed)."""
        p = Path(path)
        key = (str(p), p.stat().st_mtime_ns if p.is_file() else None, repr(target),
               repr(features))
        if key == self._key:
            return
        self._key = key
        if self.job is not None:
            self.job.cancel()
        self.summary.setText(f"Reading {p.name}…")
        self.table_label.setText("")
        self.plot_label.setText("")
        self.model.set_sample(None)
        self._set_layers(0)
        self.job = start_job(lambda job: read_sample(job, path, target, features,
                                                         self.head_rows, self.points),
                             on_done=lambda s, k=key: self._on_sample(k, s),
                             on_failed=lambda m, k=key: self._on_failed(k, m),
                             parent=self, name="csv-preview")

    def _on_sample(self, key, sample: CsvSample | None) -> None:
        if key != self._key or sample is None:
            return  # an answer for a file or columns no longer chosen
        self.sample = sample
        kind = (f"classification, {len(sample.class_names)} classes" if sample.class_names
                else sample.task)
        self.summary.setText(
            f"<b>{sample.name}</b>: {sample.rows:,} rows × {len(sample.columns)} columns "
            f"used; target {', '.join(sample.columns[-sample.targets:])} ({kind}). "
            "Edit the file itself to change its values.")
        shown = len(sample.head)
        self.table_label.setText(f"First {shown:,} of {sample.rows:,} rows"
                                 if shown < sample.rows else f"All {sample.rows:,} rows")
        self.model.set_sample(sample)
        self.table.resizeColumnsToContents()
        for combo in (self.x_combo, self.y_combo):
            combo.clear()
            combo.addItems(sample.columns)
        features = len(sample.columns) - sample.targets
        self.x_combo.setCurrentIndex(0)
        self.y_combo.setCurrentIndex(1 if features > 1 else features)
        self.draw()

    def _on_failed(self, key, message: str) -> None:
        if key == self._key:
            self.summary.setText(message)

    def draw(self) -> None:
        """Plot the subsample: coloured by class for a classification."""
        s = self.sample
        if s is None or not s.columns:
            return
        i, j = max(self.x_combo.currentIndex(), 0), max(self.y_combo.currentIndex(), 0)
        x, y = s.points[:, i], s.points[:, j]
        if s.class_names:
            classes = s.points[:, -1].astype(np.int64)
            self._set_layers(len(s.class_names))
            for k, layer in enumerate(self.layers):
                mine = classes == k
                layer.setData(x[mine], y[mine], brush=pg.mkBrush(class_color(k)))
        else:
            self._set_layers(1)
            self.layers[0].setData(x, y, brush=pg.mkBrush(31, 119, 180, 150))
        self.plot.setLabel("bottom", s.columns[i])
        self.plot.setLabel("left", s.columns[j])
        shown = len(s.points)
        self.plot_label.setText(
            f"Showing {shown:,} of {s.rows:,} rows (evenly spaced)" if shown < s.rows
            else f"All {s.rows:,} rows")

    def _set_layers(self, n: int) -> None:
        while len(self.layers) > n:
            self.plot.removeItem(self.layers.pop())
        while len(self.layers) < n:
            self.layers.append(pg.ScatterPlotItem(size=4, pen=None))
            self.plot.addItem(self.layers[-1])
