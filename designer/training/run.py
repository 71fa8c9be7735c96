"""`TrainingRun`: the one owner of a training run's numbers — the fourth store.

The worker process trains; the session writes what it reports into the run; every view
(loss plot, wire overlay, status bar, node titles, model files, backprop stepper, lab panels)
reads the run and listens to its signals. No view keeps its own copy of the history.

A run belongs to a document: File → New, Open and closing start a fresh run, so counters,
the loss history and the colour scale never carry over from another graph.

`RunHistory` and `SeriesBuffer` are plain Python (no Qt) and hold the step losses, their
smoothed curve and the per-epoch metrics.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QObject, Signal

from designer.training.frame_pacer import FramePacer

CAPACITY = 1 << 18  # step losses kept before the oldest half is dropped
SMOOTHING_STEPS = 20  # the smoothed curve averages about this many recent steps


class SeriesBuffer:
    """x/y points in preallocated arrays; `view()` returns the filled part without copying.

    When full, the older half is dropped (one copy per `capacity / 2` appends).
    """

    def __init__(self, capacity: int = CAPACITY):
        self.x = np.zeros(capacity, dtype=np.float64)
        self.y = np.zeros(capacity, dtype=np.float64)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def clear(self) -> None:
        self.n = 0

    def extend(self, xs, ys) -> None:
        """Append points (arrays of equal length)."""
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        cap = len(self.x)
        if len(xs) > cap // 2:
            xs, ys = xs[-(cap // 2):], ys[-(cap // 2):]
        if self.n + len(xs) > cap:
            keep = cap // 2
            self.x[:keep] = self.x[self.n - keep:self.n]
            self.y[:keep] = self.y[self.n - keep:self.n]
            self.n = keep
        self.x[self.n:self.n + len(xs)] = xs
        self.y[self.n:self.n + len(ys)] = ys
        self.n += len(xs)

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[:self.n], self.y[:self.n]


class RunHistory:
    """Step losses, their smoothed curve and epoch metrics of one run (no Qt).

    The smoothed curve is a bias-corrected exponential moving average: each point is a
    weighted mean of the step losses so far (weights summing to 1), so it always lies
    within the range of the losses it averages — from the very first step, unlike a plain
    moving average started at the first loss or at zero. Each smoothed value is placed at
    the weighted mean step of the losses it averages (about 19 steps back once the run is
    longer than the window), not at the newest step: drawn there, a falling curve's average
    runs through the middle of its losses instead of trailing above them.
    """

    def __init__(self) -> None:
        self.losses = SeriesBuffer()
        self.smoothed = SeriesBuffer()
        self.val = SeriesBuffer(1 << 14)
        self.acc = SeriesBuffer(1 << 14)
        self.val_acc = SeriesBuffer(1 << 14)
        self.epochs: list[tuple[int, object]] = []  # (step, EpochReport)
        self.beta = 1.0 - 1.0 / SMOOTHING_STEPS
        self._ema = 0.0
        self._weight = 0.0  # 1 − beta**t: the bias correction
        self._age = 0.0  # Σ weight × age (in steps) of the averaged losses
        self._finite = 0

    def clear(self) -> None:
        for buf in (self.losses, self.smoothed, self.val, self.acc, self.val_acc):
            buf.clear()
        self.epochs = []
        self._ema = self._weight = self._age = 0.0

    @property
    def last_step(self) -> int:
        return int(self.losses.view()[0][-1]) if len(self.losses) else 0

    def add_losses(self, first_step: int, losses: np.ndarray) -> None:
        """Step losses for steps first_step, first_step + 1, …; earlier steps already here
        (a report that overlaps the history) are skipped."""
        losses = np.asarray(losses, dtype=np.float64)
        if not len(losses):
            return
        skip = max(0, self.last_step - first_step + 1) if len(self.losses) else 0
        losses = losses[skip:]
        if not len(losses):
            return
        steps = np.arange(first_step + skip, first_step + skip + len(losses), dtype=np.float64)
        smooth = np.empty(len(losses))
        lag = np.zeros(len(losses))
        ema, weight, age, beta = self._ema, self._weight, self._age, self.beta
        for i, v in enumerate(losses.tolist()):
            if math.isfinite(v):
                age = beta * (age + weight)  # every averaged loss is a step older
                ema = beta * ema + (1.0 - beta) * v
                weight = beta * weight + (1.0 - beta)
            smooth[i] = ema / weight if weight else math.nan
            lag[i] = age / weight if weight else 0.0
        self._ema, self._weight, self._age = ema, weight, age
        self.losses.extend(steps, losses)
        self.smoothed.extend(steps - lag, smooth)

    def add_epochs(self, epochs: list[tuple[int, object]]) -> None:
        for step, epoch in epochs:
            self.epochs.append((step, epoch))
            for buf, v in ((self.val, epoch.val_loss), (self.acc, epoch.accuracy),
                           (self.val_acc, epoch.val_accuracy)):
                if v is not None:
                    buf.extend([step], [v])

    def smoothed_loss(self) -> float:
        """The newest smoothed value (nan before the first step)."""
        return float(self.smoothed.view()[1][-1]) if len(self.smoothed) else math.nan


class TrainingRun(QObject):
    """The state of one document's training: counters, history, last report, parameters.

    Written only by the `TrainingSession`; everything else reads it.

    Attributes:
        state: one of the session's state constants.
        step, epoch, target_epoch, loss, lr, steps_per_second: the engine's current numbers
            (as of the newest report).
        history: `RunHistory` of every step loss and epoch metric.
        last_report: the newest `TrainingReport` (per-edge summaries), or None.
        parameters: current values of small parameter tensors ("node.name" → array).
        wire_owner: who decorates the wires now: "overlay" (live training) or another
            tool (the backprop stepper) that claimed them.
    Signals:
        restarted(): a fresh run (new document, weights reset): clear everything shown.
        updated(object report): new numbers.
        state_changed(str)
        wires_claimed(str owner): the owner of the wire decorations changed.
    """

    restarted = Signal()
    updated = Signal(object)
    state_changed = Signal(str)
    wires_claimed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.state = "empty"
        self.history = RunHistory()
        self.wire_owner = "overlay"
        self.pacer = FramePacer(self)  # the views' heavy redraws, one per turn
        self._zero()

    def _zero(self) -> None:
        self.step = self.epoch = self.target_epoch = 0
        self.loss = math.nan
        self.lr = math.nan
        self.steps_per_second = 0.0
        self.last_report = None
        self.parameters: dict[str, np.ndarray] = {}

    # -- written by the session ------------------------------------------------------------
    def restart(self) -> None:
        """Forget every number: the next report starts a new run."""
        self._zero()
        self.history.clear()
        self.pacer.clear()
        self.restarted.emit()

    def apply(self, report) -> None:
        """Take a worker report's numbers as the current ones."""
        self.history.add_losses(report.first_step, report.losses)
        self.history.add_epochs(report.epochs)
        self.step, self.epoch = report.step, report.epoch
        self.target_epoch = report.target_epoch
        if math.isfinite(report.loss) or not len(self.history.losses):
            self.loss = report.loss
        self.lr, self.steps_per_second = report.lr, report.steps_per_second
        self.parameters = dict(report.parameters)
        self.last_report = report
        self.updated.emit(report)

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    # -- wire decorations ----------------------------------------------------------------
    def claim_wires(self, owner: str) -> None:
        """`owner` decorates the wires from now on (the overlay stops repainting them)."""
        if owner != self.wire_owner:
            self.wire_owner = owner
            self.wires_claimed.emit(owner)

    def release_wires(self, owner: str) -> None:
        """Give the wires back to the live overlay (if `owner` still has them)."""
        if self.wire_owner == owner and owner != "overlay":
            self.wire_owner = "overlay"
            self.wires_claimed.emit("overlay")

    def parameter_value(self, node_id: str) -> float | None:
        """The current value of a one-number parameter node (θ), or None if unknown."""
        for key, value in self.parameters.items():
            if key.rsplit(".", 1)[0] == node_id and value.size == 1:
                return float(value.reshape(-1)[0])
        return None
