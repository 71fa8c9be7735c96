"""The "Weights" dock: the selected node's parameters and their gradients, live.

Tensors are heatmaps (pyqtgraph ImageItem with a colour bar, symmetric around 0 on a
diverging map); Conv2D filters are tiled, one tile per filter with its channels side by
side. Scalar parameters are plotted over time instead. Only the selected node's arrays
are fetched, through `session.run_on_worker`, at most every FETCH_INTERVAL_MS while the
dock is visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from designer import theme
from designer.training.throttle import ThrottledFetch
from engine.data.csv_sample import even_rows

FETCH_INTERVAL_MS = 250
HISTORY = 2000  # samples kept per scalar parameter
COLORMAP = "CET-D1"  # blue – white – red: sign at a glance
# A Dense layer of 100,000 units has a weight matrix no screen can show and no 250 ms fetch
# should copy: the worker sends at most MAX_ROWS × MAX_COLS evenly spaced cells of each
# tensor's picture, and the view says how many of how many it shows.
MAX_ROWS = 256
MAX_COLS = 512


@dataclass
class TensorPicture:
    """What the view draws of one parameter tensor (built in the training process)."""

    name: str
    shape: tuple[int, ...]
    value: np.ndarray  # the picture (to_image), at most MAX_ROWS × MAX_COLS cells
    grad: np.ndarray
    grad_norm: float  # of the whole gradient, not of the cells shown
    rows: int  # the full picture's size (more than value.shape when sampled)
    cols: int

    @property
    def sampled(self) -> bool:
        return (self.rows, self.cols) != self.value.shape


def picture(name: str, value: np.ndarray, grad: np.ndarray) -> TensorPicture:
    """A tensor and its gradient as pictures of at most MAX_ROWS × MAX_COLS cells."""
    if value.ndim <= 2:  # pick the cells before copying: a 16 × 100,000 matrix stays cheap
        full_v = value.reshape(1, -1) if value.ndim <= 1 else value
    else:
        full_v, grad_image = to_image(value), to_image(grad)
    full_g = grad.reshape(full_v.shape) if value.ndim <= 2 else grad_image
    rows, cols = full_v.shape
    pick = np.ix_(np.arange(rows)[even_rows(rows, MAX_ROWS)],
                  np.arange(cols)[even_rows(cols, MAX_COLS)])
    return TensorPicture(name, tuple(value.shape), np.asarray(full_v[pick], dtype=np.float64),
                         np.asarray(full_g[pick], dtype=np.float64),
                         float(np.linalg.norm(grad.astype(np.float64).ravel())), rows, cols)


def to_image(array: np.ndarray) -> np.ndarray:
    """A parameter tensor as a 2-D image (rows × columns).

    1-D → one row; 2-D as is (Dense: outputs × inputs); 4-D (F, C, kh, kw) → the filters
    tiled in a near-square grid, each tile its C channels side by side, NaN gaps between.
    """
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    if a.ndim == 2:
        return a
    if a.ndim == 4:
        f, c, kh, kw = a.shape
        tile_w = c * kw + (c - 1)
        cols = max(1, math.ceil(math.sqrt(f * kh / max(tile_w, 1))))
        cols = min(cols, f)
        rows = math.ceil(f / cols)
        out = np.full((rows * (kh + 1) - 1, cols * (tile_w + 1) - 1), np.nan)
        for i in range(f):
            r, col = divmod(i, cols)
            y0, x0 = r * (kh + 1), col * (tile_w + 1)
            for ch in range(c):
                xs = x0 + ch * (kw + 1)
                out[y0:y0 + kh, xs:xs + kw] = a[i, ch]
        return out
    return a.reshape(a.shape[0], -1)


def _shape(shape) -> str:
    return "×".join(str(d) for d in shape)


class WeightsView(QWidget):
    """Shows the parameters of the one selected node (`node`).

    Attributes (for tests): `arrays` name → TensorPicture as fetched; `images` name →
    (value ImageItem, grad ImageItem); `history` "node.name" → list of (step, value).
    """

    def __init__(self, window, parent: QWidget | None = None):
        super().__init__(parent)
        self.window = window
        self.session = window.training.session
        self.scene = window.scene
        self.node: str | None = None
        self.arrays: dict[str, TensorPicture] = {}
        self.images: dict[str, tuple[pg.ImageItem, pg.ImageItem]] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.fetches = 0
        self._bars: dict[str, tuple[pg.ColorBarItem, pg.ColorBarItem]] = {}
        self._titles: dict[str, tuple[pg.PlotItem, pg.PlotItem | None]] = {}
        self._layout_key: tuple | None = None
        self._dock = None
        self._cmap = pg.colormap.get(COLORMAP)

        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(theme.current().background)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.info)
        layout.addWidget(self.graphics, 1)

        self.fetch = ThrottledFetch(self.session, FETCH_INTERVAL_MS, self._job, self._on_fetched,
                                    self._on_error, self._visible, self, with_worker=True)
        self.scene.selectionChanged.connect(self._on_selection)
        self.session.report.connect(lambda _r: self.request())
        self.session.weights_reset.connect(self._on_reset)
        self._show_empty()

    def set_dock(self, dock) -> None:
        self._dock = dock
        dock.visibilityChanged.connect(lambda visible: visible and self.request())

    def _visible(self) -> bool:
        return self.isVisible()

    # -- fetching --------------------------------------------------------------------------
    def _on_selection(self) -> None:
        try:
            ids = self.scene.selected_node_ids()
        except RuntimeError:  # the scene is being torn down
            return
        node = ids[0] if len(ids) == 1 else None
        if node != self.node:
            self.node = node
            self.arrays = {}
            self.request(now=True)

    def _on_reset(self) -> None:
        self.history = {}
        self.request(now=True)

    def request(self, now: bool = False) -> None:
        """Fetch soon (at once when `now` and nothing is in flight)."""
        self.fetch.request(now)

    def _job(self):
        node = self.node

        def job(program, trainer, worker):
            if program is None:
                return None
            params = [picture(e.name, program.param_value(e), program.param_grad(e))
                      for e in program.entries if e.node == node]
            scalars = {e.key: float(program.theta[e.offset]) for e in program.entries
                       if e.size == 1}
            return node, worker.step_count, params, scalars  # the run's step count

        return job

    def _on_error(self, _message: str) -> None:
        pass  # the next report asks again; the session shows training problems itself

    def _on_fetched(self, result) -> None:
        self.fetches += 1
        if result is None:
            self.arrays = {}
            self._show_empty("The graph is not compiled yet.")
            return
        node, step, params, scalars = result
        for key, value in scalars.items():
            h = self.history.setdefault(key, [])
            if h and h[-1][0] == step:
                h[-1] = (step, value)
            elif not h or step > h[-1][0]:
                h.append((step, value))
            else:  # counters went back (recompiled, reset): start again
                h[:] = [(step, value)]
            del h[:-HISTORY]
        if node != self.node:
            self.request(now=True)
            return
        self.arrays = {p.name: p for p in params}
        self._render(node, params)

    # -- drawing ---------------------------------------------------------------------------
    def _show_empty(self, text: str = "") -> None:
        self._clear_graphics()
        pal = theme.current()
        if not text:
            text = ("Select a node with parameters (Dense, Conv2D, Parameter, BatchNorm) to "
                    "watch its weights and their gradients."
                    if self.node is None else f"'{self.node}' has no parameters.")
        self.info.setText(f"<span style='color:{pal.muted_text}'>{text}</span>")
        self.graphics.setVisible(False)

    def _clear_graphics(self) -> None:
        self.graphics.clear()
        self.images, self.curves, self._bars, self._titles = {}, {}, {}, {}
        self._layout_key = None

    def _render(self, node: str, params: list) -> None:
        if not params:
            self._show_empty()
            return
        op = ""
        if self.window.document.has_node(node):
            op = self.window.document.node(node).op
        how = ("value over training steps" if all(p.value.size == 1 for p in params) else
               "value left, gradient ∂L/∂θ right, white = 0"
               + (" · rows: outputs, columns: inputs" if op == "Dense" else ""))
        self.info.setText(f"<b>{node}</b> <span style='color:{theme.current().muted_text}'>"
                          f"({op}) · {how}</span>")
        self.graphics.setVisible(True)
        key = tuple((p.name, p.shape) for p in params)
        if key != self._layout_key:
            self._build(node, params)
            self._layout_key = key
        for p in params:
            if p.value.size == 1 and not p.sampled:
                self._update_scalar(node, p.name, float(p.value.reshape(-1)[0]),
                                    float(p.grad.reshape(-1)[0]))
            else:
                self._update_tensor(p)

    def _build(self, node: str, params: list) -> None:
        self._clear_graphics()
        g = self.graphics
        pal = theme.current()
        for row, p in enumerate(params):
            name = p.name
            if p.value.size == 1 and not p.sampled:
                plot = g.addPlot(row=row, col=0, colspan=2)
                plot.showGrid(x=True, y=True, alpha=0.25)
                plot.setLabel("bottom", "step")
                plot.setMinimumHeight(150)
                self.curves[name] = plot.plot(pen=pg.mkPen(pal.shape_text, width=2))
                self._titles[name] = (plot, None)
                continue
            flat = len(p.shape) <= 1
            g.ci.layout.setRowStretchFactor(row, 1 if flat else 3)
            pair = []
            plots = []
            for col, what in enumerate(("value", "grad")):
                plot = g.addPlot(row=row, col=col)
                plot.hideAxis("left")
                plot.hideAxis("bottom")
                plot.invertY(True)
                plot.setAspectLocked(True)
                plot.setMouseEnabled(x=False, y=False)
                plot.hideButtons()
                if flat:
                    plot.setMaximumHeight(120)
                img = pg.ImageItem(axisOrder="row-major")
                plot.addItem(img)
                bar = pg.ColorBarItem(values=(-1, 1), colorMap=self._cmap, interactive=False,
                                      width=10)
                bar.setImageItem(img, insert_in=plot)
                bar.getAxis("right").setStyle(tickFont=theme.ui_font(7))
                pair.append((img, bar))
                plots.append(plot)
                del what
            self.images[name] = (pair[0][0], pair[1][0])
            self._bars[name] = (pair[0][1], pair[1][1])
            self._titles[name] = (plots[0], plots[1])

    def _update_tensor(self, p: TensorPicture) -> None:
        img_v, img_g = self.images[p.name]
        bar_v, bar_g = self._bars[p.name]
        pv, pg_ = self._titles[p.name]
        for img, bar, image in ((img_v, bar_v, p.value), (img_g, bar_g, p.grad)):
            m = float(np.nanmax(np.abs(image))) if np.isfinite(image).any() else 0.0
            m = m if m > 0 and math.isfinite(m) else 1e-12
            img.setImage(image, levels=(-m, m), autoLevels=False)
            bar.setLevels((-m, m))
        size = 8
        shown = ""
        if p.sampled:
            r, c = p.value.shape
            shown = (f" · {r:,} of {p.rows:,} rows, {c:,} of {p.cols:,} columns"
                     if r < p.rows and c < p.cols else
                     f" · {r:,} of {p.rows:,} rows" if r < p.rows else
                     f" · {c:,} of {p.cols:,} columns")
            shown += " (evenly spaced)"
        pv.setTitle(f"{p.name} ({_shape(p.shape)}){shown}", size=f"{size}pt")
        pg_.setTitle(f"∂L/∂{p.name}  ‖g‖ {p.grad_norm:.3g}", size=f"{size}pt")

    def _update_scalar(self, node: str, name: str, value: float, grad: float) -> None:
        h = self.history.get(f"{node}.{name}", [])
        if h:
            xs, ys = zip(*h)
            self.curves[name].setData(np.asarray(xs, float), np.asarray(ys, float))
        plot, _ = self._titles[name]
        plot.setTitle(f"{node}.{name} = {value:.6g} · ∂L/∂{name} = {grad:.4g}", size="8pt")
