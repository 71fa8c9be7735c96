"""Learn → Optimizer Race: copies of the graph trained side by side by several optimizers.

Every contender starts from the same initial weights and sees the same sample order
(`engine.lab.race.OptimizerRace`); the race runs on a `BackgroundJob` and sends the new losses
about ten times a second. Afterwards the paths can be drawn on a loss landscape through the
shared start weights (a second background job).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.lab.background import BackgroundJob, start_job
from designer.lab.landscape_view import LandscapePlot, scan_rows
from designer.lab.menu import ToolDialog, guard_all
from engine.core import registry
from engine.errors import GradscapeError
from engine.lab.landscape import LandscapeScan, project
from engine.lab.race import DEFAULT_ENTRIES, DEFAULT_EPOCHS, OptimizerRace, RaceEntry
from engine.training.optim import OPTIMIZERS
from engine.training.trainer import TrainConfig, load_data

SEND_EVERY_S = 0.1  # the race sends new losses at most 10 times a second
SMOOTHING = 0.1  # newest point's weight in the optional moving average
COLORS = ["#e6194b", "#f58231", "#3cb44b", "#4363d8", "#f032e6", "#42d4f4", "#911eb4",
          "#9a6324"]
COLUMNS = ["Race", "Name", "Optimizer", "Learning rate", "Batch size", "Loss"]
GRAPH_LOSS = ""  # the Loss column's "keep the graph's loss"
DIVERGED_CAP = 10.0  # curves are drawn up to this × the highest starting loss

EXPLAIN = (
    "<b>What am I looking at?</b> Each contender trains its own copy of this graph, starting "
    "from <i>the same initial weights</i> and seeing <i>the same samples in the same "
    "order</i>; only the optimizer, learning rate and batch size differ. Full-batch "
    "gradient descent follows the exact gradient (smooth but one step per epoch); "
    "SGD and mini-batches take many cheap, noisy steps; momentum and Adam reuse past "
    "gradients to go faster. The x axis counts <i>epochs</i> (passes over the data), so a "
    "contender with small batches has taken many more steps at the same x. A contender "
    "whose loss blows up is marked <i>diverged</i> and stops; its curve is cut at "
    f"{DIVERGED_CAP:g}× the starting loss so the others keep their scale. The Loss column "
    "compares loss functions (MSE against cross-entropy): those contenders are scored by "
    "their own loss, so compare their accuracy.")

DEFAULT_CONTENDERS = [(e.label, e.optimizer, e.lr, e.batch_size or 0) for e in DEFAULT_ENTRIES]


@dataclass
class Progress:
    """New losses of every contender since the last chunk."""

    losses: list[np.ndarray]
    samples: list[np.ndarray]
    diverged: list[bool]
    messages: list[str]


def race_body(job: BackgroundJob, spec, entries: list[RaceEntry], epochs: int,
              snapshot_every: int):
    """Job body: run the race, emitting ("start", thetas) then Progress chunks."""
    config = TrainConfig.from_block(spec.training)
    data = load_data(config)
    if config.validation_split:
        data, _val = data.split(float(config.validation_split), config.seed)
    race = OptimizerRace(spec, entries, data, seed=config.seed, config=config,
                         snapshot_every=snapshot_every)
    job.emit(("start", [c.program.theta.copy() for c in race.contenders], len(data)))
    sent = [0] * len(race.contenders)
    last = [time.perf_counter()]

    def flush() -> None:
        chunk = Progress([], [], [], [])
        for k, c in enumerate(race.contenders):
            chunk.losses.append(np.array(c.losses[sent[k]:], dtype=np.float64))
            chunk.samples.append(np.array(c.samples_seen[sent[k]:], dtype=np.float64))
            chunk.diverged.append(c.diverged)
            chunk.messages.append(c.message)
            sent[k] = len(c.losses)
        job.emit(("progress", chunk))
        last[0] = time.perf_counter()

    def should_continue(_race) -> bool:
        if time.perf_counter() - last[0] > SEND_EVERY_S:
            flush()
        return not job.cancelled

    race.run(epochs, should_continue)
    flush()
    return race


def path_plane(race: OptimizerRace, kind: str, seed: int = 0):
    """Directions, span and axis labels of a plane through the shared start weights.

    "random": two filter-normalised random directions. "ends": towards the end point of
    the contender that moved farthest, and towards the next one that went another way
    (orthogonalised). The span is chosen so that every projected path fits.
    """
    c0 = race.contenders[0]
    start = c0.snapshots[0]
    ok = [c for c in race.contenders if c.snapshots and not c.diverged] or race.contenders
    d1 = d2 = None
    labels = ("α  (random direction 1, filter-normalised)",
              "β  (random direction 2, filter-normalised)")
    if kind == "ends":
        moves = sorted(((np.asarray(c.snapshots[-1] - start, np.float64), c.label) for c in ok
                        if c.snapshots), key=lambda m: -float(np.linalg.norm(m[0])))
        moves = [m for m in moves if np.linalg.norm(m[0]) > 0]
        if moves:
            d1, first = moves[0]
            second = "a random direction"
            for e, label in moves[1:]:
                r = e - (e @ d1) / (d1 @ d1) * d1
                if np.linalg.norm(r) > 0.05 * np.linalg.norm(e):
                    d2, second = r * (np.linalg.norm(d1) / np.linalg.norm(r)), label
                    break
            if d2 is None:
                r = np.random.default_rng(seed).standard_normal(d1.size)
                r -= (r @ d1) / (d1 @ d1) * d1
                d2 = r * (np.linalg.norm(d1) / np.linalg.norm(r))
            d1, d2 = d1.astype(start.dtype), d2.astype(start.dtype)
            labels = (f"α  (1 = where {first} ended)", f"β  (towards {second})")
    if d1 is None:
        probe = LandscapeScan(c0.program, c0.trainer.x[:1], c0.trainer.y[:1], "random",
                              center=start, span=1.0, resolution=2, seed=seed)
        d1, d2 = probe.landscape.d1, probe.landscape.d2
    reach = 0.0
    for c in ok:
        if c.snapshots:
            a, b = project(np.stack(c.snapshots), start, d1, d2)
            finite = np.isfinite(a) & np.isfinite(b)
            if finite.any():
                reach = max(reach, float(np.max(np.abs(a[finite]))),
                            float(np.max(np.abs(b[finite]))))
    span = max(0.25, 1.2 * reach) if reach > 0 else 1.0
    return (d1, d2), span, labels


class RaceView(QWidget):
    """The contenders table, the overlaid loss curves and the optional landscape."""

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.job: BackgroundJob | None = None
        self.landscape_job: BackgroundJob | None = None
        self.race: OptimizerRace | None = None
        self.initial_thetas: list[np.ndarray] = []
        self.n_samples = 1
        self.labels: list[str] = []
        self.losses: list[list[np.ndarray]] = []
        self.samples: list[list[np.ndarray]] = []
        self.diverged: list[bool] = []
        self.curves: list[pg.PlotDataItem] = []

        explain = QLabel(EXPLAIN)
        explain.setWordWrap(True)
        explain.setStyleSheet(f"color: {theme.current().muted_text};")

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Batch size 0 means full batch (the whole training set per step)")
        for row in DEFAULT_CONTENDERS:
            self.add_contender(*row)
        # MSE against cross-entropy, ticked by whoever wants that comparison (BCE needs a
        # probability output, which not every graph has).
        self.add_contender("Full-batch GD, cross-entropy", "sgd", 2.0, 0, use=False,
                           loss="BCELoss")
        add = QPushButton("Add")
        add.clicked.connect(lambda: self.add_contender("Adam", "adam", 0.01, 16))
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove_selected)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(DEFAULT_EPOCHS)
        self.epochs.setSuffix(" epochs")
        self.x_axis = QComboBox()
        self.x_axis.addItem("x: epochs (data seen)", "epochs")
        self.x_axis.addItem("x: optimizer steps", "steps")
        self.log_box = QCheckBox("Log scale")
        self.log_box.setChecked(True)
        self.smooth_box = QCheckBox("Smooth")
        self.smooth_box.setChecked(True)
        self.smooth_box.setToolTip("Moving average of the batch losses (noisy for small "
                                   "batches)")
        self.paths_box = QCheckBox("Paths on the loss landscape")
        self.plane_kind = QComboBox()
        self.plane_kind.addItem("random plane", "random")
        self.plane_kind.addItem("plane through end points", "ends")
        self.plane_kind.setToolTip(
            "Random: two filter-normalised random directions through the shared start "
            "weights. End points: the plane through the start and two contenders' final "
            "weights (shows the paths best).")
        self.start_button = QPushButton("Start race")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)

        self.plot_widget = pg.PlotWidget(background=theme.color("background"))
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setLabel("left", "loss (batch)")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.legend = self.plot.addLegend(offset=(8, -8), labelTextSize="9pt",
                                          brush=pg.mkBrush(255, 255, 255, 210),
                                          labelTextColor="#1f2328")
        self.landscape = LandscapePlot(center_label="shared start weights")
        self.landscape.setVisible(False)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.plot_widget)
        self.splitter.addWidget(self.landscape)
        self.splitter.setChildrenCollapsible(False)
        self.status = QLabel("Pick the contenders and press Start race.")
        self.status.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.table, 1)
        side = QVBoxLayout()
        side.addWidget(add)
        side.addWidget(remove)
        side.addStretch(1)
        top.addLayout(side)
        bar = QHBoxLayout()
        bar.addWidget(self.epochs)
        bar.addWidget(self.x_axis)
        bar.addWidget(self.log_box)
        bar.addWidget(self.smooth_box)
        bar.addWidget(self.paths_box)
        bar.addWidget(self.plane_kind)
        bar.addStretch(1)
        bar.addWidget(self.progress)
        bar.addWidget(self.start_button)
        bar.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addWidget(explain)
        layout.addLayout(top)
        layout.addLayout(bar)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.status)
        self.table.setMaximumHeight(self.table.verticalHeader().length() + 60)

        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.log_box.toggled.connect(self._apply_log)
        self.smooth_box.toggled.connect(lambda _on: self.redraw())
        self.x_axis.currentIndexChanged.connect(lambda _i: self.redraw())
        self.paths_box.toggled.connect(self._on_paths_toggled)
        self.plane_kind.currentIndexChanged.connect(lambda _i: self._on_paths_toggled(
            self.paths_box.isChecked()))
        self._apply_log(True)

    # -- the table -----------------------------------------------------------------------
    def add_contender(self, name: str, optimizer: str, lr: float, batch: int,
                      use: bool = True, loss: str = GRAPH_LOSS) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        check = QTableWidgetItem()
        check.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
        check.setCheckState(Qt.CheckState.Checked if use else Qt.CheckState.Unchecked)
        self.table.setItem(r, 0, check)
        self.table.setItem(r, 1, QTableWidgetItem(name))
        combo = QComboBox()
        for key, info in OPTIMIZERS.items():
            combo.addItem(info.label, key)
            combo.setItemData(combo.count() - 1, info.description, Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(max(0, combo.findData(optimizer)))
        self.table.setCellWidget(r, 2, combo)
        self.table.setItem(r, 3, QTableWidgetItem(f"{lr:g}"))
        spin = QSpinBox()
        spin.setRange(0, 1_000_000)
        spin.setSpecialValueText("full batch")
        spin.setValue(batch)
        self.table.setCellWidget(r, 4, spin)
        losses = QComboBox()
        losses.addItem("the graph's", GRAPH_LOSS)
        for op in registry.all_ops():
            if getattr(op, "is_loss", False):
                losses.addItem(op.id, op.id)
        losses.setCurrentIndex(max(0, losses.findData(loss)))
        losses.setToolTip("Train this contender with another loss function (the graph's "
                          "loss node is swapped in its copy)")
        self.table.setCellWidget(r, 5, losses)
        guard_all(self.table)  # rows added later get the same wheel rule
        self.table.setMaximumHeight(self.table.verticalHeader().length() + 60)

    def _remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        for r in rows or [self.table.rowCount() - 1]:
            if r >= 0:
                self.table.removeRow(r)

    def entries(self) -> list[RaceEntry]:
        """The ticked contenders (raises GradscapeError with a sentence when a cell is bad)."""
        out, names = [], set()
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).checkState() != Qt.CheckState.Checked:
                continue
            name = self.table.item(r, 1).text().strip() or f"contender {r + 1}"
            while name in names:
                name += "′"
            names.add(name)
            try:
                lr = float(self.table.item(r, 3).text())
            except ValueError:
                lr = float("nan")
            if not (lr > 0 and math.isfinite(lr)):
                raise GradscapeError(f"Row {r + 1}: the learning rate must be a positive "
                                     f"number, not '{self.table.item(r, 3).text()}'.")
            optimizer = self.table.cellWidget(r, 2).currentData()
            batch = self.table.cellWidget(r, 4).value()
            loss = self.table.cellWidget(r, 5).currentData() or None
            out.append(RaceEntry(name, optimizer, lr, batch or None, loss=loss))
        if not out:
            raise GradscapeError("Tick at least one contender.")
        return out

    # -- running -------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return any(j is not None and j.isRunning() for j in (self.job, self.landscape_job))

    def start(self) -> None:
        """Start a race with the ticked contenders on a thread of its own."""
        self.stop()
        doc = self.controller.document
        if doc.analysis().diagnostics or not doc.nodes():
            self.status.setText("The graph cannot be trained yet: fix the problems first.")
            return
        try:
            entries = self.entries()
            config = TrainConfig.from_block(doc.training())
            n = len(load_data(config))
        except GradscapeError as exc:
            self.status.setText(str(exc))
            return
        epochs = self.epochs.value()
        most_steps = max(math.ceil(n / (e.batch_size or n)) for e in entries) * epochs
        snapshot_every = max(1, most_steps // 300)
        spec = doc.spec()
        self._reset_curves([e.label for e in entries])
        self.race = None
        self.landscape.clear_paths()
        self.progress.setRange(0, epochs)
        self.progress.setValue(0)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText("Racing…")
        self.job = start_job(lambda job: race_body(job, spec, entries, epochs, snapshot_every),
                             self._on_chunk, self._on_done, self._on_failed,
                             name="gradscape-race")

    def stop(self) -> None:
        for job in (self.job, self.landscape_job):
            if job is not None:
                job.cancel()
        self.job = self.landscape_job = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _reset_curves(self, labels: list[str]) -> None:
        for c in self.curves:
            self.plot.removeItem(c)
        self.legend.clear()
        self.labels = labels
        self.losses = [[] for _ in labels]
        self.samples = [[] for _ in labels]
        self.diverged = [False] * len(labels)
        self.curves = []
        for k, label in enumerate(labels):
            curve = self.plot.plot(pen=pg.mkPen(COLORS[k % len(COLORS)], width=2), name=label,
                                   antialias=True)
            self.curves.append(curve)

    def _on_chunk(self, chunk) -> None:
        if self.sender() is not self.job:
            return
        if chunk[0] == "start":
            self.initial_thetas, self.n_samples = chunk[1], chunk[2]
            return
        p: Progress = chunk[1]
        for k in range(len(self.labels)):
            if len(p.losses[k]):
                self.losses[k].append(p.losses[k])
                self.samples[k].append(p.samples[k])
            if p.diverged[k] and not self.diverged[k]:
                self.diverged[k] = True
                self._rename(k, f"{self.labels[k]} ✗ diverged")
        seen = [float(s[-1][-1]) if s else 0.0 for s in self.samples]
        running = [v for v, d in zip(seen, self.diverged) if not d] or seen
        self.progress.setValue(int(min(running) / max(1, self.n_samples)))
        self.redraw()

    def _rename(self, k: int, text: str) -> None:
        for sample, label in self.legend.items:
            if sample.item is self.curves[k]:
                label.setText(text)

    def series(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """x (epochs or steps) and y (batch loss, smoothed if asked) of contender k."""
        y = np.concatenate(self.losses[k]) if self.losses[k] else np.zeros(0)
        if self.x_axis.currentData() == "steps":
            x = np.arange(1, len(y) + 1, dtype=np.float64)
        else:
            s = np.concatenate(self.samples[k]) if self.samples[k] else np.zeros(0)
            x = s / max(1, self.n_samples)
        if self.smooth_box.isChecked() and len(y):
            y = _ema(y, SMOOTHING)
        finite = np.isfinite(y) & (y > 0 if self.log_box.isChecked() else True)
        finite &= y <= self.y_cap()  # a diverging curve must not flatten the others
        return x[finite], y[finite]

    def y_cap(self) -> float:
        """The highest loss drawn: DIVERGED_CAP × the highest first loss of any contender."""
        firsts = [float(s[0][0]) for s in self.losses if s and len(s[0])
                  and math.isfinite(float(s[0][0]))]
        return DIVERGED_CAP * max(firsts) if firsts else math.inf

    def redraw(self) -> None:
        for k, curve in enumerate(self.curves):
            curve.setData(*self.series(k))
        self.plot.setLabel("bottom", "epochs (passes over the training data)"
                           if self.x_axis.currentData() == "epochs" else "optimizer steps")

    def _apply_log(self, on: bool) -> None:
        self.plot.setLogMode(y=on)
        self.redraw()

    def _on_done(self, race: OptimizerRace) -> None:
        if self.sender() is not self.job:
            return
        self.job = None
        self.race = race
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.progress.setValue(self.progress.maximum())
        self.status.setText(self.summary())
        if self.paths_box.isChecked():
            self.compute_landscape()

    def _on_failed(self, message: str) -> None:
        self.stop()
        self.status.setText(message)

    def summary(self) -> str:
        if self.race is None:
            return ""
        parts = []
        for r in self.race.results():
            if r.diverged:
                parts.append(f"<b>{r.label}</b>: diverged")
                continue
            acc = "" if r.train_accuracy is None else f", {r.train_accuracy:.0%} right"
            parts.append(f"<b>{r.label}</b>: {r.train_loss:.4g}{acc} after {r.steps} steps")
        return (f"Loss on the whole training set ({self.n_samples} samples, evaluation mode) — "
                + "  ·  ".join(parts))

    # -- paths on a landscape ------------------------------------------------------------
    def _on_paths_toggled(self, on: bool) -> None:
        self.landscape.setVisible(on)
        if on:
            self.splitter.setSizes([1, 1])
            if self.race is not None:
                self.compute_landscape()

    def compute_landscape(self, resolution: int = 31) -> None:
        """Map the loss on a plane through the start weights and draw every path on it."""
        race = self.race
        if race is None or not race.contenders[0].snapshots:
            return
        if self.landscape_job is not None:
            self.landscape_job.cancel()
        kind = self.plane_kind.currentData()
        self.landscape.clear_paths()
        self.status.setText(self.summary() + "<br>Mapping the loss landscape…")

        def body(job):
            directions, span, labels = path_plane(race, kind)
            c0 = race.contenders[0]
            return scan_rows(job, c0.program, c0.trainer.x, c0.trainer.y, list(directions),
                             span, resolution, center=c0.snapshots[0], labels=labels)

        self.landscape_job = start_job(body, self._on_landscape_chunk, self._on_landscape_done,
                                       self._on_failed, name="gradscape-race-landscape")

    def _on_landscape_chunk(self, chunk) -> None:
        if self.sender() is not self.landscape_job:
            return
        if chunk[0] == "plane":
            plane = chunk[1]
            self.landscape.set_plane(plane)
            for k, c in enumerate(self.race.contenders):
                if c.snapshots:
                    a, b = plane.project(np.stack(c.snapshots))
                    ok = np.isfinite(a) & np.isfinite(b)
                    self.landscape.set_path(c.label, a[ok], b[ok], COLORS[k % len(COLORS)])
        else:
            self.landscape.set_row(chunk[1], chunk[2])
            if chunk[1] % 4 == 3:
                self.landscape.redraw()

    def _on_landscape_done(self, losses) -> None:
        if self.sender() is not self.landscape_job:
            return
        self.landscape_job = None
        self.landscape.set_losses(losses)
        self.status.setText(self.summary())

    def shutdown(self) -> None:
        for job in (self.job, self.landscape_job):
            if job is not None:
                job.cancel(wait=True)
        self.job = self.landscape_job = None


def _ema(y: np.ndarray, w: float) -> np.ndarray:
    out = np.empty_like(y)
    ema = math.nan
    for i, v in enumerate(y.tolist()):
        if math.isfinite(v):
            ema = v if not math.isfinite(ema) else ema + w * (v - ema)
        out[i] = ema
    return out


class RaceDialog(ToolDialog):
    """A non-modal window around a RaceView."""

    TITLE, NAME, SIZE, STOP = "Optimizer Race", "lab_race_dialog", (1200, 820), "stop"

    def __init__(self, controller, parent=None):
        self.controller = controller
        super().__init__(parent)

    def make_view(self, parent):
        return RaceView(self.controller, parent)
