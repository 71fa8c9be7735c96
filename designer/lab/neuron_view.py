"""Neuron view: a Dense layer opened up on the canvas into its neurons and single weights.

"Expand into Neurons" (node context menu or Learn menu) lays a card over the Dense node:
its inputs on the left, its neurons on the right and one line per weight W[i, j] between
input j and neuron i, coloured blue (negative) → grey (0) → orange (positive) by the weight
or by its gradient ∂L/∂W[i, j] (toggle in the card's header), thicker when larger. Every
circle shows its activation, averaged over the batch or for the first sample (toggle), and
when the layer feeds straight into an activation function (ReLU, Tanh, Sigmoid…) the
neurons show the value after it. Like TensorFlow Playground, but with the gradients.

The card is a child of the node item, so it moves with the node; "Collapse" (or the ✕)
returns to the layer. While training runs it refreshes a few times a second from the worker
via `session.run_on_worker`, fetching only that layer's arrays.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsLineItem,
    QGraphicsObject,
    QGraphicsSimpleTextItem,
    QMenu,
)

from designer import theme
from engine.errors import GradscapeError

MAX_UNITS = 16
REFRESH_S = 0.2  # at most five refreshes a second while training
SPACING = 26.0
RADIUS = 9.0
CARD_WIDTH = 214.0
HEADER = 64.0
ACTIVATIONS = {"ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "ELU", "Softplus", "SiLU"}


def layer_arrays(program, node_id: str) -> dict:
    """Runs on the worker: copies of one Dense layer's weights, gradients and activations."""
    if program is None:
        raise GradscapeError("The graph cannot be trained yet.")
    if node_id not in program.index:
        raise GradscapeError(f"'{node_id}' is not in the trained graph yet.")
    i = program.index[node_id]
    entries = {e.name: e for e in program.entries if e.node == node_id}
    if "weight" not in entries:
        raise GradscapeError(f"'{node_id}' has no weight matrix.")
    w = entries["weight"]
    out = {"weight": program.param_value(w).copy(), "weight_grad": program.param_grad(w).copy()}
    if "bias" in entries:
        out["bias"] = program.param_value(entries["bias"]).copy()
    x = program.values[program.srcs[i][0]] if program.srcs[i] else None
    y = program.values[i]
    after, act = y, ""
    consumers = [k for k, srcs in enumerate(program.srcs) if i in srcs]
    if len(consumers) == 1 and program.op_ids[consumers[0]] in ACTIVATIONS:
        k = consumers[0]
        if program.values[k] is not None and np.shape(program.values[k]) == np.shape(y):
            after, act = program.values[k], program.op_ids[k]
    for name, arr in (("x", x), ("y", after)):
        if arr is not None and np.ndim(arr) == 2 and len(arr):
            out[name + "_mean"] = np.asarray(arr).mean(axis=0)
            out[name + "_first"] = np.asarray(arr)[0].copy()
    out["activation"] = act
    return out


def diverging(value: float, scale: float) -> QColor:
    """Blue (negative) → grey (zero) → orange (positive), saturated at |value| = scale."""
    pal = theme.current()
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    zero = QColor(pal.gradient_zero)
    end = QColor(pal.gradient_positive if t >= 0 else pal.gradient_negative)
    a = abs(t) ** 0.7
    return QColor(round(zero.red() + (end.red() - zero.red()) * a),
                  round(zero.green() + (end.green() - zero.green()) * a),
                  round(zero.blue() + (end.blue() - zero.blue()) * a))


def _fmt(v: float) -> str:
    text = f"{v:.2f}" if abs(v) < 9.995 else f"{v:.0f}"
    if text in ("-0.00", "0.00"):
        return "0.00"
    return text.replace("-", "−")


class _Chip(QGraphicsSimpleTextItem):
    """A clickable word in the card header."""

    def __init__(self, text: str, on_click, parent):
        super().__init__(text, parent)
        self.on_click = on_click
        self.setFont(theme.small_font())
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)

    def mousePressEvent(self, event) -> None:
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        if self.contains(event.pos()):
            self.on_click()
        event.accept()


EXPLANATION = (
    "<b>What am I looking at?</b> The layer taken apart: each dot on the left is one input "
    "number, each dot on the right one neuron (its output, after the activation that follows "
    "when there is one). Every line is one weight W[i, j]: orange for positive, blue for "
    "negative, thicker when larger. Switch the lines to ∂L/∂W to see which weights the last "
    "step pushed hardest, and the dots to the first sample to follow one example through.")


class NeuronCard(QGraphicsObject):
    """The expanded view of one Dense layer (a child of its NodeItem).

    Its text uses the canvas fonts (sized in scene pixels, like the node titles): legible at
    the zoom a graph opens with, and as large as the rest of the canvas in presentation mode.
    """

    def __init__(self, node_item, n_in: int, units: int, views: NeuronViews):
        super().__init__(node_item)
        self.node_item, self.views = node_item, views
        self.n_in, self.units = n_in, units
        self.mode = "weight"  # or "gradient"
        self.sample = "mean"  # or "first"
        self.data: dict | None = None
        self.weights: np.ndarray | None = None  # the matrix the lines show (units × inputs)
        self.shown: np.ndarray | None = None  # weights or their gradients, as drawn
        rows = max(n_in, units)
        self.height = HEADER + rows * SPACING + 44  # room for the two footer lines
        self.setPos(-6, 22)
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        pal = theme.current()
        self.title = QGraphicsSimpleTextItem(self)
        self.title.setFont(theme.canvas_font("small", bold=True))
        self.title.setBrush(QColor(pal.text))
        self.title.setPos(10, 6)
        self.close_chip = _Chip("✕", self.views_collapse, self)
        self.close_chip.setFont(theme.title_font())
        self.close_chip.setBrush(QColor(pal.muted_text))
        self.close_chip.setPos(CARD_WIDTH - 20, 4)
        self.help_chip = _Chip("?", lambda: None, self)
        self.help_chip.setFont(theme.title_font())
        self.help_chip.setBrush(QColor(pal.muted_text))
        self.help_chip.setPos(CARD_WIDTH - 18, 26)
        self.help_chip.setToolTip(EXPLANATION)
        self.mode_chip = _Chip("", self.toggle_mode, self)
        self.mode_chip.setPos(10, 25)
        self.sample_chip = _Chip("", self.toggle_sample, self)
        self.sample_chip.setPos(10, 40)
        self.footer = QGraphicsSimpleTextItem(self)
        self.footer.setFont(theme.small_font())
        self.footer.setBrush(QColor(pal.muted_text))
        self.footer.setPos(10, self.height - 34)
        x_in, x_out = 40.0, CARD_WIDTH - 46.0
        self.in_pos = [QPointF(x_in, self._row_y(j, n_in)) for j in range(n_in)]
        self.out_pos = [QPointF(x_out, self._row_y(i, units)) for i in range(units)]
        self.lines: list[list[QGraphicsLineItem]] = []
        for i in range(units):
            row = []
            for j in range(n_in):
                line = QGraphicsLineItem(self.in_pos[j].x() + RADIUS, self.in_pos[j].y(),
                                         self.out_pos[i].x() - RADIUS, self.out_pos[i].y(), self)
                line.setPen(QPen(QColor(pal.gradient_zero), 1.0))
                row.append(line)
            self.lines.append(row)
        self.in_dots = [self._dot(p) for p in self.in_pos]
        self.out_dots = [self._dot(p) for p in self.out_pos]
        self.in_text = [self._label(p, left=True) for p in self.in_pos]
        self.out_text = [self._label(p, left=False) for p in self.out_pos]
        self._update_chips()

    def views_collapse(self) -> None:
        self.views.collapse(self.node_item.node_id)

    def _row_y(self, k: int, n: int) -> float:
        rows = max(self.n_in, self.units)
        top = HEADER + (rows - n) * SPACING / 2
        return top + (k + 0.5) * SPACING

    def _dot(self, p: QPointF) -> QGraphicsEllipseItem:
        dot = QGraphicsEllipseItem(p.x() - RADIUS, p.y() - RADIUS, 2 * RADIUS, 2 * RADIUS, self)
        dot.setPen(QPen(QColor(theme.current().node_border), 1.2))
        dot.setBrush(QBrush(QColor(theme.current().node_body)))
        dot.setZValue(2)
        return dot

    def _label(self, p: QPointF, left: bool) -> QGraphicsSimpleTextItem:
        t = QGraphicsSimpleTextItem(self)
        t.setFont(theme.canvas_font("wire"))
        t.setBrush(QColor(theme.current().text))
        t.setData(0, (p.x(), p.y(), left))
        return t

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, CARD_WIDTH, self.height).adjusted(-2, -2, 4, 5)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        pal = theme.current()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(0, 0, CARD_WIDTH, self.height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(pal.node_shadow))
        painter.drawRoundedRect(rect.translated(2, 3), 7, 7)
        painter.setBrush(QColor(pal.node_body))
        painter.setPen(QPen(QColor(pal.selection if self.node_item.isSelected()
                                   else pal.node_border), 1.4))
        painter.drawRoundedRect(rect, 7, 7)
        painter.setPen(QPen(QColor(pal.grid_major), 1))
        painter.drawLine(QPointF(8, HEADER - 6), QPointF(CARD_WIDTH - 8, HEADER - 6))

    # -- toggles --------------------------------------------------------------------------
    def _update_chips(self) -> None:
        pal = theme.current()
        mode = "lines:  ● weight   ○ gradient" if self.mode == "weight" \
            else "lines:  ○ weight   ● gradient"
        sample = "dots:  ● batch mean   ○ 1st sample" if self.sample == "mean" \
            else "dots:  ○ batch mean   ● 1st sample"
        for chip, text in ((self.mode_chip, mode), (self.sample_chip, sample)):
            chip.setText(text)
            chip.setBrush(QColor(pal.shape_text))

    def toggle_mode(self) -> None:
        self.mode = "gradient" if self.mode == "weight" else "weight"
        self._update_chips()
        self.apply()

    def toggle_sample(self) -> None:
        self.sample = "first" if self.sample == "mean" else "mean"
        self._update_chips()
        self.apply()

    # -- data -----------------------------------------------------------------------------
    def set_data(self, data: dict) -> None:
        self.data = data
        self.apply()

    def line_color(self, i: int, j: int) -> QColor:
        """The colour the line of W[i, j] should have for the current data and mode."""
        scale = float(np.max(np.abs(self.shown))) if self.shown is not None else 0.0
        return diverging(float(self.shown[i, j]), scale)

    def apply(self) -> None:
        d = self.data
        node_id = self.node_item.node_id
        if d is None:
            self.title.setText(f"{node_id} · {self.units} neurons × {self.n_in} inputs")
            self.footer.setText("Train a step to see the numbers.")
            return
        self.weights = d["weight"]
        self.shown = d["weight"] if self.mode == "weight" else d["weight_grad"]
        scale = float(np.max(np.abs(self.shown))) if self.shown.size else 0.0
        for i in range(self.units):
            for j in range(self.n_in):
                v = float(self.shown[i, j])
                t = 0.0 if scale <= 0 else abs(v) / scale
                line = self.lines[i][j]
                line.setPen(QPen(diverging(v, scale), 0.6 + 3.0 * t))
                line.setZValue(t)
                w, g = float(d["weight"][i, j]), float(d["weight_grad"][i, j])
                line.setToolTip(f"W[{i}, {j}] = {w:.4g}\n∂L/∂W[{i}, {j}] = {g:.4g}")
        key = "_mean" if self.sample == "mean" else "_first"
        act = d.get("activation") or ""
        self._fill(self.in_dots, self.in_text, d.get("x" + key), left=True)
        self._fill(self.out_dots, self.out_text, d.get("y" + key), left=False)
        what = "weights" if self.mode == "weight" else "∂L/∂W"
        self.title.setText(f"{node_id} · {self.units} neurons × {self.n_in} inputs")
        after = f" after {act}" if act else ""
        # two lines, so the footer stays inside the card's width
        self.footer.setText(f"{what}: |max| {scale:.3g}\ndots: output{after}")

    def _fill(self, dots, texts, values, left: bool) -> None:
        if values is None or len(values) != len(dots):
            return
        scale = float(np.max(np.abs(values))) or 1.0
        for dot, text, v in zip(dots, texts, values):
            dot.setBrush(QBrush(diverging(float(v), scale)))
            dot.setToolTip(f"{float(v):.4g}")
            text.setText(_fmt(float(v)))
            x, y, _left = text.data(0)
            br = text.boundingRect()
            if left:
                text.setPos(x - RADIUS - 4 - br.width(), y - br.height() / 2)
            else:
                text.setPos(x + RADIUS + 4, y - br.height() / 2)

    def contextMenuEvent(self, event) -> None:
        menu = QMenu()
        menu.addAction("Collapse to the Layer").triggered.connect(self.views_collapse)
        menu.addAction("Show Gradients" if self.mode == "weight" else "Show Weights"
                       ).triggered.connect(self.toggle_mode)
        menu.exec(event.screenPos())
        event.accept()


class NeuronViews(QObject):
    """Expanded Dense layers on one canvas, kept up to date from training."""

    def __init__(self, session, scene, view):
        super().__init__(scene)
        self.session, self.scene, self.view = session, scene, view
        self.cards: dict[str, NeuronCard] = {}
        self._pending: set[str] = set()
        self._last = 0.0
        self.toggle_action = QAction("Expand into Neurons", self)
        self.toggle_action.setStatusTip("Open the Dense layer into its neurons and weights")
        self.toggle_action.triggered.connect(lambda _c=False: self.toggle_selected())
        doc = scene.document
        doc.reset.connect(self._forget_all)
        doc.node_removed.connect(lambda node_id: self.cards.pop(node_id, None))
        doc.node_renamed.connect(self._renamed)
        doc.node_changed.connect(self._changed)
        scene.selectionChanged.connect(self._on_selection)
        session.report.connect(self._on_report)
        session.weights_reset.connect(self.refresh)

    # -- expanding ----------------------------------------------------------------------
    def layer_size(self, node_id: str) -> tuple[int, int] | None:
        """(inputs, units) of a Dense node from the document's shape analysis."""
        doc = self.scene.document
        if not doc.has_node(node_id) or doc.node(node_id).op != "Dense":
            return None
        analysis = doc.analysis()
        out = analysis.shapes.get(node_id)
        edge = doc.incoming(node_id, "in")
        src = analysis.shapes.get(edge.src) if edge is not None else None
        if not out or not src or len(out) != 2 or len(src) != 2:
            return None
        return int(src[1]), int(out[1])

    def expand(self, node_id: str) -> str | None:
        """Open a Dense layer; returns the reason when it cannot be."""
        if node_id in self.cards:
            return None
        size = self.layer_size(node_id)
        if size is None:
            return "Only a connected Dense layer can be expanded into neurons."
        n_in, units = size
        if n_in > MAX_UNITS or units > MAX_UNITS:
            return (f"'{node_id}' is {units} neurons × {n_in} inputs; the neuron view shows "
                    f"layers up to {MAX_UNITS} × {MAX_UNITS}.")
        item = self.scene.nodes.get(node_id)
        if item is None:
            return "That node is not on the canvas."
        card = NeuronCard(item, n_in, units, self)
        self.cards[node_id] = card
        item.setZValue(4)
        card.apply()
        self.refresh(node_id)
        self._update_action()
        return None

    def collapse(self, node_id: str) -> None:
        card = self.cards.pop(node_id, None)
        if card is not None:
            try:
                item = card.node_item
                card.setParentItem(None)
                if card.scene() is not None:
                    card.scene().removeItem(card)
                item.setZValue(1.5 if item.isSelected() else 1)
            except RuntimeError:
                pass
        self._update_action()

    def toggle_selected(self) -> None:
        ids = self.scene.selected_node_ids()
        if len(ids) != 1:
            self.view.message.emit("Select one Dense layer to expand into neurons.")
            return
        if ids[0] in self.cards:
            self.collapse(ids[0])
            return
        reason = self.expand(ids[0])
        if reason:
            self.view.message.emit(reason)

    def _forget_all(self) -> None:
        self.cards.clear()  # the scene rebuilt its items: the cards went with them
        self._update_action()

    def _renamed(self, old: str, new: str) -> None:
        if old in self.cards:
            self.cards[new] = self.cards.pop(old)
            self.refresh(new)

    def _changed(self, node_id: str) -> None:
        if node_id in self.cards and self.layer_size(node_id) != (
                self.cards[node_id].n_in, self.cards[node_id].units):
            self.collapse(node_id)

    def _on_selection(self) -> None:
        for card in self.cards.values():
            try:
                card.node_item.setZValue(4)  # stay above the neighbours
                card.update()
            except RuntimeError:
                pass
        self._update_action()

    def _update_action(self) -> None:
        try:
            ids = self.scene.selected_node_ids()
        except RuntimeError:
            return
        one = ids[0] if len(ids) == 1 else None
        is_dense = one is not None and self.scene.document.node(one).op == "Dense"
        self.toggle_action.setEnabled(is_dense)
        self.toggle_action.setText("Collapse Neurons" if one in self.cards
                                   else "Expand into Neurons")

    # -- data -----------------------------------------------------------------------------
    def _on_report(self, report) -> None:
        now = time.monotonic()
        if self.cards and (now - self._last >= REFRESH_S or not report.running):
            self._last = now
            self.refresh()

    def refresh(self, node_id: str | None = None) -> None:
        """Fetch the arrays of one (or every) expanded layer from the worker."""
        for nid in ([node_id] if node_id else list(self.cards)):
            if nid in self._pending or nid not in self.cards:
                continue
            self._pending.add(nid)
            self.session.run_on_worker(
                lambda program, _trainer, n=nid: layer_arrays(program, n),
                lambda data, n=nid: self._got(n, data),
                lambda _msg, n=nid: self._pending.discard(n))

    def _got(self, node_id: str, data: dict) -> None:
        self._pending.discard(node_id)
        card = self.cards.get(node_id)
        if card is None:
            return
        w = data["weight"]
        if w.shape != (card.units, card.n_in):
            return
        try:
            card.set_data(data)
        except RuntimeError:  # the item is gone
            self.cards.pop(node_id, None)

