"""Learn → Learning-Rate Sweep: a short run per learning rate, final loss against the rate.

The sweep (`engine.lab.lr_sweep.lr_sweep`) runs on a `BackgroundJob`; the regions it labels
(too small, good, too large) become shaded bands. Clicking a point picks its rate and
"Apply" writes it into the document's training settings (`controller.set_training`: one
undo step).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.lab.background import BackgroundJob, start_job
from designer.lab.menu import ToolDialog
from engine.errors import GradscapeError
from engine.lab.lr_sweep import (
    GOOD,
    NOT_RUN,
    TOO_LARGE,
    TOO_LARGE_SLOW,
    TOO_SMALL,
    SweepResult,
    lr_sweep,
)
from engine.training.optim import OPTIMIZERS
from engine.training.trainer import TrainConfig, load_data

REGION_COLORS = {TOO_SMALL: "#4c8fd6", GOOD: "#2e9e5b", TOO_LARGE_SLOW: "#e08a2b",
                 TOO_LARGE: "#d03b3b"}
REGION_ALPHA = 55
LINE = "#1f2328"
BEST = "#f0a020"

EXPLAIN = (
    "<b>What am I looking at?</b> Every point is a short training run from the <i>same</i> "
    "initial weights with one learning rate; its height is the loss on the whole training "
    "set afterwards (the dashed line is the loss before training). Too small a rate "
    "(blue band) barely moves the weights; a good rate (green) gets the loss down fast; "
    "past the best, a rate whose loss still fell learns less (orange); only a rate whose "
    "loss rose or blew up (✗ at the top) is diverging (red). The best rate is starred. "
    "Click a point to pick its rate and apply it to the training settings (Edit → Undo "
    "takes it back).")


def sweep_body(job: BackgroundJob, spec, config: TrainConfig, lrs: list[float], steps: int):
    """Job body: the engine's sweep, emitting (runs_done, runs_total) as it goes."""
    data = load_data(config)
    if config.validation_split:
        data, _val = data.split(float(config.validation_split), config.seed)
    last = [-1]

    def should_continue(done: int, total: int) -> bool:
        if done != last[0]:
            last[0] = done
            job.emit((done, total))
        return not job.cancelled

    return lr_sweep(spec, data, config, lrs, steps, should_continue)


def region_bands(result: SweepResult) -> list[tuple[float, float, str]]:
    """(lr_from, lr_to, region) runs of equal regions; borders at geometric midpoints."""
    pts = [(lr, r) for lr, r in zip(result.lrs, result.regions) if r != NOT_RUN]
    pts.sort()
    if not pts:
        return []
    bands: list[tuple[float, float, str]] = []
    logs = [math.log10(lr) for lr, _ in pts]
    half = (logs[1] - logs[0]) / 2 if len(logs) > 1 else 0.25
    lo = logs[0] - half
    for k, (_lr, region) in enumerate(pts):
        hi = (logs[k] + logs[k + 1]) / 2 if k + 1 < len(pts) else logs[k] + half
        if bands and bands[-1][2] == region:
            bands[-1] = (bands[-1][0], 10 ** hi, region)
        else:
            bands.append((10 ** lo, 10 ** hi, region))
        lo = hi
    return bands


class LRSweepView(QWidget):
    """The sweep's settings, its plot with region bands and the Apply button."""

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.job: BackgroundJob | None = None
        self.result: SweepResult | None = None
        self.chosen_lr: float | None = None
        self.bands: list[pg.LinearRegionItem] = []

        explain = QLabel(EXPLAIN)
        explain.setWordWrap(True)
        explain.setStyleSheet(f"color: {theme.current().muted_text};")

        self.lr_from = _log_spin(1e-4)
        self.lr_to = _log_spin(10.0)
        self.count = QSpinBox()
        self.count.setRange(3, 60)
        self.count.setValue(16)
        self.count.setSuffix(" rates")
        self.steps = QSpinBox()
        self.steps.setRange(1, 100000)
        self.steps.setValue(100)
        self.steps.setSuffix(" steps each")
        self.log_y = QCheckBox("Log loss axis")
        self.log_y.setChecked(True)
        self.run_button = QPushButton("Run sweep")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.settings_label = QLabel()
        self.settings_label.setStyleSheet(f"color: {theme.current().muted_text};")

        self.plot_widget = pg.PlotWidget(background=theme.color("background"))
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setLogMode(x=True, y=True)
        self.plot.setLabel("bottom", "learning rate (log scale)")
        self.plot.setLabel("left", "loss after the run (whole training set)")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for side in ("left", "bottom"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.legend = self.plot.addLegend(offset=(8, -8), labelTextSize="9pt",
                                          brush=pg.mkBrush(255, 255, 255, 215),
                                          labelTextColor="#1f2328")
        self.curve = pg.PlotDataItem(pen=pg.mkPen(LINE, width=1.5), symbol="o", symbolSize=8,
                                     symbolBrush=pg.mkBrush(LINE), symbolPen=None)
        self.curve.setZValue(5)
        self.curve.sigPointsClicked.connect(self._on_clicked)
        self.plot.addItem(self.curve)
        self.blown = pg.ScatterPlotItem(symbol="x", size=13, pen=pg.mkPen(REGION_COLORS[
            TOO_LARGE], width=2.5), brush=pg.mkBrush(REGION_COLORS[TOO_LARGE]))
        self.blown.setZValue(6)
        self.blown.sigClicked.connect(self._on_clicked)
        self.plot.addItem(self.blown)
        self.start_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(theme.color("muted_text"),
                                                                width=1.2,
                                                                style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.start_line)
        self.start_line.setVisible(False)
        self.best_marker = pg.ScatterPlotItem(symbol="star", size=20, brush=pg.mkBrush(BEST),
                                              pen=pg.mkPen("#000000", width=1))
        self.best_marker.setZValue(8)
        self.plot.addItem(self.best_marker)
        self.chosen_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(BEST, width=2))
        self.chosen_line.setZValue(4)
        self.plot.addItem(self.chosen_line)
        self.chosen_line.setVisible(False)
        self._legend_samples()

        self.chosen_label = QLabel("Run the sweep, then click a point to pick its rate.")
        self.apply_button = QPushButton("Apply to training settings")
        self.apply_button.setEnabled(False)
        self.apply_button.setToolTip("Set the document's learning rate (undoable)")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        row1 = QHBoxLayout()
        row1.addWidget(QLabel("From"))
        row1.addWidget(self.lr_from)
        row1.addWidget(QLabel("to"))
        row1.addWidget(self.lr_to)
        row1.addWidget(self.count)
        row1.addWidget(self.steps)
        row1.addWidget(self.log_y)
        row1.addStretch(1)
        row1.addWidget(self.progress)
        row1.addWidget(self.run_button)
        row1.addWidget(self.cancel_button)
        row2 = QHBoxLayout()
        row2.addWidget(self.chosen_label, 1)
        row2.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addWidget(explain)
        layout.addLayout(row1)
        layout.addWidget(self.settings_label)
        layout.addWidget(self.plot_widget, 1)
        layout.addLayout(row2)
        layout.addWidget(self.status)

        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.apply_button.clicked.connect(self.apply)
        self.log_y.toggled.connect(lambda on: self.plot.setLogMode(x=True, y=on))
        self.log_y.toggled.connect(lambda _on: self.redraw())
        controller.document.changed.connect(self._describe_settings)
        self._describe_settings()

    def _legend_samples(self) -> None:
        """Legend rows for the bands (filled squares), the line and the markers."""
        self._samples = []  # legend-only items (kept alive here)
        for region in (TOO_SMALL, GOOD, TOO_LARGE_SLOW, TOO_LARGE):
            c = QColor(REGION_COLORS[region])
            c.setAlpha(110)
            sample = pg.BarGraphItem(x=[0], height=[1], width=1, brush=pg.mkBrush(c),
                                     pen=pg.mkPen(REGION_COLORS[region]))
            self._samples.append(sample)
            self.legend.addItem(sample, region)
        self.legend.addItem(self.curve, "final loss")
        self.legend.addItem(self.blown, "blew up (NaN/∞)")
        self.legend.addItem(self.best_marker, "best rate")
        dashed = pg.PlotDataItem([0, 1], [0, 0], pen=self.start_line.pen)
        self._samples.append(dashed)
        self.legend.addItem(dashed, "loss before training")

    def _describe_settings(self) -> None:
        try:
            cfg = TrainConfig.from_block(self.controller.document.training())
        except GradscapeError:
            self.settings_label.setText("The training settings are invalid.")
            return
        info = OPTIMIZERS.get(cfg.optimizer)
        batch = "full batch" if not cfg.batch_size else f"batches of {cfg.batch_size}"
        self.settings_label.setText(
            f"Uses the document's settings: {info.label if info else cfg.optimizer}, {batch}, "
            f"seed {cfg.seed}; current learning rate {cfg.lr:g}.")

    # -- running -------------------------------------------------------------------------
    def learning_rates(self) -> list[float]:
        lo, hi = self.lr_from.value(), self.lr_to.value()
        if hi < lo:
            lo, hi = hi, lo
        return [float(v) for v in np.logspace(math.log10(lo), math.log10(hi),
                                              self.count.value())]

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.isRunning()

    def run(self) -> None:
        """Sweep the rates on a thread of its own."""
        self.cancel()
        doc = self.controller.document
        if doc.analysis().diagnostics or not doc.nodes():
            self.status.setText("The graph cannot be trained yet: fix the problems first.")
            return
        try:
            config = TrainConfig.from_block(doc.training())
        except GradscapeError as exc:
            self.status.setText(str(exc))
            return
        spec, lrs, steps = doc.spec(), self.learning_rates(), self.steps.value()
        self.progress.setRange(0, len(lrs))
        self.progress.setValue(0)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Training {len(lrs)} copies for {steps} steps each…")
        self.job = start_job(lambda job: sweep_body(job, spec, config, lrs, steps),
                             self._on_progress, self._on_done, self._on_failed,
                             name="gradscape-lr-sweep")

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self.job = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_progress(self, chunk) -> None:
        if self.sender() is self.job:
            self.progress.setValue(chunk[0])

    def _on_failed(self, message: str) -> None:
        self.cancel()
        self.status.setText(message)

    def _on_done(self, result: SweepResult) -> None:
        if self.sender() is not self.job:
            return
        self.job = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setValue(self.progress.maximum())
        self.show_result(result)

    def show_result(self, result: SweepResult) -> None:
        """Draw a sweep result: points, bands, best rate; pick the best rate."""
        self.result = result
        self.redraw()
        if result.best_lr is not None:
            self.choose(result.best_lr)
            self.status.setText(
                f"Best: {result.best_lr:.3g} (loss {result.initial_loss:.4g} → "
                f"{min(v for v, d in zip(result.final_losses, result.diverged) if not d):.4g})."
                + ("  Cancelled early: only the rates that ran are shown." if
                   result.cancelled else ""))
        else:
            self.status.setText("No learning rate lowered the loss in this many steps: try "
                                "more steps or another range.")

    def redraw(self) -> None:
        r = self.result
        for band in self.bands:
            self.plot.removeItem(band)
        self.bands = []
        if r is None:
            return
        log_y = self.log_y.isChecked()
        done = [k for k, reg in enumerate(r.regions) if reg != NOT_RUN]
        ok = [k for k in done if math.isfinite(r.final_losses[k])]
        xs = np.array([r.lrs[k] for k in ok])
        ys = np.array([r.final_losses[k] for k in ok])
        self.curve.setData(xs, ys)
        top = max([*ys.tolist(), r.initial_loss]) if len(ys) else r.initial_loss
        top_y = top * 1.5 if log_y else top * 1.15
        blown = [r.lrs[k] for k in done if not math.isfinite(r.final_losses[k])]
        self.blown.setData(np.log10(blown) if blown else [], [_y(top_y, log_y)] * len(blown))
        self.start_line.setValue(_y(r.initial_loss, log_y))
        self.start_line.setVisible(True)
        if r.best_lr is not None:
            k = r.lrs.index(r.best_lr)
            self.best_marker.setData([math.log10(r.best_lr)], [_y(r.final_losses[k], log_y)])
        else:
            self.best_marker.setData([], [])
        for lo, hi, region in region_bands(r):
            c = QColor(REGION_COLORS[region])
            c.setAlpha(REGION_ALPHA)
            band = pg.LinearRegionItem((math.log10(lo), math.log10(hi)), movable=False,
                                       brush=pg.mkBrush(c), pen=pg.mkPen(None))
            band.setZValue(-10)
            band.setToolTip(region)
            self.plot.addItem(band)
            self.bands.append(band)
        self.plot.enableAutoRange()

    # -- choosing and applying -----------------------------------------------------------
    def _on_clicked(self, _item, points, *_args) -> None:
        if len(points):
            x = points[0].pos().x()
            self.choose(10 ** x)

    def choose(self, lr: float) -> None:
        """Pick a learning rate (the best one after a sweep, or a clicked point)."""
        self.chosen_lr = float(f"{lr:.3g}")
        self.chosen_line.setValue(math.log10(lr))
        self.chosen_line.setVisible(True)
        region = ""
        if self.result is not None:
            k = int(np.argmin([abs(math.log10(v) - math.log10(lr)) for v in self.result.lrs]))
            region = self.result.regions[k]
        self.chosen_label.setText(f"Chosen learning rate: <b>{self.chosen_lr:g}</b>"
                                  + (f"  ({region})" if region else ""))
        self.apply_button.setEnabled(True)
        self.apply_button.setText(f"Apply lr = {self.chosen_lr:g} to training settings")

    def apply(self) -> None:
        """Write the chosen rate into the document's training block (one undo step)."""
        if self.chosen_lr is None:
            return
        block = self.controller.document.training()
        block["lr"] = self.chosen_lr
        self.controller.set_training(block)
        self.status.setText(f"The training learning rate is now {self.chosen_lr:g} "
                            "(Edit → Undo to take it back).")

    def shutdown(self) -> None:
        if self.job is not None:
            self.job.cancel(wait=True)
        self.job = None


def _y(v: float, log: bool) -> float:
    return math.log10(v) if log and v > 0 else v


def _log_spin(value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(6)
    spin.setRange(1e-6, 100.0)
    spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
    spin.setValue(value)
    return spin


class LRSweepDialog(ToolDialog):
    """A non-modal window around an LRSweepView."""

    TITLE, NAME, SIZE = "Learning-Rate Sweep", "lab_lr_sweep_dialog", (1000, 720)

    def __init__(self, controller, parent=None):
        self.controller = controller
        super().__init__(parent)

    def make_view(self, parent):
        return LRSweepView(self.controller, parent)
