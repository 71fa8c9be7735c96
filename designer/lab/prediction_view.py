"""The "Predictions" dock: what the network predicts, updated live while it trains.

- 2-D classification (xor, spirals, blobs…): decision regions (the model evaluated on a
  GRID × GRID grid, each cell coloured by its class probabilities) with the training
  points (filled) and validation points (hollow);
- 1-D regression (sine, linear): the fitted curve over the data;
- images (digits): a grid of samples with predicted and true labels;
- classification: a confusion matrix (validation set when there is one).

The model is evaluated on the training thread (`session.run_on_worker`) on a private copy
of the program that receives the live weights, so the live program's values and saved
forward state are never disturbed. At most a few updates per second.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import QBoxLayout, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from designer import theme
from designer.lab.draw_points import DrawingViewBox, PointDrawer, pass_clicks_on
from designer.theme import class_color
from designer.training import session as states
from designer.training.throttle import ThrottledFetch
from engine.data.csv_sample import even_rows

GRID = 80
CURVE_POINTS = 200
SAMPLES = 18
UPDATE_INTERVAL_MS = 300
COST_FACTOR = 30  # updates cost at most ~3% of training time
CHUNK = 4096
MAX_POINTS = 5000  # points drawn per set; bigger data sets are shown by an even subsample
MAX_SCORED = 50_000  # rows predicted for the confusion matrix and accuracy (an even subsample)
# A huge layer (Dense with 100,000 units) must not make one update take seconds or
# gigabytes: rows go through the network in chunks of at most EVAL_BYTES of values, and
# the grid and the scored rows shrink so that an update costs at most about EVAL_MACS
# multiply-adds (the view says so). Small networks keep the full GRID and MAX_SCORED.
EVAL_BYTES = 64 * 2**20
EVAL_MACS = 10**9
MIN_GRID = 16
MIN_SCORED = 1000
@dataclass
class Prediction:
    """One evaluation of the model, plain arrays only (built on the training thread)."""

    kind: str  # "regions", "curve", "images", "scatter" or "none"
    task: str
    step: int = 0
    class_names: list[str] = field(default_factory=list)
    train_x: np.ndarray | None = None
    train_y: np.ndarray | None = None
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    grid_size: int = GRID  # cells per side of the decision-region grid (less: a huge network)
    parameters: int = 0  # the network's parameter count (why the grid may be coarser)
    grid_x: np.ndarray | None = None  # (grid_size,) cell centres
    grid_y: np.ndarray | None = None
    probs: np.ndarray | None = None  # (GRID, GRID, C): row = y index, column = x index
    curve_x: np.ndarray | None = None
    curve_y: np.ndarray | None = None
    pred_y: np.ndarray | None = None  # regression: prediction of every shown point
    images: np.ndarray | None = None  # (n, H, W)
    image_true: np.ndarray | None = None
    image_pred: np.ndarray | None = None
    confusion: np.ndarray | None = None  # rows: true class, columns: predicted
    confusion_set: str = ""
    has_validation: bool = False
    accuracy: float | None = None
    feature_mean: np.ndarray | None = None  # standardised plane: raw = plane * std + mean
    feature_std: np.ndarray | None = None
    points_shown: int = 0  # data points drawn (a subsample when the set is larger) ...
    points_total: int = 0  # ... out of this many
    scored_total: int = 0  # rows of the set the confusion matrix and accuracy stand for


def subsample(n: int, limit: int = MAX_POINTS) -> slice | np.ndarray:
    """Rows to draw out of n: all of them, or `limit` evenly spaced ones."""
    return even_rows(n, limit)


# -- evaluation (runs on the training thread) ------------------------------------------------
def probabilities(program, out: np.ndarray) -> np.ndarray:
    """Class probabilities (N, C ≥ 2) from the network's first output."""
    out = np.asarray(out, dtype=np.float64).reshape(len(out), -1)
    loss_ops = [(program.op_ids[i], program.params[program.order[i]])
                for i in program.loss_nodes]
    logits = any(op == "CrossEntropyLoss" or (op == "BCELoss" and params.get("from_logits"))
                 for op, params in loss_ops)
    if out.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-out[:, 0])) if logits else np.clip(out[:, 0], 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)
    if logits or (out.min() < 0 or out.max() > 1
                  or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3)):
        z = out - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return out


def grid_size(program) -> int:
    """Cells per side of the decision-region grid: GRID, fewer for a network so big that
    GRID × GRID predictions would cost more than EVAL_MACS multiply-adds."""
    side = int(math.sqrt(EVAL_MACS / max(program.num_parameters, 1)))
    return max(MIN_GRID, min(GRID, side))


def scored_limit(program) -> int:
    """Rows predicted for the confusion matrix: MAX_SCORED, fewer for a huge network."""
    return max(MIN_SCORED, min(MAX_SCORED, EVAL_MACS // max(program.num_parameters, 1)))


def predict_batched(program, x: np.ndarray) -> np.ndarray:
    """The first output for every row of `x`, fed in chunks whose values stay within
    EVAL_BYTES (4,096 rows of a 100,000-unit layer would need gigabytes)."""
    chunk = min(CHUNK, program.rows_within(EVAL_BYTES))
    outs = [np.array(program.predict(x[i:i + chunk]), dtype=np.float64, copy=True)
            for i in range(0, len(x), chunk)]
    return np.concatenate(outs) if outs else np.zeros((0, 1))


def confusion_matrix(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (true.astype(np.int64), pred.astype(np.int64)), 1)
    return m


def evaluate(program, trainer, use_validation: bool = True, aspect: float = 1.0) -> Prediction:
    """Everything the view shows, computed with `program` (a copy holding live weights).

    `aspect` (plot width / height in pixels) widens the decision-region grid so that it
    fills the plot with square data units.
    """
    train, val = trainer.train_set, trainer.val_set
    task = train.task
    x, y = np.asarray(train.x), np.asarray(train.y)
    names = list(train.class_names) or [str(i) for i in range(max(train.num_classes, 2))]
    res = Prediction("none", task, trainer.step_count, names)
    res.has_validation = val is not None
    res.parameters = program.num_parameters
    flat_features = x.ndim == 2
    if task == "classification" and y.shape[1] > 1 and flat_features and x.shape == y.shape:
        return res  # next-character text: Learn → Generate Text and Attention show it
    pp = train.preprocessing
    if pp.get("standardize") and "mean" in pp:
        res.feature_mean = np.asarray(pp["mean"], dtype=np.float64)
        res.feature_std = np.asarray(pp["std"], dtype=np.float64)
    if task == "classification":
        k = max(train.num_classes, 2)
        if flat_features and x.shape[1] == 2:
            res.kind = "regions"
            pick = subsample(len(x))
            res.train_x, res.train_y = x[pick], y[pick, 0]
            if val is not None:
                vpick = subsample(len(val))
                res.val_x, res.val_y = np.asarray(val.x)[vpick], np.asarray(val.y)[vpick, 0]
            pts = x if val is None else np.concatenate([x, val.x])
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            pad = 0.08 * np.maximum(hi - lo, 1e-6)
            lo, hi = lo - pad, hi + pad
            span = hi - lo
            if aspect > 0 and math.isfinite(aspect):  # fill the plot, keep units square
                if span[0] / span[1] < aspect:
                    extra = (span[1] * aspect - span[0]) / 2
                    lo[0], hi[0] = lo[0] - extra, hi[0] + extra
                else:
                    extra = (span[0] / aspect - span[1]) / 2
                    lo[1], hi[1] = lo[1] - extra, hi[1] + extra
            pad = np.zeros(2)
            side = res.grid_size = grid_size(program)
            res.grid_x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], side)
            res.grid_y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], side)
            gx, gy = np.meshgrid(res.grid_x, res.grid_y)
            grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
            res.probs = probabilities(program, predict_batched(program, grid)).reshape(
                side, side, -1)
        elif x.ndim == 4:
            res.kind = "images"
        src = val if (use_validation and val is not None) else train
        res.confusion_set = "validation" if src is val else "training"
        res.scored_total = len(src)
        scored = subsample(len(src), scored_limit(program))  # a million rows: seconds
        sx, sy = np.asarray(src.x)[scored], np.asarray(src.y)[scored, 0].astype(np.int64)
        probs = probabilities(program, predict_batched(program, sx))
        guess = probs.argmax(axis=1)
        k = max(k, probs.shape[1])
        res.confusion = confusion_matrix(sy, guess, k)
        res.accuracy = float(np.mean(guess == sy)) if len(sy) else None
        if res.kind == "images":
            # The mistakes first (they teach the most), then correct ones.
            wrong = np.flatnonzero(guess != sy)[:SAMPLES // 2]
            right = np.flatnonzero(guess == sy)[:SAMPLES - len(wrong)]
            pick = np.concatenate([wrong, right]).astype(np.int64)
            imgs = sx[pick]
            res.images = imgs[:, 0] if imgs.shape[1] == 1 else imgs.mean(axis=1)
            res.image_true, res.image_pred = sy[pick], guess[pick]
    elif flat_features and x.shape[1] == 1 and y.shape[1] == 1:
        res.kind = "curve"
        pick = subsample(len(x))
        res.train_x, res.train_y = x[pick, 0], y[pick, 0]
        if val is not None:
            vpick = subsample(len(val))
            res.val_x, res.val_y = np.asarray(val.x)[vpick, 0], np.asarray(val.y)[vpick, 0]
        pts = x[:, 0] if val is None else np.concatenate([x[:, 0], np.asarray(val.x)[:, 0]])
        lo, hi = float(pts.min()), float(pts.max())
        pad = 0.05 * max(hi - lo, 1e-6)
        res.curve_x = np.linspace(lo - pad, hi + pad, CURVE_POINTS)
        res.curve_y = predict_batched(program, res.curve_x[:, None]).reshape(
            CURVE_POINTS, -1)[:, 0]
    elif y.shape[1] >= 1:
        res.kind = "scatter"  # predicted vs true for the first target
        src = val if (use_validation and val is not None) else train
        res.confusion_set = "validation" if src is val else "training"
        pick = subsample(len(src))
        sx = np.asarray(src.x)[pick]
        res.train_y = np.asarray(src.y)[pick, 0]
        res.pred_y = predict_batched(program, sx).reshape(len(sx), -1)[:, 0]
    if res.kind in ("regions", "curve"):
        res.points_shown = len(res.train_x) + (len(res.val_x) if res.val_x is not None else 0)
        res.points_total = len(train) + (len(val) if val is not None else 0)
    elif res.kind == "scatter":
        res.points_shown, res.points_total = len(res.train_y), len(src)
    return res


class _Evaluator:
    """A private compiled copy of the live program (rebuilt when the program changes)."""

    def __init__(self) -> None:
        self._src = None
        self._clone = None

    def copy_of(self, program):
        from engine.core.compiler import compile_graph

        if self._src is None or self._src() is not program:
            self._clone = compile_graph(program.spec, dtype=program.dtype, seed=program.seed)
            self._src = weakref.ref(program)
        clone = self._clone
        np.copyto(clone.theta, program.theta)
        for key, buf in program.buffers.items():
            clone.buffers[key][...] = buf
        return clone


# -- the widgets -------------------------------------------------------------------------------
class ConfusionWidget(QWidget):
    """Rows: true class; columns: predicted class; colour: fraction of the true class."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.matrix: np.ndarray | None = None
        self.names: list[str] = []
        self.setMinimumSize(140, 140)

    def name_font(self) -> QFont:
        """The font of the class names and axis titles (large in presentation mode)."""
        return theme.ui_font(8)

    def set_matrix(self, matrix: np.ndarray | None, names: list[str]) -> None:
        self.matrix, self.names = matrix, names
        self.update()

    def paintEvent(self, event) -> None:
        m = self.matrix
        if m is None or not m.size:
            return
        pal = theme.current()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        k = m.shape[0]
        names = [self.names[i] if i < len(self.names) else str(i) for i in range(k)]
        name_font = self.name_font()
        fm = QFontMetricsF(name_font)
        line = fm.height()
        # Row names get the room they need (up to a third of the width), so "outer" and
        # "inner" are never cut to "oute" and "inne".
        name_w = min(max(fm.horizontalAdvance(n) for n in names) + 6, self.width() / 3)
        margin_l, margin_t = line + 6 + name_w, 2 * line + 2
        side = min(self.width() - margin_l - 6, self.height() - margin_t - 6)
        cell = side / k
        x0 = margin_l + max(0.0, (self.width() - margin_l - 6 - side) / 2)
        y0 = float(margin_t)
        p.setFont(name_font)
        p.setPen(QColor(pal.muted_text))
        p.drawText(QRectF(x0, 0, side, line), Qt.AlignmentFlag.AlignCenter, "predicted →")
        p.save()
        p.translate(x0 - name_w - 2 - line / 2 - 2, y0 + side / 2)
        p.rotate(-90)
        p.drawText(QRectF(-side / 2, -line / 2, side, line), Qt.AlignmentFlag.AlignCenter,
                   "true →")
        p.restore()
        p.setPen(QColor(pal.text))
        for i, label in enumerate(names):
            p.drawText(QRectF(x0 + i * cell, line + 1, cell, line), Qt.AlignmentFlag.AlignCenter,
                       fm.elidedText(label, Qt.TextElideMode.ElideRight, cell))
            p.drawText(QRectF(x0 - name_w - 2, y0 + i * cell, name_w, cell),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                       fm.elidedText(label, Qt.TextElideMode.ElideRight, name_w))
        rows = m.sum(axis=1, keepdims=True).astype(np.float64)
        frac = np.divide(m, rows, out=np.zeros_like(rows * m, dtype=np.float64), where=rows > 0)
        base = QColor(pal.shape_text)
        s = theme.text_scale()
        font_pt = max(6.0, min(9.0 * s, cell * 0.32)) / s  # mono_font scales it back up
        p.setFont(theme.mono_font(font_pt))
        for i in range(k):
            for j in range(k):
                f = float(frac[i, j])
                c = QColor(base)
                c.setAlphaF(0.08 + 0.85 * f if m[i, j] else 0.03)
                r = QRectF(x0 + j * cell, y0 + i * cell, cell, cell)
                p.fillRect(r, c)
                if i != j and m[i, j]:
                    p.setPen(QPen(QColor(pal.error), 1.2))
                    p.drawRect(r.adjusted(1, 1, -1, -1))
                p.setPen(QColor("#ffffff") if f > 0.55 else QColor(pal.text))
                if cell >= 14 * s:
                    p.drawText(r, Qt.AlignmentFlag.AlignCenter, str(int(m[i, j])))
        p.setPen(QPen(QColor(pal.node_border), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(x0, y0, side, side))
        p.end()


MIN_SAMPLE_PX = 24  # smaller digit images are not worth showing


class SampleGrid(QWidget):
    """Sample images with "predicted (true)" captions; wrong predictions in red."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.images: np.ndarray | None = None
        self.true: np.ndarray | None = None
        self.pred: np.ndarray | None = None
        self.names: list[str] = []
        self.setMinimumSize(160, 140)

    def set_samples(self, images, true, pred, names) -> None:
        self.images, self.true, self.pred, self.names = images, true, pred, names
        self.update()

    def paintEvent(self, event) -> None:
        if self.images is None or not len(self.images):
            return
        pal = theme.current()
        p = QPainter(self)
        n = len(self.images)
        font = theme.mono_font(8)
        caption = QFontMetricsF(font).height() + 2
        cols, n = self._layout(n, font, caption)
        rows = math.ceil(n / cols)
        cw, ch = self.width() / cols, self.height() / rows
        side = max(4.0, min(cw - 6, ch - caption - 4))
        p.setFont(font)
        for i in range(n):
            r, c = divmod(i, cols)
            img = np.asarray(self.images[i], dtype=np.float64)
            lo, hi = float(img.min()), float(img.max())
            g = ((img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)) * 255
            data = np.ascontiguousarray(255 - g.astype(np.uint8))
            h, w = data.shape
            qimg = QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8)
            x = c * cw + (cw - side) / 2
            y = r * ch + 2
            p.drawImage(QRectF(x, y, side, side), qimg)
            ok = self.pred[i] == self.true[i]
            p.setPen(QColor(pal.ok if ok else pal.error))
            p.drawText(QRectF(c * cw, y + side, cw, caption), Qt.AlignmentFlag.AlignCenter,
                       self._caption(i))
        p.end()

    def _caption(self, i: int) -> str:
        ok = self.pred[i] == self.true[i]
        name = self._name(self.pred[i])
        return ("✓ " if ok else "✗ ") + (name if ok else f"{name} ({self._name(self.true[i])})")

    def _layout(self, n: int, font: QFont, caption: float) -> tuple[int, int]:
        """(columns, samples shown): the largest images whose captions fit their column;
        in a small panel, fewer samples rather than cut captions or unreadable images."""
        fm = QFontMetricsF(font)
        widest = max(fm.horizontalAdvance(self._caption(i)) for i in range(n)) + 4

        def side(cols: int) -> float:
            rows = math.ceil(n / cols)
            return min(self.width() / cols - 6, self.height() / rows - caption - 4)

        fitting = [c for c in range(1, n + 1) if self.width() / c >= widest] or [1]
        best = max(fitting, key=side)
        if side(best) >= MIN_SAMPLE_PX:
            return best, n
        cols = max(fitting)
        rows = max(1, int(self.height() // (MIN_SAMPLE_PX + caption + 6)))
        return cols, min(n, cols * rows)

    def _name(self, k) -> str:
        k = int(k)
        return self.names[k] if k < len(self.names) else str(k)


class PredictionView(QWidget):
    """The dock's widget. `last` is the last Prediction shown (for tests)."""

    def __init__(self, window, parent: QWidget | None = None):
        super().__init__(parent)
        self.window = window
        self.session = window.training.session
        self.last: Prediction | None = None
        self.updates = 0
        pal = theme.current()

        self.title = QLabel()
        self.title.setWordWrap(True)
        self.source = QComboBox()
        self.source.addItem("validation set", True)
        self.source.addItem("training set", False)
        self.source.setToolTip("Which examples the confusion matrix and samples use")
        self.source.currentIndexChanged.connect(self._on_source_chosen)
        self._forced_training_set = False  # switched because there was no validation set
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.source)

        self.plot = pg.PlotWidget(viewBox=DrawingViewBox())
        self.drawer = PointDrawer(self, window.controller)  # draw your data on the plane
        self.plot.getPlotItem().getViewBox().drawer = self.drawer
        head.addWidget(self.drawer.combo)
        self.plot.setBackground(pal.background)
        self.plot.setMinimumSize(180, 180)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.hideButtons()
        for name in ("left", "bottom", "top", "right"):
            # Re-rendering an SI-prefixed axis label (hidden axes too) on each range change
            # cost ~20 ms.
            self.plot.getAxis(name).enableAutoSIPrefix(False)
        self.region = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.region)
        self.train_points = pg.ScatterPlotItem(size=6)
        self.val_points = pg.ScatterPlotItem(size=7)
        self.curve = pg.PlotDataItem(pen=pg.mkPen("#d62728", width=2.5))
        for item in (self.train_points, self.val_points, self.curve):
            self.plot.addItem(item)
            pass_clicks_on(item)  # to the plane, where they draw points
        self.samples = SampleGrid()
        self.confusion = ConfusionWidget()
        self.cm_label = QLabel()
        self.cm_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cm_label.setWordWrap(True)  # a long title must not widen the dock
        cm_box = QVBoxLayout()
        cm_box.setContentsMargins(0, 0, 0, 0)
        cm_box.addWidget(self.cm_label)
        cm_box.addWidget(self.confusion, 1)
        self.cm_panel = QWidget()
        self.cm_panel.setLayout(cm_box)

        self.body = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self.body.addWidget(self.plot, 3)
        self.body.addWidget(self.samples, 2)
        self.body.addWidget(self.cm_panel, 2)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(head)
        layout.addWidget(self.empty)
        layout.addLayout(self.body, 1)
        self._show_kind(None)

        self.fetch = ThrottledFetch(self.session, UPDATE_INTERVAL_MS, self._job, self._on_result,
                                    self._on_error, self.isVisible, self, with_worker=True)
        self.session.report.connect(lambda _r: self.request())
        self.session.weights_reset.connect(lambda: self.request(now=True))
        self.session.state_changed.connect(self._on_state)

    def _on_source_chosen(self, _index: int) -> None:
        self._forced_training_set = False  # the user's own choice from now on
        self.request(now=True)

    def set_dock(self, dock) -> None:
        dock.visibilityChanged.connect(lambda visible: visible and self.request(now=True))

    def _on_state(self, state: str) -> None:
        if state in (states.READY, states.PAUSED):
            self.request(now=True)
        elif state in (states.EMPTY, states.INVALID, states.FAILED):
            self.last = None
            self._show_kind(None)

    def resizeEvent(self, event) -> None:
        # Side by side unless the panel is clearly tall: the default right column is about
        # as wide as it is tall, and stacking there would make the window taller than 800.
        wide = self.width() > 1.15 * self.height()
        self.body.setDirection(QBoxLayout.Direction.LeftToRight if wide
                               else QBoxLayout.Direction.TopToBottom)
        super().resizeEvent(event)

    # -- fetching --------------------------------------------------------------------------
    def request(self, now: bool = False) -> None:
        """Predict again soon (at most every UPDATE_INTERVAL_MS or so, see `_on_result`)."""
        self.fetch.request(now)

    def _job(self):
        use_val = bool(self.source.currentData())
        vb = self.plot.getPlotItem().getViewBox()
        size = vb.size() if vb is not None else None
        aspect = size.width() / size.height() if size and size.height() > 20 else 1.0

        def job(program, trainer, worker):
            if program is None or trainer is None:
                return None, 0.0
            t0 = time.perf_counter()
            # The private copy lives in the training process, kept between fetches.
            evaluator = worker.stash.setdefault("predictions", _Evaluator())
            res = evaluate(evaluator.copy_of(program), trainer, use_val, aspect)
            res.step = worker.step_count  # the run's step, as the training dock counts it
            return res, time.perf_counter() - t0

        return job

    def _on_error(self, message: str) -> None:
        self.empty.setText(f"Cannot show predictions: {message}")

    def _on_result(self, answer: tuple[Prediction | None, float]) -> None:
        # Drawn in a turn of its own, not on top of a loss-plot or overlay redraw.
        self.session.run.pacer.request("predictions", lambda: self._show_result(answer))

    def _show_result(self, answer: tuple[Prediction | None, float]) -> None:
        res, job_seconds = answer
        if self.session.state in (states.EMPTY, states.INVALID, states.FAILED):
            res = None  # asked before the graph was replaced: the worker's program is stale
        self.updates += 1
        self.last = res
        t0 = time.perf_counter()
        self.show_prediction(res)
        # The grid is evaluated on the training thread and painted holding the GIL: space
        # updates so that together they take at most 1/COST_FACTOR of the training time.
        cost = job_seconds + time.perf_counter() - t0
        self.fetch.set_interval(max(UPDATE_INTERVAL_MS, int(COST_FACTOR * cost * 1000)))

    # -- drawing ---------------------------------------------------------------------------
    def _show_kind(self, kind: str | None) -> None:
        wanted = {self.plot: kind in ("regions", "curve", "scatter"),
                  self.samples: kind == "images",
                  self.cm_panel: self.last is not None and self.last.confusion is not None,
                  self.empty: kind in (None, "none")}
        # Hide before showing: for a moment the plot, the samples and the matrix side by
        # side would need more width, and the dock would grow (and stay wide) to give it.
        for widget, visible in sorted(wanted.items(), key=lambda item: item[1]):
            widget.setVisible(visible)
        if kind is None:
            self.drawer.on_prediction(None)
            pal = theme.current()
            self.title.setText("")
            self.empty.setText(f"<span style='color:{pal.muted_text}'>Predictions appear "
                               "here once the graph compiles.</span>")

    def show_prediction(self, res: Prediction | None) -> None:
        if res is None:
            self._show_kind(None)
            return
        self._show_kind(res.kind)
        self.drawer.on_prediction(res)
        has_val = res.has_validation
        self.source.setVisible(res.confusion is not None or res.kind == "scatter")
        if not has_val and self.source.currentIndex() == 0:
            self.source.blockSignals(True)
            self.source.setCurrentIndex(1)  # there is no validation set: say so
            self.source.blockSignals(False)
            self._forced_training_set = True
        elif has_val and self._forced_training_set:
            self._forced_training_set = False  # a graph with a validation set again: use it
            self.source.setCurrentIndex(0)  # asks for the validation set's prediction
        self.source.setEnabled(has_val)
        n = int(res.confusion.sum()) if res.confusion is not None else 0
        part = (f"{n:,} of {res.scored_total:,} rows, evenly spaced"
                if n < res.scored_total else f"{n:,}")
        acc = f" · acc. {res.accuracy:.1%}" if res.accuracy is not None else ""
        if acc and n < res.scored_total:
            acc += f" (on {n:,} of {res.scored_total:,} rows)"
        titles = {"regions": "Decision regions", "curve": "Fitted curve",
                  "images": "Samples: predicted (true)", "scatter": "Predicted vs true",
                  "none": ""}
        sampled = (f" · {res.points_shown:,} of {res.points_total:,} points shown"
                   if res.points_shown < res.points_total and res.kind != "images" else "")
        if res.kind == "regions" and res.grid_size < GRID:
            sampled += f" · {res.grid_size}×{res.grid_size} grid (large network)"
        self.title.setToolTip(
            f"The network has {res.parameters:,} parameters: the regions are computed on a "
            f"{res.grid_size}×{res.grid_size} grid instead of {GRID}×{GRID} so that an update "
            "does not hold up training." if res.kind == "regions" and res.grid_size < GRID
            else "")
        self.title.setText(f"<b>{titles[res.kind]}</b> · step {res.step}{acc}{sampled}")
        if res.kind == "none":
            self.empty.setText("No picture for this data shape; see the confusion matrix."
                               if res.confusion is not None else
                               "Text data: see Learn → Generate Text and Learn → Attention."
                               if res.kind == "none" and res.task == "classification" else
                               "No prediction view for this data shape.")
        if res.kind == "regions":
            self._draw_regions(res)
        elif res.kind == "curve":
            self._draw_curve(res)
        elif res.kind == "scatter":
            self._draw_scatter(res)
        elif res.kind == "images":
            self.samples.set_samples(res.images, res.image_true, res.image_pred,
                                     res.class_names)
        if res.confusion is not None:
            self.cm_label.setText(f"Confusion matrix · {res.confusion_set} set ({part})")
            self.confusion.set_matrix(res.confusion, res.class_names)

    def region_rgb(self, probs: np.ndarray) -> np.ndarray:
        """Pastel class colours weighted by probability (uint8 RGB)."""
        k = probs.shape[-1]
        cols = np.array([class_color(i).getRgb()[:3] for i in range(k)], dtype=np.float64)
        rgb = probs @ cols
        rgb = 255.0 - (255.0 - rgb) * 0.55
        return np.clip(rgb, 0, 255).astype(np.uint8)

    def _draw_regions(self, res: Prediction) -> None:
        gx, gy = res.grid_x, res.grid_y
        dx, dy = gx[1] - gx[0], gy[1] - gy[0]
        self.region.setImage(self.region_rgb(res.probs), autoLevels=False, levels=(0, 255))
        self.region.setRect(QRectF(gx[0] - dx / 2, gy[0] - dy / 2, dx * len(gx), dy * len(gy)))
        self.region.setVisible(True)
        self.curve.setData([], [])
        # The data points rarely change between updates: re-setting hundreds of per-point
        # brushes costs ~80 ms of GUI thread (holding the GIL the training thread needs).
        points = (res.train_x, res.train_y, res.val_x, res.val_y)
        if not _same_arrays(points, getattr(self, "_drawn_points", None)):
            self._drawn_points = points
            self._draw_region_points(res)
        self.plot.setAspectLocked(True)
        self.plot.setRange(xRange=(gx[0], gx[-1]), yRange=(gy[0], gy[-1]), padding=0)

    def _draw_region_points(self, res: Prediction) -> None:
        # One brush (pen) object per class, reused: pyqtgraph renders a symbol per distinct
        # brush object, so a fresh brush per point drew hundreds of symbols (~100 ms).
        brushes, pens = self._class_styles()
        self.train_points.setData(
            res.train_x[:, 0], res.train_x[:, 1], size=6, pen=pens["edge"],
            brush=[brushes[int(c)] for c in res.train_y])
        if res.val_x is not None:
            self.val_points.setData(
                res.val_x[:, 0], res.val_x[:, 1], size=7, brush=brushes["white"],
                pen=[pens[int(c)] for c in res.val_y])
        else:
            self.val_points.setData([], [])

    def _class_styles(self) -> tuple[dict, dict]:
        """Brushes and pens of the data points, made once (see `_draw_region_points`)."""
        if not hasattr(self, "_styles"):
            brushes = _ClassStyles(lambda c: pg.mkBrush(class_color(c)))
            brushes["white"] = pg.mkBrush("#ffffff")
            pens = _ClassStyles(lambda c: pg.mkPen(class_color(c), width=2))
            pens["edge"] = pg.mkPen("#202020", width=0.6)
            self._styles = brushes, pens
        return self._styles

    def _draw_curve(self, res: Prediction) -> None:
        self._drawn_points = None
        self.region.setVisible(False)
        self.plot.setAspectLocked(False)
        self.train_points.setData(res.train_x, res.train_y, size=5,
                                  brush=pg.mkBrush(120, 130, 145, 150), pen=None)
        if res.val_x is not None:
            self.val_points.setData(res.val_x, res.val_y, size=6, brush=pg.mkBrush("#ffffff"),
                                    pen=pg.mkPen("#2ca02c", width=1.5))
        else:
            self.val_points.setData([], [])
        self.curve.setData(res.curve_x, res.curve_y)
        self.plot.enableAutoRange()

    def _draw_scatter(self, res: Prediction) -> None:
        self._drawn_points = None
        self.region.setVisible(False)
        self.plot.setAspectLocked(False)
        self.train_points.setData(res.train_y, res.pred_y, size=5,
                                  brush=pg.mkBrush(31, 119, 180, 160), pen=None)
        self.val_points.setData([], [])
        lo = float(min(res.train_y.min(), res.pred_y.min()))
        hi = float(max(res.train_y.max(), res.pred_y.max()))
        self.curve.setData([lo, hi], [lo, hi])
        self.plot.enableAutoRange()


class _ClassStyles(dict):
    """Class index -> brush or pen, made on first use by `make(index)`."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value


def _same_arrays(a: tuple | None, b: tuple | None) -> bool:
    """Whether two tuples of arrays (or Nones) hold the same numbers."""
    if a is None or b is None or len(a) != len(b):
        return False
    return all((x is None and y is None) or (x is not None and y is not None
               and x.shape == y.shape and np.array_equal(x, y)) for x, y in zip(a, b))
