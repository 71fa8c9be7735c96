"""Learn → Loss Landscape: the loss surface around the current weights, with the live path.

The weights are copied from the training thread (`session.run_on_worker`), the grid is
evaluated row by row on a `BackgroundJob` (never the GUI or training thread) and every row
is drawn as it arrives. While training runs, the current weights are fetched a few times a
second and projected on the plane, so the optimizer's path is drawn on the surface.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
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
from engine.core.compiler import compile_graph
from engine.errors import GradscapeError
from engine.lab.landscape import LandscapeScan, descent_step, project

PATH_FETCH_MS = 50  # the live path asks for the weights at most 20 times a second
MAX_PARAM_CHOICES = 64  # numbers offered per tensor in the parameter lists
PATH_COLORS = ["#ff5a36", "#ffffff", "#00e0ff", "#ffd23f", "#ff66cc", "#7dff7a", "#c9a0ff"]

EXPLAIN = (
    "<b>What am I looking at?</b> Each pixel is the loss the network would have if its "
    "weights were moved to that point of a flat slice through weight space. The centre (★) "
    "is the current weights; dark valleys are low loss. Gradient descent walks downhill on "
    "the full, many-dimensional surface, so its path (the line, drawn live while training "
    "runs) may cut across the contours of this 2-D slice. With <i>two parameters</i> the "
    "axes are the real values of those two numbers and every other weight stays fixed; "
    "with <i>random directions</i> every filter is moved in proportion to its own size "
    "(filter-normalised, Li et al. 2018), so ±1 means \"by about its own size\".")


def color_ticks(lo: float, hi: float, log: bool) -> list[list[tuple[float, str]]]:
    """Colour-bar ticks labelled with losses; positions in log10 units when `log`."""
    if not log:
        vals = _nice(lo, hi)
        return [[(v, f"{v:.3g}") for v in vals]]
    if hi - lo >= 1.5:  # several decades: 1, 2, 5 × 10^k (only powers of ten if very wide)
        mults = (1,) if hi - lo > 5 else (1, 2, 5)
        vals = [m * 10.0 ** k for k in range(math.floor(lo) - 1, math.ceil(hi) + 1)
                for m in mults]
    else:
        vals = _nice(10.0 ** lo, 10.0 ** hi)
    major = [(math.log10(v), f"{v:.3g}") for v in vals
             if v > 0 and lo - 1e-9 <= math.log10(v) <= hi + 1e-9]
    return [major]


def _nice(lo: float, hi: float, count: int = 6) -> list[float]:
    """About `count` round numbers between lo and hi."""
    span = hi - lo
    if not span > 0:
        return [lo]
    raw = span / count
    step = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= raw:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


@dataclass
class LiveCopy:
    """What a background job needs, copied from the training thread."""

    spec: object
    state: dict
    dtype: str
    seed: int
    x: np.ndarray
    y: np.ndarray
    theta: np.ndarray


def grab_live(program, trainer) -> LiveCopy:
    """Run on the training thread: copies of the graph, weights and training data."""
    if program is None or trainer is None:
        raise GradscapeError("The graph cannot be trained yet, so there is no loss to map.")
    if not program.loss_nodes:
        raise GradscapeError("The graph has no loss node, so there is no landscape.")
    return LiveCopy(program.spec, program.state_dict(), str(np.dtype(program.dtype)),
                    program.seed, trainer.x.copy(), trainer.y.copy(), program.theta.copy())


def live_theta(program, trainer):
    """Run on the training thread: (θ copy, steps taken, learning rate), or None."""
    if program is None or trainer is None:
        return None
    return program.theta.copy(), int(trainer.step_count), float(trainer.optimizer.lr)


def arrow_body(live: LiveCopy, theta: np.ndarray, lr: float, _job=None) -> np.ndarray:
    """Job body: where one plain gradient step −α∇L (whole training set) leads from θ."""
    return descent_step(rebuild_program(live), live.x, live.y, theta, lr)


def param_choices(program, trainer) -> list[tuple[str, int, str]]:
    """Run on the training thread: (key, index, label) of the numbers one can pick."""
    if program is None:
        return []
    out = []
    for e in program.entries:
        for i in range(min(e.size, MAX_PARAM_CHOICES)):
            name = e.node if e.size == 1 and e.name == "value" else e.key
            label = name if e.size == 1 else f"{e.key}[{i}]"
            out.append((e.key, i, label))
    return out


def rebuild_program(live: LiveCopy):
    """A private program holding the copied weights (on the job's thread)."""
    program = compile_graph(live.spec, dtype=live.dtype, seed=live.seed, require_loss=False)
    program.load_state_dict(live.state)
    return program


@dataclass
class Plane:
    """The parts of a Landscape the GUI needs (sent once, before the rows)."""

    alphas: np.ndarray
    betas: np.ndarray
    center: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    center_loss: float
    labels: tuple[str, str]
    origin: tuple[float, float] = (0.0, 0.0)  # plot coordinates of α = β = 0

    @classmethod
    def of(cls, ls, origin=(0.0, 0.0)) -> Plane:
        return cls(ls.alphas.copy(), ls.betas.copy(), ls.center.copy(), ls.d1.copy(),
                   ls.d2.copy(), float(ls.center_loss), ls.labels, origin)

    def project(self, thetas) -> tuple[np.ndarray, np.ndarray]:
        a, b = project(thetas, self.center, self.d1, self.d2)
        return a + self.origin[0], b + self.origin[1]


def scan_rows(job: BackgroundJob, program, x, y, directions, span: float, resolution: int,
              seed: int = 0, center=None, parameter_axes: bool = False,
              labels: tuple[str, str] | None = None):
    """Job body: emit ("plane", Plane) then ("row", i, losses) per row; return the losses."""
    scan = LandscapeScan(program, x, y, directions, center=center, span=span,
                         resolution=resolution, seed=seed)
    ls = scan.landscape
    origin = (0.0, 0.0)
    if parameter_axes:  # unit vectors: the axes show the parameters' real values
        origin = (float(ls.center @ ls.d1), float(ls.center @ ls.d2))
    plane = Plane.of(ls, origin)
    if labels is not None:
        plane.labels = labels
    elif not parameter_axes:
        plane.labels = ("α  (random direction 1, filter-normalised)",
                        "β  (random direction 2, filter-normalised)")
    job.emit(("plane", plane))
    for i in scan.rows():
        job.emit(("row", i, ls.losses[i].copy()))
        if job.cancelled:
            break
    return ls.losses.copy()


class LandscapePlot(QWidget):
    """A heatmap with contours and a colour bar, a ★ at the centre and paths on top."""

    def __init__(self, parent: QWidget | None = None,
                 center_label: str = "current weights when mapped (centre)"):
        super().__init__(parent)
        self.plane: Plane | None = None
        self.losses: np.ndarray | None = None
        self.log_colors = True
        self._rect = QRectF(0, 0, 1, 1)
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.setBackground(theme.color("background"))
        self.plot = self.widget.addPlot(row=0, col=0)
        self.plot.setAspectLocked(False)
        self.plot.showGrid(x=False, y=False)
        for side in ("left", "bottom"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.cmap = pg.colormap.get("viridis")
        self.bar = pg.ColorBarItem(colorMap=self.cmap, interactive=False, width=18)
        self.bar.setImageItem(self.image)
        self.bar.axis.enableAutoSIPrefix(False)
        self.widget.addItem(self.bar, row=0, col=1)
        self.contours: list[pg.IsocurveItem] = []
        self.legend = self.plot.addLegend(offset=(-6, 6), labelTextSize="9pt",
                                          brush=pg.mkBrush(255, 255, 255, 200),
                                          labelTextColor="#1f2328")
        self.center_marker = pg.ScatterPlotItem(symbol="star", size=18,
                                                brush=pg.mkBrush("#ffffff"),
                                                pen=pg.mkPen("#000000", width=1.2))
        self.plot.addItem(self.center_marker)
        self.center_marker.setZValue(20)
        self.legend.addItem(self.center_marker, center_label)
        self.paths: dict[str, tuple[pg.PlotDataItem, pg.ScatterPlotItem]] = {}
        self.hover = QLabel(" ")
        self.hover.setFont(theme.mono_font(8.5))
        self.plot.scene().sigMouseMoved.connect(self._on_mouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.widget, 1)
        layout.addWidget(self.hover)

    # -- the surface ---------------------------------------------------------------------
    def set_plane(self, plane: Plane) -> None:
        """A new grid (all rows unknown); paths are kept but re-projected by the owner."""
        self.plane = plane
        self.losses = np.full((len(plane.betas), len(plane.alphas)), np.nan)
        a, b = plane.alphas + plane.origin[0], plane.betas + plane.origin[1]
        da = (a[-1] - a[0]) / max(1, len(a) - 1)
        db = (b[-1] - b[0]) / max(1, len(b) - 1)
        self._rect = QRectF(a[0] - da / 2, b[0] - db / 2, a[-1] - a[0] + da,
                            b[-1] - b[0] + db)
        self.plot.setLabel("bottom", plane.labels[0])
        self.plot.setLabel("left", plane.labels[1])
        self.center_marker.setData([plane.origin[0]], [plane.origin[1]])
        self.plot.setRange(xRange=(a[0] - da / 2, a[-1] + da / 2),
                           yRange=(b[0] - db / 2, b[-1] + db / 2), padding=0)
        self._clear_contours()
        self.redraw()

    def set_row(self, i: int, row: np.ndarray) -> None:
        if self.losses is not None:
            self.losses[i] = row

    def set_losses(self, losses: np.ndarray) -> None:
        self.losses = np.array(losses, dtype=np.float64)
        self.redraw()

    def set_log_colors(self, on: bool) -> None:
        self.log_colors = on
        self.redraw()

    def _display(self) -> tuple[np.ndarray, float, float] | None:
        """The image to show (log10 when asked) and its colour range; NaN stays unknown."""
        if self.losses is None:
            return None
        z = np.array(self.losses, dtype=np.float64)
        finite = np.isfinite(z)
        if not finite.any():
            return None
        hi = float(np.max(z[finite]))
        z[np.isinf(z)] = hi  # overflowed losses: the top colour
        if self.log_colors:
            floor = max(float(np.min(z[finite])), hi * 1e-12, 1e-300)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.log10(np.maximum(z, floor))
        vals = z[np.isfinite(z)]
        lo, hi = float(vals.min()), float(vals.max())
        if hi <= lo:
            hi = lo + 1e-9
        return z, lo, hi

    def redraw(self) -> None:
        shown = self._display()
        if shown is None:
            self.image.clear()
            return
        z, lo, hi = shown
        self.image.setImage(z, autoLevels=False, levels=(lo, hi))
        self.image.setRect(self._rect)  # after setImage: the scale needs the pixel count
        self.bar.setLevels((lo, hi))
        self.bar.axis.setTicks(color_ticks(lo, hi, self.log_colors))
        self.bar.axis.setLabel("loss (log scale)" if self.log_colors else "loss")
        if self.plane is not None and np.isfinite(self.losses).all():
            self._draw_contours(z, lo, hi)

    def _clear_contours(self) -> None:
        for c in self.contours:
            if c.scene() is not None:
                c.scene().removeItem(c)
        self.contours = []

    def _draw_contours(self, z: np.ndarray, lo: float, hi: float) -> None:
        self._clear_contours()
        pen = pg.mkPen(QColor(255, 255, 255, 110), width=1)
        for level in np.linspace(lo, hi, 12)[1:-1]:
            iso = pg.IsocurveItem(data=z, level=float(level), pen=pen, axisOrder="row-major")
            iso.setParentItem(self.image)  # image pixel units: value k sits at k + ½
            iso.setPos(0.5, 0.5)
            iso.setZValue(5)
            self.contours.append(iso)

    # -- paths ---------------------------------------------------------------------------
    def set_path(self, name: str, xs, ys, color: str, legend: bool = True) -> None:
        """Draw (or replace) a path in plot coordinates; its last point gets a dot."""
        if name not in self.paths:
            line = pg.PlotDataItem(pen=pg.mkPen(color, width=2.2), antialias=True,
                                   shadowPen=pg.mkPen("#000000", width=4.5))
            dot = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(color),
                                     pen=pg.mkPen("#000000", width=1))
            line.setZValue(10)
            dot.setZValue(11)
            self.plot.addItem(line)
            self.plot.addItem(dot)
            if legend:
                self.legend.addItem(line, name)
            self.paths[name] = (line, dot)
        line, dot = self.paths[name]
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        line.setData(xs, ys, symbol="o", symbolSize=5, symbolBrush=line.opts["pen"].color(),
                     symbolPen=None)  # a dot per point: one per step when stepping
        dot.setData(xs[-1:], ys[-1:])

    def set_arrow(self, start: tuple[float, float] | None, end: tuple[float, float] | None,
                  label: str = "") -> None:
        """Draw an arrow from `start` to `end` (plot coordinates); None hides it."""
        if not hasattr(self, "arrow_line"):
            pen = pg.mkPen("#ff3b30", width=2.5)
            self.arrow_line = pg.PlotDataItem(pen=pen, antialias=True)
            self.arrow_head = pg.ArrowItem(headLen=14, tipAngle=35, brush="#ff3b30",
                                           pen=pg.mkPen("#000000", width=0.8))
            self.arrow_line.setZValue(12)
            self.arrow_head.setZValue(13)
            self.plot.addItem(self.arrow_line)
            self.plot.addItem(self.arrow_head)
            self.legend.addItem(self.arrow_line, label or "−α∇L")
        visible = start is not None and end is not None
        self.arrow_line.setVisible(visible)
        self.arrow_head.setVisible(visible)
        if not visible:
            return
        self.arrow_line.setData([start[0], end[0]], [start[1], end[1]])
        vb = self.plot.getViewBox()
        a, b = vb.mapViewToScene(QPointF(*start)), vb.mapViewToScene(QPointF(*end))
        # ArrowItem's angle is in screen degrees; 0 points left, so the tip faces the end
        angle = math.degrees(math.atan2(a.y() - b.y(), a.x() - b.x()))
        self.arrow_head.setStyle(angle=angle)
        self.arrow_head.setPos(*end)

    def clear_paths(self) -> None:
        for line, dot in self.paths.values():
            self.legend.removeItem(line)
            self.plot.removeItem(line)
            self.plot.removeItem(dot)
        self.paths = {}

    def contains(self, x: float, y: float) -> bool:
        """Is the plot point inside the computed grid?"""
        return self._rect.contains(QPointF(x, y))

    # -- hover ---------------------------------------------------------------------------
    def _on_mouse(self, pos) -> None:
        if self.plane is None or self.losses is None:
            return
        p = self.plot.vb.mapSceneToView(pos)
        self.hover.setText(self.value_text(p))

    def value_text(self, p: QPointF) -> str:
        plane = self.plane
        a, b = plane.alphas + plane.origin[0], plane.betas + plane.origin[1]
        j = int(np.argmin(np.abs(a - p.x())))
        i = int(np.argmin(np.abs(b - p.y())))
        if not (a[0] - 1e-9 <= p.x() <= a[-1] + 1e-9 and b[0] - 1e-9 <= p.y() <= b[-1] + 1e-9):
            return " "
        v = self.losses[i, j]
        text = "not computed" if math.isnan(v) else f"loss {v:.5g}"
        return f"{plane.labels[0]} = {a[j]:.4g}, {plane.labels[1]} = {b[i]:.4g}: {text}"

    def export_png(self, path) -> None:
        from pyqtgraph.exporters import ImageExporter

        ex = ImageExporter(self.widget.ci)
        ex.parameters()["width"] = max(800, self.widget.width())
        ex.export(str(path))


class LandscapeView(QWidget):
    """Controls, the plot and the live path for one TrainingSession."""

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.job: BackgroundJob | None = None
        self.plane: Plane | None = None
        self.path_thetas: list[np.ndarray] = []
        self.path_xy: tuple[list[float], list[float]] = ([], [])
        self._fetching = False
        self._starting = False
        self.live: LiveCopy | None = None  # the data the map was computed on
        self.arrow_job: BackgroundJob | None = None
        self._arrow_pending: tuple[np.ndarray, float] | None = None
        self.arrow: tuple[np.ndarray, np.ndarray] | None = None  # (θ, θ − α∇L) drawn

        explain = QLabel(EXPLAIN)
        explain.setWordWrap(True)
        explain.setTextFormat(Qt.TextFormat.RichText)
        explain.setStyleSheet(f"color: {theme.current().muted_text};")

        self.mode = QComboBox()
        self.mode.addItem("Two random directions (filter-normalised)", "random")
        self.mode.addItem("Two parameters", "params")
        self.param_x = QComboBox()
        self.param_y = QComboBox()
        for box in (self.param_x, self.param_y):
            box.setMinimumContentsLength(10)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.span = QDoubleSpinBox()
        self.span.setRange(0.001, 1000.0)
        self.span.setDecimals(3)
        self.span.setValue(1.0)
        self.span.setPrefix("± ")
        self.span.setToolTip("How far the grid reaches from the centre along each axis")
        self.resolution = QSpinBox()
        self.resolution.setRange(5, 201)
        self.resolution.setSingleStep(2)
        self.resolution.setValue(41)
        self.resolution.setSuffix(" × same")
        self.resolution.setToolTip("Grid points per axis (odd: one point sits exactly on the "
                                   "current weights)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 99999)
        self.seed.setToolTip("Seed of the random directions")
        self.log_box = QCheckBox("Log colours")
        self.log_box.setChecked(True)
        self.follow = QCheckBox("Draw the training path")
        self.follow.setChecked(True)
        self.follow.setToolTip("While training runs, project the weights on this plane")
        self.compute_button = QPushButton("Compute")
        self.compute_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
        self.status = QLabel("Press Compute to map the loss around the current weights.")
        self.status.setWordWrap(True)

        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Plane:"))
        row1.addWidget(self.mode)
        self.x_label, self.y_label = QLabel("x:"), QLabel("y:")
        row1.addWidget(self.x_label)
        row1.addWidget(self.param_x)
        row1.addWidget(self.y_label)
        row1.addWidget(self.param_y)
        self.seed_label = QLabel("seed:")
        row1.addWidget(self.seed_label)
        row1.addWidget(self.seed)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Range:"))
        row2.addWidget(self.span)
        row2.addWidget(QLabel("Resolution:"))
        row2.addWidget(self.resolution)
        row2.addWidget(self.log_box)
        row2.addWidget(self.follow)
        row2.addStretch(1)
        row2.addWidget(self.progress)
        row2.addWidget(self.compute_button)
        row2.addWidget(self.cancel_button)

        self.plot = LandscapePlot()
        layout = QVBoxLayout(self)
        layout.addWidget(explain)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)

        self.mode.currentIndexChanged.connect(self._on_mode)
        self.compute_button.clicked.connect(self.compute)
        self.cancel_button.clicked.connect(self.cancel)
        self.log_box.toggled.connect(self.plot.set_log_colors)
        self._fetch_timer = QTimer(self)
        self._fetch_timer.setSingleShot(True)
        self._fetch_timer.setInterval(PATH_FETCH_MS)
        self._fetch_timer.timeout.connect(self._fetch_weights)
        session.report.connect(self._on_report)
        session.weights_reset.connect(self._on_weights_reset)
        self._on_mode()
        self.refresh_parameters()

    # -- choices -------------------------------------------------------------------------
    def refresh_parameters(self) -> None:
        """Ask the training thread which numbers can be picked."""
        self.session.run_on_worker(param_choices, self._set_choices, lambda _m: None)

    def _set_choices(self, choices) -> None:
        old = (self.param_x.currentData(), self.param_y.currentData())
        for box in (self.param_x, self.param_y):
            box.blockSignals(True)
            box.clear()
            for key, i, label in choices:
                box.addItem(label, (key, i))
            box.blockSignals(False)
        self.select_parameters(*(old if None not in old else (None, None)))

    def select_parameters(self, x, y) -> None:
        """Pick the numbers by (key, index) or label; defaults: the first two."""
        for box, want, fallback in ((self.param_x, x, 0), (self.param_y, y, 1)):
            k = -1
            if want is not None:
                k = box.findData(want) if isinstance(want, tuple) else box.findText(want)
            if k < 0:
                k = min(fallback, box.count() - 1)
            box.setCurrentIndex(k)

    def _on_mode(self) -> None:
        params = self.mode.currentData() == "params"
        for w in (self.x_label, self.param_x, self.y_label, self.param_y):
            w.setVisible(params)
        self.seed_label.setVisible(not params)
        self.seed.setVisible(not params)
        self.span.setValue(2.0 if params else 1.0)

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(self.mode.findData(mode))

    # -- computing -----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Copying the weights or computing (until the last row has been drawn)."""
        return self._starting or self.job is not None

    def compute(self) -> None:
        """Copy the live weights and data, then scan the grid on a thread of its own."""
        self.cancel()
        params = self.mode.currentData() == "params"
        if params:
            dx, dy = self.param_x.currentData(), self.param_y.currentData()
            if dx is None or dy is None:
                self.status.setText("Pick two parameters first (the graph has none?).")
                return
            if dx == dy:
                self.status.setText("Pick two different parameters.")
                return
            directions = (dx, dy)
            labels = (self.param_x.currentText(), self.param_y.currentText())
        else:
            directions, labels = "random", None
        res, span, seed = self.resolution.value(), self.span.value(), self.seed.value()
        self.compute_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.status.setText("Copying the current weights…")
        self._starting = True

        def start(live: LiveCopy) -> None:
            if not self._starting:
                return  # cancelled meanwhile
            self.live = live
            def body(job):
                program = rebuild_program(live)
                return scan_rows(job, program, live.x, live.y, directions, span, res, seed,
                                 parameter_axes=params, labels=labels)

            self.progress.setRange(0, res)
            self.progress.setValue(0)
            self.status.setText(f"Computing {res} × {res} losses…")
            self._starting = False
            self.job = start_job(body, self._on_chunk, self._on_done, self._on_failed,
                                 name="gradscape-landscape")

        self.session.run_on_worker(grab_live, start, self._on_failed)

    def cancel(self) -> None:
        self._starting = False
        if self.job is not None:
            self.job.cancel()
            if self.job.isRunning():
                self.status.setText("Cancelled; the rows computed so far are shown.")
        self.job = None
        self._idle()

    def _idle(self) -> None:
        self.compute_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def _on_chunk(self, chunk) -> None:
        if self.sender() is not self.job:
            return  # a cancelled job's late chunk
        if chunk[0] == "plane":
            self.plane = chunk[1]
            self.plot.set_plane(self.plane)
            self.path_thetas = [self.plane.center]
            self._reproject()
            self._fetch_weights()  # the −α∇L arrow at the current weights
        else:
            _, i, row = chunk
            self.plot.set_row(i, row)
            self.progress.setValue(i + 1)
            if i % 4 == 3 or i + 1 == len(self.plane.betas):
                self.plot.redraw()

    def _on_done(self, losses) -> None:
        if self.sender() is not self.job:
            return
        self.job = None
        self._idle()
        self.plot.set_losses(losses)
        self.status.setText(self.summary())

    def _on_failed(self, message: str) -> None:
        self.job = None
        self._starting = False
        self._idle()
        self.status.setText(message)

    def summary(self) -> str:
        plane, z = self.plane, self.plot.losses
        if plane is None or z is None or not np.isfinite(z).any():
            return ""
        i, j = np.unravel_index(np.nanargmin(np.where(np.isfinite(z), z, np.nan)), z.shape)
        x0, y0 = plane.origin
        return (f"Loss at the centre (current weights): {plane.center_loss:.5g}  ·  lowest on "
                f"this grid: {z[i, j]:.5g} at ({plane.alphas[j] + x0:.3g}, "
                f"{plane.betas[i] + y0:.3g})  ·  evaluated on the whole training set in "
                f"evaluation mode")

    # -- the live path -------------------------------------------------------------------
    def _on_report(self, _report) -> None:
        if self.plane is not None and self.follow.isChecked() and self.isVisible() \
                and not self._fetch_timer.isActive():
            self._fetch_timer.start()

    def _fetch_weights(self) -> None:
        if self._fetching:
            self._fetch_timer.start()
            return
        self._fetching = True
        self.session.run_on_worker(live_theta, self._add_theta, self._fetch_failed)

    def _fetch_failed(self, _message: str) -> None:
        self._fetching = False

    def _add_theta(self, fetched) -> None:
        self._fetching = False
        if fetched is None or self.plane is None:
            return
        theta, _step, lr = fetched
        if theta.shape != self.plane.center.shape:
            return
        self.update_arrow(theta, lr)
        if self.path_thetas and np.array_equal(theta, self.path_thetas[-1]):
            return
        self.path_thetas.append(theta)
        a, b = self.plane.project(theta)
        self.path_xy[0].append(float(a[0]))
        self.path_xy[1].append(float(b[0]))
        self._draw_path()
        if not self.plot.contains(float(a[0]), float(b[0])) and not self.busy:
            self.status.setText("The weights have left the mapped area: press Compute to map "
                                "the surface around where they are now.")

    def update_arrow(self, theta: np.ndarray, lr: float) -> None:
        """Draw −α∇L (a plain gradient step on the whole training set) at θ, computed on a
        thread of its own; while one is computed, only the newest θ waits."""
        if self.live is None:
            return
        if self.arrow_job is not None:
            self._arrow_pending = (theta, lr)
            return
        self.arrow_job = start_job(functools.partial(arrow_body, self.live, theta, lr),
                                   on_done=lambda end, t=theta: self._on_arrow(t, end),
                                   on_failed=lambda _m: self._on_arrow(None, None),
                                   name="gradscape-landscape-arrow")

    def _on_arrow(self, theta, end) -> None:
        self.arrow_job = None
        if theta is not None and self.plane is not None and np.isfinite(end).all():
            self.arrow = (theta, end)
            a, b = self.plane.project(np.stack([theta, end]))
            self.plot.set_arrow((float(a[0]), float(b[0])), (float(a[1]), float(b[1])),
                                "−α∇L at the current weights (whole training set)")
        if self._arrow_pending is not None:
            pending, self._arrow_pending = self._arrow_pending, None
            self.update_arrow(*pending)

    def _reproject(self) -> None:
        if self.plane is None:
            return
        a, b = self.plane.project(np.stack(self.path_thetas))
        self.path_xy = (a.tolist(), b.tolist())
        self._draw_path()

    def _draw_path(self) -> None:
        if len(self.path_xy[0]) >= 2:
            self.plot.set_path("training path", *self.path_xy, PATH_COLORS[0])

    def _on_weights_reset(self) -> None:
        self.path_thetas = [self.plane.center] if self.plane is not None else []
        self.path_xy = ([], [])
        self.plot.clear_paths()
        self.plot.set_arrow(None, None)
        self.arrow = None

    def shutdown(self) -> None:
        for job in (self.job, self.arrow_job):
            if job is not None:
                job.cancel(wait=True)
        self.job = self.arrow_job = None


class LandscapeDialog(ToolDialog):
    """A non-modal window around a LandscapeView."""

    TITLE, NAME, SIZE = "Loss Landscape", "lab_landscape_dialog", (1000, 760)

    def __init__(self, session, parent=None):
        self.session = session
        super().__init__(parent)

    def make_view(self, parent):
        return LandscapeView(self.session, parent)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.view.refresh_parameters()
