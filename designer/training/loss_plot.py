"""The loss plot: training loss per step (raw and smoothed), validation loss and accuracy.

It draws the `TrainingRun`'s history and keeps no series of its own: the run is the one
holder of the numbers (a model file saves them from there, not from this widget). Each
redraw hands the curves at most about two points per pixel of the visible step range (min and
max per bin, `decimate`), computed with numpy in one pass; pyqtgraph's own clip-to-view and
downsampling are off because they re-process the data inside the paint and schedule a second
repaint. The plot stays smooth and cheap past 100,000 steps (painting holds the GIL, so every
millisecond here is taken from the training thread). Accuracy (classification only) has its
own small plot below, sharing the step axis.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.training.run import SMOOTHING_STEPS, TrainingRun

# Twice a second: a repaint costs ~20 ms of GUI thread. 500 ms is off the 200 ms rhythm of
# the overlay's updates, so the two repaints fall in different frames instead of one long one.
REDRAW_MS = 500
ACC_MAX_PX = 96  # the accuracy plot's height at most, its step axis included
FEW_EPOCHS = 40  # epoch curves get a dot per point up to this many
LEFT_AXIS_PX = 56  # room for tick labels such as "0.0025" or "1e-05"
RAW = "#9bb7dc"
SMOOTH = "#1f5fae"
VAL = "#d95f02"
ACC = "#1b9e77"
VAL_ACC = "#7570b3"
MIN_BINS = 100  # decimation bins: the view's width in pixels, within these bounds
MAX_BINS = 2000


def decimate(x: np.ndarray, y: np.ndarray, bins: int, peak: bool = True
             ) -> tuple[np.ndarray, np.ndarray]:
    """At most ~2 * `bins` points standing for (x, y): per bin of consecutive points its
    minimum and maximum (`peak`) or its first point; the last point is always kept."""
    n = len(x)
    if n <= 2 * bins:
        return x, y
    k = -(-n // bins)
    m = (n // k) * k
    xb = x[:m:k]
    if peak:
        yb = y[:m].reshape(-1, k)
        ys = np.empty(2 * len(xb))
        ys[0::2] = yb.min(axis=1)
        ys[1::2] = yb.max(axis=1)
        xs = np.repeat(xb, 2)
    else:
        xs, ys = xb, y[:m:k]
    if m < n:
        tail = y[m:]
        xs = np.concatenate([xs, [x[m], x[m], x[-1]]])
        ys = np.concatenate([ys, [tail.min(), tail.max(), y[-1]]])
    else:
        xs = np.concatenate([xs, x[-1:]])
        ys = np.concatenate([ys, y[-1:]])
    return xs, ys


class LossPlot(QWidget):
    """Loss and accuracy curves of a `TrainingRun` (drawn from `run.history`).

    Attributes:
        run: the TrainingRun shown.
        ask_path: callable(title, filter) -> path or None (tests replace it).
    """

    def __init__(self, run: TrainingRun, parent: QWidget | None = None):
        super().__init__(parent)
        self.run = run
        self.ask_path: Callable[[str, str], str | None] = self._ask_path
        self._epochs_changed = False
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(lambda: run.pacer.request(
            "loss-plot", lambda: self.redraw(self._epochs_changed)))

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(theme.color("background"))
        self.loss_item = self.graphics.addPlot(row=0, col=0)
        self.loss_item.setLabel("left", "loss")
        self.loss_item.getAxis("left").enableAutoSIPrefix(False)
        self.loss_item.showGrid(x=True, y=True, alpha=0.25)
        # Antialiasing only where it shows: the raw curve has many points and is faint.
        self.raw_curve = self.loss_item.plot(pen=pg.mkPen(RAW, width=1), name="loss (step)",
                                             antialias=False)
        self.smooth_curve = self.loss_item.plot(pen=pg.mkPen(SMOOTH, width=2.5),
                                                name=f"smoothed (~{SMOOTHING_STEPS} steps)",
                                                antialias=True)
        self.val_curve = self.loss_item.plot(pen=pg.mkPen(VAL, width=2), name="validation",
                                             antialias=True)
        self.acc_item = self.graphics.addPlot(row=1, col=0)
        self.acc_item.setLabel("left", "accuracy")
        self.acc_item.setLabel("bottom", "step")
        self.acc_item.showGrid(x=True, y=True, alpha=0.25)
        self.acc_item.setYRange(0, 1.02, padding=0)
        self.acc_item.setXLink(self.loss_item)
        # Zooming or panning by hand: redraw the visible range at full detail.
        self.loss_item.getViewBox().sigXRangeChanged.connect(self._on_x_range)
        # The loss is the lesson: accuracy gets the smaller share of a short dock.
        self.acc_item.setMaximumHeight(ACC_MAX_PX)
        self.acc_curve = self.acc_item.plot(pen=pg.mkPen(ACC, width=2), name="train",
                                            antialias=True)
        self.val_acc_curve = self.acc_item.plot(pen=pg.mkPen(VAL_ACC, width=2),
                                                name="validation", antialias=True)
        # An invisible two-point item spanning the data's bounds rounded outward: the
        # auto-range follows it, so the axes (and their tick pictures) change only now and
        # then instead of at every redraw, and the axes are cached as pixmaps in between.
        # (Visible with a transparent pen: hidden or pen-less items are left out of the range.)
        self.anchor = self.loss_item.plot(pen=pg.mkPen(0, 0, 0, 0))
        for plot in (self.loss_item, self.acc_item):
            for name in ("left", "bottom", "top", "right"):
                # No SI-prefix labels: each range change re-rendered them (hidden axes too).
                plot.getAxis(name).enableAutoSIPrefix(False)
            for name in ("left", "bottom"):
                plot.getAxis(name).setCacheMode(
                    pg.QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            # A fixed width: tick labels of a new length ("0.5" → "0.25") would otherwise
            # re-lay out the plot and repaint all of it.
            plot.getAxis("left").setWidth(LEFT_AXIS_PX)
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 1)
        self.set_accuracy_visible(False)

        self.log_box = QCheckBox("Log scale")
        self.log_box.toggled.connect(self.set_log)
        png = QPushButton("PNG…")
        png.setToolTip("Save the plot as an image")
        png.clicked.connect(lambda: self._export("png"))
        csv_button = QPushButton("CSV…")
        csv_button.setToolTip("Save the loss and accuracy series as CSV")
        csv_button.clicked.connect(lambda: self._export("csv"))
        self.summary = QLabel("")
        self.summary.setFont(theme.mono_font(8.5))
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.setWordWrap(True)  # a second line in a narrow dock, never cut off
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.addStretch(1)
        bar.addWidget(self.log_box)
        bar.addWidget(png)
        bar.addWidget(csv_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.graphics, 1)
        # Its own row: beside the buttons a summary with validation and accuracy was cut off.
        self.summary.setContentsMargins(6, 0, 4, 0)
        layout.addWidget(self.summary)
        layout.addLayout(bar)
        run.updated.connect(self.add_report)
        run.restarted.connect(self.clear)

    @property
    def history(self):
        return self.run.history

    # -- data ----------------------------------------------------------------------------
    def add_report(self, report) -> None:
        """The run took a report: redraw soon (at most every REDRAW_MS while training, at
        once for the last report of a run)."""
        h = self.history
        if len(h.acc) and not self.acc_item.isVisible():
            self.set_accuracy_visible(True)
        self._epochs_changed |= bool(report.epochs)
        if not report.running:
            self.redraw(self._epochs_changed)
        elif not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def clear(self) -> None:
        """A fresh run: no points, and the axes follow the data again (a diverged run's
        range must not stay)."""
        self.set_accuracy_visible(False)
        self.loss_item.enableAutoRange()
        self.acc_item.enableAutoRange(x=True, y=False)
        self.redraw()

    def redraw(self, epochs: bool = True) -> None:
        """Hand the series to the curves (epoch curves only when `epochs` changed), reduced
        to about two points per pixel of the visible step range."""
        self._redraw_timer.stop()
        self.run.pacer.cancel("loss-plot")
        self._epochs_changed = False
        bins, window = self._bins()
        h = self.history
        self.raw_curve.setData(*decimate(*_visible(*h.losses.view(), window), bins))
        self.smooth_curve.setData(*decimate(*_visible(*h.smoothed.view(), window), bins // 2,
                                            peak=False))
        if epochs:
            for curve, buf in ((self.val_curve, h.val), (self.acc_curve, h.acc),
                               (self.val_acc_curve, h.val_acc)):
                x, y = decimate(*_visible(*buf.view(), window), bins // 2, peak=False)
                # A dot per epoch while there are few: one epoch is a point, not a line.
                symbol = "o" if len(x) <= FEW_EPOCHS else None
                if curve.opts["symbol"] != symbol:
                    curve.setSymbol(symbol)
                    curve.setSymbolSize(5)
                    curve.setSymbolPen(None)
                    curve.setSymbolBrush(curve.opts["pen"].color())
                curve.setData(x, y)
        self._set_anchor()
        # Auto-range and axis ticks now, not inside the coming paint (which would then ask
        # for a second full repaint).
        self.graphics.scene().prepareForPaint()
        # The summary is also the plots' legend: a line of each curve's colour before its
        # number (a legend inside a plot this short covered the curves).
        parts = []
        if len(h.losses):
            parts += [_keyed(RAW, f"last batch {h.losses.view()[1][-1]:.3g}"),
                      _keyed(SMOOTH, f"smoothed {h.smoothed_loss():.3g}")]
            if len(h.val):
                parts.append(_keyed(VAL, f"val {h.val.view()[1][-1]:.3g}"))
            if len(h.acc):
                parts.append(_keyed(ACC, f"acc {h.acc.view()[1][-1]:.1%}"))
            if len(h.val_acc):
                parts.append(_keyed(VAL_ACC, f"val acc {h.val_acc.view()[1][-1]:.1%}"))
        self.summary.setText(" ".join(parts))
        self.summary.setToolTip(
            f"Loss of step {h.last_step:,} (one batch), its smoothed value (a bias-corrected "
            f"moving average over about {SMOOTHING_STEPS} steps, drawn at the middle of the "
            "steps it averages, so its line ends a little before the newest step), and the "
            "last epoch's "
            "validation loss and accuracies." if len(h.losses) else "")

    def _bins(self) -> tuple[int, tuple[float, float] | None]:
        """Decimation bins (the plot's width in pixels) and the visible step range when the
        user zoomed or panned (None while the plot follows the data)."""
        vb = self.loss_item.getViewBox()
        bins = min(max(int(vb.width()), MIN_BINS), MAX_BINS)
        if vb.autoRangeEnabled()[0]:
            return bins, None
        x0, x1 = vb.viewRange()[0]
        return bins, (x0, x1)

    def _set_anchor(self) -> None:
        """Span the auto-range over the data's bounds rounded outward (see `anchor`)."""
        x, y = self.history.losses.view()
        ys = [v for v in (y, self.history.val.view()[1]) if len(v)]
        if not len(x) or not ys:
            self.anchor.setData([], [])
            return
        lo = min(float(np.nanmin(v)) for v in ys)
        hi = max(float(np.nanmax(v)) for v in ys)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return
        if self.log_box.isChecked() and lo > 0:
            lo, hi = 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))
        else:
            lo, hi = _round_out(lo, hi)
        last = float(x[-1])
        unit = 10.0 ** math.floor(math.log10(max(last, 1.0)))
        x_hi = math.ceil(last / unit * 2) * unit / 2 if last >= 10 else max(last, 10.0)
        ax, ay = self.anchor.getData()
        if ay is None or len(ax) != 2 or (ax[1], ay[0], ay[1]) != (x_hi, lo, hi):
            self.anchor.setData([float(x[0]), x_hi], [lo, hi])

    def _on_x_range(self, *_args) -> None:
        if not self.loss_item.getViewBox().autoRangeEnabled()[0] and len(self.history.losses):
            if not self._redraw_timer.isActive():
                self._redraw_timer.start()

    def set_accuracy_visible(self, on: bool) -> None:
        self.acc_item.setVisible(on)
        # (a hidden item keeps its place in a graphics layout: give the loss all of it)
        self.acc_item.setMaximumHeight(ACC_MAX_PX if on else 0)
        self.acc_item.setMinimumHeight(0)
        # One step axis, under the lowest plot.
        self.loss_item.setLabel("bottom", None if on else "step")  # (shows the axis)
        self.loss_item.showAxis("bottom", not on)

    def set_log(self, on: bool) -> None:
        """Logarithmic loss axis (losses spanning decades)."""
        self.loss_item.setLogMode(y=on)

    # -- export --------------------------------------------------------------------------
    def export_png(self, path: str | Path) -> None:
        """Save both plots as a PNG image."""
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.graphics.ci)
        exporter.parameters()["width"] = max(800, self.graphics.width())
        exporter.export(str(path))

    def export_csv(self, path: str | Path) -> None:
        """Save step losses (raw and smoothed) and epoch metrics as one CSV table."""
        h = self.history
        x, raw = h.losses.view()
        _, smooth = h.smoothed.view()
        by_step = {int(s): e for s, e in h.epochs}
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["step", "loss", "smoothed_loss", "epoch", "epoch_loss", "val_loss",
                        "accuracy", "val_accuracy"])
            for s, r, sm in zip(x.tolist(), raw.tolist(), smooth.tolist()):
                e = by_step.get(int(s))
                extra = ["", "", "", "", ""] if e is None else [
                    e.epoch, e.loss, _blank(e.val_loss), _blank(e.accuracy),
                    _blank(e.val_accuracy)]
                w.writerow([int(s), repr(r), repr(sm), *extra])

    def _export(self, kind: str) -> None:
        flt = "PNG images (*.png)" if kind == "png" else "CSV files (*.csv)"
        path = self.ask_path(f"Export the loss plot as {kind.upper()}", flt)
        if not path:
            return
        if kind == "png":
            self.export_png(path)
        else:
            self.export_csv(path)

    def _ask_path(self, title: str, flt: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, "", flt)
        return path or None


def _round_out(lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi) widened to multiples of a round step, a twentieth to half of their span."""
    span = hi - lo
    if span <= 0:
        span = abs(hi) or 1.0
    step = 10.0 ** math.floor(math.log10(span)) / 2
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def _visible(x: np.ndarray, y: np.ndarray, window: tuple[float, float] | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """The points inside a step window (x increasing), one more on each side."""
    if window is None or not len(x):
        return x, y
    i0 = max(int(np.searchsorted(x, window[0])) - 1, 0)
    i1 = int(np.searchsorted(x, window[1])) + 1
    return x[i0:i1], y[i0:i1]


def _blank(v) -> str:
    return "" if v is None else repr(float(v))


def _keyed(color: str, text: str) -> str:
    """`text` after a short line in a curve's colour (rich text for the summary label)."""
    # No breaks inside an entry: a narrow dock wraps between entries only.
    return (f"<span style='white-space:nowrap'><span style='color:{color}'><b>━</b></span>"
            f" {text}</span>")
