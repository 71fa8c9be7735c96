"""Colour the wires by the size of their gradient (or forward value) and label them.

Colour is log10 of a magnitude on viridis (a perceptually uniform, colour-blind-safe
sequential scale), sampled once into a 256-entry table. A scalar wire shows its exact
number with its sign; a tensor wire a summary (mean |g|, L2 norm or max |g|). Only pens
and labels of existing edge items change: nothing is re-laid out.

Health flags warn about vanishing or exploding gradients, dead ReLUs and saturated
Sigmoid/Tanh units, with an explanatory sentence in the wire's tooltip.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PySide6.QtCore import QEvent, QObject, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QComboBox, QFrame, QHBoxLayout, QVBoxLayout, QWidget

from designer import theme
from engine.core import registry
from engine.core.stats import Summary

LUT_SIZE = 256
VANISHING = 1e-7
EXPLODING = 1e3
DEAD_OR_SATURATED = 0.9
DEFAULT_RANGE = (-6.0, 0.0)  # log10 colour scale before the first report of a run
STATS = {  # key: (label template, how to read a Summary)
    "mean_abs": ("mean|{s}|", lambda s: s.mean_abs),
    "l2": ("‖{s}‖", lambda s: s.l2),
    "max_abs": ("max|{s}|", lambda s: max(abs(s.min), abs(s.max))),
}
MODES = {"grad": "Gradients ∂L/∂wire", "value": "Forward values", "off": "Off"}


def _viridis_lut() -> list[QColor]:
    import pyqtgraph as pg  # here, not at the top: the first window opens without it

    table = pg.colormap.get("viridis").getLookupTable(nPts=LUT_SIZE, alpha=False)
    return [QColor(int(r), int(g), int(b)) for r, g, b in np.asarray(table)]


def format_number(v: float) -> str:
    """A wire's number: 4 significant digits with an explicit sign (``+0.5``, ``−1.25e-05``)."""
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("+∞" if v > 0 else "−∞")
    return f"{v:+.4g}".replace("-", "−")


def format_magnitude(v: float) -> str:
    """A non-negative summary number, short enough for a wire (``0.0123``, ``5.7e-4``)."""
    if not math.isfinite(v):
        return "NaN"
    if v == 0 or 0.01 <= abs(v) < 1000:
        return f"{v:.3g}"
    mantissa, exp = f"{v:.1e}".split("e")
    return f"{mantissa}e{int(exp)}"


def health_flag(edge_src_op: str, feeds_loss: bool, grad: Summary | None,
                fraction: float | None) -> str | None:
    """A sentence explaining what looks unhealthy on a wire, or None."""
    if grad is not None and grad.size:
        g = grad.mean_abs
        if g < VANISHING:
            return (f"Vanishing gradient: mean |g| = {g:.2g} < {VANISHING:g}. Layers before "
                    "this wire barely learn. Try ReLU-like activations, a better init, "
                    "normalisation or a residual connection.")
        if g > EXPLODING or not math.isfinite(g):
            return (f"Exploding gradient: mean |g| = {g:.3g} > {EXPLODING:g}. Steps will be "
                    "huge. Lower the learning rate or turn on gradient clipping.")
    if fraction is not None and fraction > DEAD_OR_SATURATED:
        if getattr(registry.get(edge_src_op), "dies_at_zero", False):
            return (f"Mostly dead {edge_src_op}: {fraction:.0%} of its outputs are zero, and zero "
                    "outputs pass no gradient back. Try a lower learning rate, LeakyReLU or "
                    "a different init.")
        if not feeds_loss:
            return (f"Saturated {edge_src_op}: {fraction:.0%} of its outputs sit near the "
                    "bounds, where its slope is almost 0 and little gradient flows back. "
                    "Scale the inputs down or use a smaller init.")
    return None


class GradientOverlay(QObject):
    """Restyles a CanvasScene's edge items from TrainingReports.

    Attributes:
        mode: "grad", "value" or "off".  stat: a key of STATS.
        width_by_magnitude: also thicken wires with larger magnitudes.
        range: (lo, hi) log10 bounds of the colour scale used last.
    Signals:
        range_changed(float lo, float hi, str title): the legend should redraw.
    """

    range_changed = Signal(float, float, str)

    def __init__(self, scene, run, parent: QObject | None = None):
        super().__init__(parent)
        self.scene = scene
        self.run = run
        self.mode = "grad"
        self.stat = "mean_abs"
        self.width_by_magnitude = True
        self.range = DEFAULT_RANGE
        self._announced = None  # the (range, title) the legend was last told
        self.labels: dict = {}  # EdgeSpec -> label text (for tests and tooltips)
        run.updated.connect(self.apply)
        run.restarted.connect(self.forget)
        run.wires_claimed.connect(self._on_wires_claimed)

    @functools.cached_property
    def lut(self) -> list[QColor]:
        """The colour scale, LUT_SIZE colours (made when first used: pyqtgraph loads then)."""
        return _viridis_lut()

    @property
    def last_report(self):
        """The run's newest report (the overlay keeps no copy)."""
        return self.run.last_report

    def _on_wires_claimed(self, owner: str) -> None:
        if owner == "overlay":
            self.reapply()

    # -- options -------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.reapply()

    def set_stat(self, stat: str) -> None:
        self.stat = stat
        self.reapply()

    def set_width_by_magnitude(self, on: bool) -> None:
        self.width_by_magnitude = on
        self.reapply()

    def reapply(self) -> None:
        self._announced = None  # another tool may have shown its own scale meanwhile
        if self.last_report is not None:
            self.apply(self.last_report)
        elif self.run.wire_owner == "overlay":
            self.clear()

    def title(self) -> str:
        sym = "g" if self.mode == "grad" else "v"
        what = "|∂L/∂wire|" if self.mode == "grad" else "|value|"
        return f"colour: {what} (log scale) · label: {STATS[self.stat][0].format(s=sym)}"

    # -- applying ------------------------------------------------------------------------
    def clear(self) -> None:
        """Back to plain wires."""
        self.labels = {}
        for item in self.scene.edges.values():
            item.set_overlay(None)
            item.setToolTip(item.problem or "")

    def forget(self) -> None:
        """A fresh run (weights reset, file opened): plain wires, the default colour scale."""
        self.range = DEFAULT_RANGE
        self._announced = (self.range, self.title())
        self.range_changed.emit(self.range[0], self.range[1], self.title())
        if self.run.wire_owner == "overlay":
            self.clear()

    def apply(self, report) -> None:
        """Colour and label every wire the report knows (unless another tool, such as the
        backprop stepper, has claimed the wires)."""
        if self.run.wire_owner != "overlay":
            return
        if self.mode == "off":
            self.clear()
            return
        summaries = report.grads if self.mode == "grad" else report.values
        read = STATS[self.stat][1]
        mags = [read(s) for s in summaries if s is not None and s.size]
        logs = [math.log10(m) for m in mags if m > 0 and math.isfinite(m)]
        if logs:
            lo, hi = math.floor(min(logs)), math.ceil(max(logs))
            if hi - lo < 2:
                lo = hi - 2
            if (lo, hi) != self.range:
                self.range = (float(lo), float(hi))
        if (self.range, self.title()) != self._announced:  # each emit repaints the legend
            self._announced = (self.range, self.title())
            self.range_changed.emit(self.range[0], self.range[1], self.title())
        doc = self.scene.document
        loss_nodes = {n.id for n in doc.nodes() if getattr(registry.get(n.op), "is_loss", False)}
        labels = {}
        for k, edge in enumerate(report.edges):
            item = self.scene.edges.get(edge)
            if item is None:
                continue
            s = summaries[k] if k < len(summaries) else None
            if s is None or not s.size:
                item.set_overlay(None)
                item.setToolTip(item.problem or "")
                continue
            mag = read(s)
            text = self.label_text(s)
            src_op = doc.node(edge.src).op if doc.has_node(edge.src) else ""
            flag = health_flag(src_op, edge.dst in loss_nodes, report.grads[k],
                               report.flags.get(k))
            if flag:
                text = "⚠ " + text
            labels[edge] = text
            item.set_overlay(self.color_for(mag), self.width_for(mag), text)
            item.setToolTip(item.problem or self.tooltip(report, k, flag))
        self.labels = labels

    def label_text(self, s: Summary) -> str:
        """The number on a wire: exact (signed) for one number, else the chosen summary
        (which summary, the legend says)."""
        if s.size == 1:
            return format_number(s.mean)
        return format_magnitude(STATS[self.stat][1](s))

    def position(self, magnitude: float) -> float:
        """Where a magnitude falls on the colour scale, 0..1."""
        lo, hi = self.range
        if not (magnitude > 0 and math.isfinite(magnitude)):
            return 0.0 if magnitude == 0 else 1.0
        return min(max((math.log10(magnitude) - lo) / (hi - lo), 0.0), 1.0)

    def color_for(self, magnitude: float) -> QColor:
        return self.lut[round(self.position(magnitude) * (LUT_SIZE - 1))]

    def width_for(self, magnitude: float) -> float:
        if not self.width_by_magnitude:
            return 2.6
        return 1.6 + 3.4 * self.position(magnitude)

    @staticmethod
    def tooltip(report, k: int, flag: str | None) -> str:
        """Shape-free summary of one wire (the detail panel has histograms)."""
        edge = report.edges[k]
        rows = [f"<b>{edge.key}</b>"]
        for name, s in (("value", report.values[k]), ("∂L/∂wire", report.grads[k])):
            if s is None:
                rows.append(f"{name}: —")
                continue
            if s.size == 1:  # one number: show it exactly (the wire's label rounds it)
                rows.append(f"{name}: {s.mean!r}")
                continue
            rows.append(f"{name}: mean {s.mean:.4g}, mean|·| {s.mean_abs:.4g}, "
                        f"L2 {s.l2:.4g}, min {s.min:.4g}, max {s.max:.4g} ({s.size} numbers)")
        if flag:
            rows.append(f"<span style='color:{theme.current().error}'>⚠ {flag}</span>")
        return "<br>".join(rows)


class OverlayLegend(QFrame):
    """The colour bar with its decade ticks and the overlay's options, shown on the canvas."""

    def __init__(self, overlay: GradientOverlay, parent: QWidget | None = None):
        super().__init__(parent)
        self.overlay = overlay
        self.setObjectName("overlayLegend")
        pal = theme.current()
        self.setStyleSheet(f"#overlayLegend {{ background: {pal.label_background}; "
                           f"border: 1px solid {pal.node_border}; border-radius: 6px; }}")
        self.bar = _ColorBar(overlay)
        self.mode_combo = QComboBox()
        for key, text in MODES.items():
            self.mode_combo.addItem(text, key)
        self.mode_combo.currentIndexChanged.connect(
            lambda _i: self._changed(mode=self.mode_combo.currentData()))
        self.stat_combo = QComboBox()
        for key, (template, _read) in STATS.items():
            self.stat_combo.addItem(template.format(s="·"), key)
        self.stat_combo.setToolTip("Summary shown for wires carrying many numbers")
        self.stat_combo.currentIndexChanged.connect(
            lambda _i: overlay.set_stat(self.stat_combo.currentData()))
        self.width_box = QCheckBox("width")
        self.width_box.setToolTip("Thicker wires for larger magnitudes")
        self.width_box.setChecked(overlay.width_by_magnitude)
        self.width_box.toggled.connect(overlay.set_width_by_magnitude)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.mode_combo)
        row.addWidget(self.stat_combo)
        row.addWidget(self.width_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addLayout(row)
        layout.addWidget(self.bar)
        overlay.range_changed.connect(lambda *_a: self.bar.update())
        self.adjustSize()

    def _changed(self, mode: str) -> None:
        self.overlay.set_mode(mode)
        self.bar.setVisible(mode != "off")
        self.stat_combo.setEnabled(mode != "off")
        self.adjustSize()


class _ColorBar(QWidget):
    """A horizontal viridis bar labelled 10^lo … 10^hi (sized by its font: it grows with
    presentation mode's large type)."""

    def __init__(self, overlay: GradientOverlay):
        super().__init__()
        self.overlay = overlay

    def label_font(self) -> QFont:
        """The font of the title and the decade ticks."""
        return theme.ui_font(8)

    def minimumSizeHint(self) -> QSize:
        s = theme.text_scale()
        return QSize(round(300 * s), round(44 * s))

    def sizeHint(self) -> QSize:
        return self.minimumSizeHint()

    def paintEvent(self, event) -> None:
        pal = theme.current()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = self.label_font()
        p.setFont(font)
        line = QFontMetricsF(font).height()
        title_h = line
        p.setPen(QColor(pal.text))
        p.drawText(QRectF(0, 0, self.width(), title_h), Qt.AlignmentFlag.AlignLeft,
                   self.overlay.title())
        bar = QRectF(16, title_h + 3, self.width() - 32, 10 * theme.text_scale())
        grad = QLinearGradient(bar.left(), 0, bar.right(), 0)
        lut = self.overlay.lut
        for i in range(0, LUT_SIZE, 32):
            grad.setColorAt(i / (LUT_SIZE - 1), lut[i])
        grad.setColorAt(1.0, lut[-1])
        p.setPen(QPen(QColor(pal.node_border), 0.8))
        p.setBrush(grad)
        p.drawRoundedRect(bar, 3, 3)
        lo, hi = self.overlay.range
        decades = int(hi - lo)
        every = max(1, math.ceil(decades / 6))
        p.setPen(QColor(pal.muted_text))
        for d in range(0, decades + 1, every):
            x = bar.left() + bar.width() * d / decades
            p.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom() + 3))
            text = f"1e{int(lo + d)}"
            p.drawText(QRectF(x - 2 * line, bar.bottom() + 3, 4 * line, line),
                       Qt.AlignmentFlag.AlignCenter, text)
        p.end()


class LegendPlacer(QObject):
    """Keeps a legend widget in the bottom-left corner of a view's viewport.

    The legend is a child of the view, not of the viewport: scrolling the canvas scrolls
    the viewport's children along with the scene.
    """

    def __init__(self, view, legend: QWidget):
        super().__init__(legend)
        self.view, self.legend = view, legend
        legend.setParent(view)
        view.viewport().installEventFilter(self)
        self.place()
        legend.show()

    def place(self) -> None:
        self.legend.adjustSize()
        vp = self.view.viewport().geometry()
        self.legend.move(vp.left() + 10, vp.bottom() - self.legend.height() - 10)
        self.legend.raise_()

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.place()
        return False
