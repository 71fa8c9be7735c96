"""Learn → The Training Loop: the cycle input → weights → activations → loss → backward →
optimizer → repeat, drawn beside the graph, with the current phase lit.

The phase follows the backprop stepper (Step Forward / Step Backward / Apply Update) and the
session (Play lights the whole loop). Below the cycle, the initial weights of a layer are
drawn as a histogram with the distribution they were drawn from
(`engine.lab.training_loop.initial_weights`, fetched with a module-level function on the
training thread).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QComboBox, QDockWidget, QLabel, QVBoxLayout, QWidget

from designer import theme
from designer.lab.menu import learn_menu
from designer.training import session as states
from designer.training.on_demand import DeferredWidget, pg  # pyqtgraph loads when a view opens
from engine.lab.training_loop import STAGES, initial_weights, stage_of

DOCK_NAME = "training_loop_dock"


def loop_initial_weights(program, trainer):
    """Run on the training thread: the graph's initial weights (plain data)."""
    if program is None:
        return []
    return initial_weights(program.spec, program.seed)


class CycleWidget(QWidget):
    """The six stages on a ring with arrows; `lit` stages are highlighted."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.lit: tuple[str, ...] = ()
        self.setMinimumSize(280, 135)  # the lesson fits below the Inspector at 1280×800

    def set_lit(self, keys: tuple[str, ...]) -> None:
        if keys != self.lit:
            self.lit = keys
            self.update()

    def box_rects(self) -> list[QRectF]:
        """Where each stage's box is drawn: a loop of two rows, left to right on top and
        right to left below (input, weights, activations / optimizer, backward, loss)."""
        gap, margin = 26.0, 6.0
        bw = (self.width() - 2 * margin - 2 * gap) / 3
        bh = min(56.0, (self.height() - 2 * margin - 40) / 2)
        top, bottom = margin, self.height() - margin - bh
        cells = [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0)]  # (row, column) per stage
        return [QRectF(margin + c * (bw + gap), top if r == 0 else bottom, bw, bh)
                for r, c in cells]

    def paintEvent(self, event) -> None:
        pal = theme.current()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rects = self.box_rects()
        p.setPen(QPen(QColor(pal.muted_text), 2.0))
        for k, r in enumerate(rects):  # an arrow from each stage to the next
            nxt = rects[(k + 1) % len(rects)]
            if abs(r.center().y() - nxt.center().y()) < 1:  # same row
                y = r.center().y()
                forward = nxt.center().x() > r.center().x()
                start = QPointF(r.right() if forward else r.left(), y)
                end = QPointF(nxt.left() if forward else nxt.right(), y)
            else:
                x = r.center().x()
                down = nxt.center().y() > r.center().y()
                start = QPointF(x, r.bottom() if down else r.top())
                end = QPointF(x, nxt.top() if down else nxt.bottom())
            p.drawLine(start, end)
            d = end - start
            length = math.hypot(d.x(), d.y()) or 1.0
            u = QPointF(d.x() / length, d.y() / length)
            left = QPointF(-u.y(), u.x())
            head = QPainterPath(end)
            head.lineTo(end - u * 9 + left * 5)
            head.lineTo(end - u * 9 - left * 5)
            head.closeSubpath()
            p.fillPath(head, QColor(pal.muted_text))
        title_font = theme.ui_font(10, bold=True)
        small = theme.ui_font(8)
        for (key, title, _what), r in zip(STAGES, rects):
            on = key in self.lit
            p.setPen(QPen(QColor(pal.selection if on else pal.node_border), 3.0 if on else 1.2))
            fill = QColor(pal.selection)
            fill.setAlpha(70)
            p.setBrush(fill if on else QColor(pal.node_body))
            p.drawRoundedRect(r, 8, 8)
            p.setPen(QColor(pal.text))
            p.setFont(title_font)
            p.drawText(r.adjusted(4, 4, -4, -r.height() / 2), Qt.AlignmentFlag.AlignCenter, title)
            p.setFont(small)
            p.setPen(QColor(pal.muted_text))
            p.drawText(r.adjusted(4, r.height() / 2, -4, -2), Qt.AlignmentFlag.AlignCenter,
                       "◀ now" if on else "")
        p.setFont(QFont(theme.ui_font(9)))
        p.setPen(QColor(pal.muted_text))
        p.drawText(QRectF(0, self.height() / 2 - 12, self.width(), 24),
                   Qt.AlignmentFlag.AlignCenter, "repeat for every batch")
        p.end()


class TrainingLoopView(QWidget):
    """The cycle, a sentence about the current stage, and the initial-weight histogram."""

    def __init__(self, window, parent: QWidget | None = None):
        super().__init__(parent)
        self.window = window
        self.session = window.training.session
        self.stepper = window.lab_training.stepper
        self.weights: list = []
        self.cycle = CycleWidget()
        self.stage_text = QLabel()
        self.stage_text.setWordWrap(True)
        self.layer_box = QComboBox()
        self.layer_box.currentIndexChanged.connect(lambda _i: self.draw_histogram())
        self.init_text = QLabel()
        self.init_text.setWordWrap(True)
        self.init_text.setFont(theme.mono_font(8.5))
        self.plot = pg.PlotWidget(background=theme.color("background"))
        self.plot.setMinimumHeight(60)
        self.plot.setLabel("bottom", "initial weight")
        self.plot.setLabel("left", "density")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.cycle, 3)
        layout.addWidget(self.stage_text)
        layout.addWidget(QLabel("<b>Where the weights start</b>"))
        layout.addWidget(self.layer_box)
        layout.addWidget(self.init_text)
        layout.addWidget(self.plot, 2)
        self.stepper.changed.connect(self.refresh_phase)
        self.session.state_changed.connect(self._on_state)
        self.session.weights_reset.connect(self.fetch)
        self.refresh_phase()

    # -- the phase -------------------------------------------------------------------------
    def lit(self) -> tuple[str, ...]:
        """The stages lit now: the whole loop while training runs, else the stepper's."""
        if self.session.state == states.RUNNING:
            return tuple(key for key, _t, _w in STAGES)
        return stage_of(self.stepper.phase)

    def refresh_phase(self) -> None:
        keys = self.lit()
        self.cycle.set_lit(keys)
        if self.session.state == states.RUNNING:
            self.stage_text.setText("Training runs: the whole loop repeats, once per batch.")
            return
        lines = [f"<b>{title}</b>: {what}" for key, title, what in STAGES if key in keys]
        hint = {"idle": "Press Step Forward (F7) to send a batch through.",
                "forward_done": "Step Backward (F8) sends the gradient back.",
                "backward_done": "Apply Update (F9) takes the optimizer step.",
                "updated": "Step Forward again: the next batch starts the loop over."}
        self.stage_text.setText("<br>".join(lines + [hint.get(self.stepper.phase, "")]))

    def _on_state(self, state: str) -> None:
        self.refresh_phase()
        if state == states.READY:
            self.fetch()

    # -- initial weights -------------------------------------------------------------------
    def fetch(self) -> None:
        """Ask the training thread for the initial weights (after a compile or reset)."""
        self.session.run_on_worker(loop_initial_weights, self._on_weights, lambda _m: None)

    def _on_weights(self, weights) -> None:
        self.weights = list(weights or [])
        current = self.layer_box.currentText()
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for w in self.weights:
            self.layer_box.addItem(w.node)
        index = self.layer_box.findText(current)
        self.layer_box.setCurrentIndex(max(0, index))
        self.layer_box.blockSignals(False)
        self.draw_histogram()

    def draw_histogram(self) -> None:
        self.plot.clear()
        k = self.layer_box.currentIndex()
        if not 0 <= k < len(self.weights):
            self.init_text.setText("This graph has no layer with random initial weights.")
            return
        w = self.weights[k]
        self.init_text.setText(f"{w.node}: {w.values.size} weights drawn from "
                               f"{w.description}")
        values = w.values
        if not values.size or np.ptp(values) == 0:
            return
        counts, edges = np.histogram(values, bins=min(40, max(8, values.size // 4)),
                                     density=True)
        color = QColor(theme.current().shape_text)
        color.setAlpha(150)
        self.plot.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts,
                                          brush=color, pen=None))
        xs = np.linspace(edges[0], edges[-1], 200)
        density = _density(w.description, xs)
        if density is not None:
            self.plot.plot(xs, density, pen=pg.mkPen(theme.current().error, width=2))


def _density(description: str, xs: np.ndarray) -> np.ndarray | None:
    """The curve of the distribution named by `describe_init` (None for zeros)."""
    value = float(description.rsplit("= ", 1)[-1]) if "= " in description else None
    if description.startswith("He normal") and value:
        return np.exp(-0.5 * (xs / value) ** 2) / (value * math.sqrt(2 * math.pi))
    if description.startswith("Xavier uniform") and value:
        return np.where(np.abs(xs) <= value, 1.0 / (2 * value), 0.0)
    if description.startswith("small normal"):
        return np.exp(-0.5 * (xs / 0.01) ** 2) / (0.01 * math.sqrt(2 * math.pi))
    return None


class TrainingLoopLesson:
    """The dock and its Learn menu entry."""

    def __init__(self, window):
        self.window = window
        self.dock = QDockWidget("Training Loop", window)
        self.dock.setObjectName(DOCK_NAME)
        # The view (a pyqtgraph plot) is built when the lesson is first shown.
        self.holder = DeferredWidget(lambda: TrainingLoopView(window))
        self.dock.setWidget(self.holder)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self._placed = False  # tabified beside Predictions when first shown
        action = learn_menu(window).addAction("The &Training Loop")
        action.setStatusTip("The cycle input → weights → activations → loss → backward → "
                            "optimizer, lit as you step, with the initial weights")
        action.triggered.connect(lambda _c=False: self.show())
        window.actions["learn_training_loop"] = action

    @property
    def view(self) -> TrainingLoopView:
        """The lesson's view (built now if it was not yet)."""
        return self.holder.widget()

    def show(self) -> None:
        anchor = getattr(getattr(self.window, "lab_training", None), "predictions_dock", None)
        if not self._placed and anchor is not None and anchor.isVisible():
            # beside Predictions: that tab bar has room, the inspector's would widen the column
            self.window.tabifyDockWidget(anchor, self.dock)
            self._placed = True
        self.dock.show()
        self.dock.raise_()
        self.view.fetch()
        self.view.refresh_phase()


def install_training_loop(window) -> TrainingLoopLesson:
    """Add Learn → The Training Loop (after the stepper and the training session)."""
    return TrainingLoopLesson(window)
