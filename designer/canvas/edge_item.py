"""Wires: smooth cubic curves from an output port to an input port, through the wire's
reroute points if it has any.

The path is rebuilt only when an endpoint or a reroute point moves, never in ``paint``.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsSimpleTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from designer import theme
from designer.canvas.node_item import OUTLINE_ZOOM
from designer.canvas.note_item import RerouteItem
from engine.core.spec import EdgeSpec


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    """A horizontal-tangent cubic from a to b; loops round when b is left of a."""
    ax, ay, bx, by = a.x(), a.y(), b.x(), b.y()
    dx = bx - ax
    bend = max(40.0, abs(dx) * 0.5, min(abs(by - ay) * 0.5, 120.0) if dx < 0 else 0.0)
    path = QPainterPath(a)
    path.cubicTo(ax + bend, ay, bx - bend, by, bx, by)
    return path


def routed_path(a: QPointF, b: QPointF, points: list[QPointF]) -> QPainterPath:
    """A wire from a to b through reroute points: one smooth curve per stretch."""
    if not points:
        return wire_path(a, b)
    stops = [a, *points, b]
    path = QPainterPath(a)
    for start, end in zip(stops, stops[1:]):
        path.connectPath(wire_path(start, end))
    return path


class WireLabel(QGraphicsSimpleTextItem):
    """The shape text drawn at the middle of a wire, on a small rounded plate."""

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if option.levelOfDetailFromTransform(painter.worldTransform()) < OUTLINE_ZOOM:
            return  # unreadably small: nodes are plain cards at this zoom too
        pal = theme.current()
        painter.setPen(QPen(QColor(pal.node_border), 0.8))
        painter.setBrush(QColor(pal.label_background))
        painter.drawRoundedRect(self.boundingRect().adjusted(-3, -1, 3, 1), 4, 4)
        super().paint(painter, option, widget)


_shape_label: WireLabel | None = None  # draws every wire's shape text (never in a scene)
_label_sizes: dict[str, QRectF] = {}  # shape text -> its rectangle in that label's font


def _shape_label_painter() -> WireLabel:
    global _shape_label
    if _shape_label is None:
        _shape_label = WireLabel()
        _shape_label.setFont(theme.canvas_font("shape"))
    return _shape_label


def shape_label_rect(text: str) -> QRectF:
    """The rectangle (at 0, 0) a wire's shape text takes: measured once per text (a big
    graph repeats a few shapes on thousands of wires)."""
    rect = _label_sizes.get(text)
    if rect is None:
        label = _shape_label_painter()
        label.setText(text)
        rect = _label_sizes[text] = QRectF(label.boundingRect())
    return rect


_SELECTABLE = QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
_PLAIN_OPTION = QStyleOptionGraphicsItem()  # no selection state: the wire draws its own


class EdgeItem(QGraphicsPathItem):
    """One wire. Holds its EdgeSpec (ids and port names only).

    The shape text at the wire's middle is drawn by paint() rather than by a child item: a
    big file makes tens of thousands of wires, and one more item each doubled their cost
    when it opened (creating, indexing and moving them). It is drawn exactly as a child
    WireLabel would be (the same item class paints it), over the wire.
    """

    def __init__(self, edge: EdgeSpec):
        super().__init__()
        self.edge = edge
        self.problem: str | None = None
        self._hover = False
        self._bounds = QRectF()  # see _update_bounds
        self.setFlag(_SELECTABLE)
        self.setAcceptHoverEvents(True)  # z stays 0: under the nodes (z 1)
        self.label_text = ""
        self._label_brush = QColor()
        self._label_wanted = False
        self._label_pos: QPointF | None = None  # where the shape text sits, when shown
        self._label_box: QRectF | None = None  # what it covers (with its plate)
        self._ends = (QPointF(), QPointF())
        self.reroutes: list[RerouteItem] = []
        # Training overlay (designer.overlays): pen colour/width and a number label.
        self.overlay: tuple[QColor, float] | None = None
        self._value_label: WireLabel | None = None  # made when training first labels it
        # What restyle() picks for a plain wire, without its checks (a big file makes
        # tens of thousands of wires); set_label gives the label its colour.
        pen = theme.pen("wire", 2.2)
        if theme.wire_scale() != 1.0:
            pen.setWidthF(pen.widthF() * theme.wire_scale())
        # How far the rectangle reaches past the curve: half the hit stroke (or of the pen,
        # when wider) and 6 more, as Qt's rectangle of the stroke did.
        self._reach = max(6.0, pen.widthF() / 2) + 6.0
        self.setPen(pen)
        # What _update_bounds gives the empty path (set_ends builds the real one next).
        self._bounds = QRectF(-self._reach, -self._reach, 2 * self._reach, 2 * self._reach)

    @property
    def value_label(self) -> WireLabel:
        """The overlay's number above the wire (created on first use)."""
        if self._value_label is None:
            label = WireLabel(self)
            label.setFont(theme.canvas_font("wire"))
            label.setBrush(theme.color("text"))
            label.setVisible(False)
            label.setToolTip(self.toolTip())
            self._value_label = label
        return self._value_label

    def set_ends(self, a: QPointF, b: QPointF) -> None:
        """Rebuild the curve for new endpoints (the only place the path is built)."""
        if (a, b) == self._ends:
            return
        self._ends = (QPointF(a), QPointF(b))
        self._rebuild()

    def set_waypoints(self, points: list[tuple[float, float]]) -> None:
        """Show the wire's reroute points (scene coordinates) as draggable handles."""
        current = [(r.pos().x(), r.pos().y()) for r in self.reroutes]
        if current == [tuple(p) for p in points]:
            return
        for r in self.reroutes:
            r.setParentItem(None)
            if r.scene() is not None:
                r.scene().removeItem(r)
        self.reroutes = []
        for i, (x, y) in enumerate(points):
            handle = RerouteItem(i, self)
            handle.setPos(x, y)
            self.reroutes.append(handle)
        self._rebuild()

    def move_waypoints(self, points: list[tuple[float, float]]) -> None:
        """Move the existing reroute handles (same count) without rebuilding them."""
        for handle, (x, y) in zip(self.reroutes, points):
            handle.setPos(x, y)
        self._rebuild()

    def waypoint_positions(self) -> list[tuple[float, float]]:
        """Where the reroute handles are now (maybe mid-drag)."""
        return [(r.pos().x(), r.pos().y()) for r in self.reroutes]

    def reroute_dragged(self) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        a, b = self._ends
        path = routed_path(a, b, [r.pos() for r in self.reroutes])
        self.setPath(path)
        self._update_bounds(path)
        self._place_label()

    def set_label(self, text: str, visible: bool, brush: QColor | None = None) -> None:
        """The shape carried by this wire; shown only when wanted and known (`brush`: the
        theme's shape-text colour, passed in when every wire is labelled at once)."""
        if (text, visible) == (self.label_text, self._label_wanted):
            return
        self.label_text = text
        self._label_brush = brush if brush is not None else theme.color("shape_text")
        self._label_wanted = visible
        self._place_label()
        self.update()

    @property
    def label_visible(self) -> bool:
        """Whether the shape text is drawn (wanted, known, and the wire has room for it)."""
        return self._label_pos is not None

    def label_rect(self) -> QRectF | None:
        """The shape text's rectangle in scene coordinates, or None when it is not drawn."""
        if self._label_pos is None:
            return None
        return shape_label_rect(self.label_text).translated(self._label_pos)

    def set_problem(self, message: str | None) -> None:
        """Mark the wire as the cause of a compiler diagnostic (drawn red, message as tooltip)."""
        if message != self.problem:
            self.problem = message
            self.setToolTip(message or "")
            self.restyle()

    def set_overlay(self, color: QColor | None, width: float = 2.2, text: str = "") -> None:
        """Training overlay: wire colour and width and a number label; None clears it.

        Called for every wire about ten times a second while training: only what changed
        is touched (a new pen, a new label text), so unchanged wires cost no repaint.
        """
        overlay = None if color is None else (QColor(color), round(width, 1))
        text = text if color is not None else ""
        if overlay != self.overlay:
            self.overlay = overlay
            self.restyle()
        if self._value_label is None and not text:
            return
        if text != self.value_label.text():
            self.value_label.setText(text)
            self._place_label()

    def _place_label(self) -> None:
        if self._label_pos is None and self._value_label is None and not (
                self._label_wanted and self.label_text):
            return  # nothing shown, nothing to show (every wire as a big file opens)
        text = self.label_text
        r = shape_label_rect(text) if text else QRectF()
        a, b = self._ends
        # Only where the wire has room for it: a label must not sit on a node.
        room = abs(b.x() - a.x()) >= r.width() + 24 or abs(b.y() - a.y()) >= r.height() + 40
        shown = self._label_wanted and bool(text) and room
        mid = self.path().pointAtPercent(0.5) if shown else None
        pos = QPointF(mid.x() - r.width() / 2, mid.y() - r.height() / 2) if shown else None
        if pos != self._label_pos:
            # The plate and its 0.8 px border reach a little past the text.
            box = r.translated(pos).adjusted(-4, -2, 4, 2) if pos is not None else None
            if box != self._label_box:
                self.prepareGeometryChange()
                self._label_box = box
                self._update_bounds()
            self._label_pos = pos
        value = self._value_label
        if value is not None:
            v = value.boundingRect()
            value.setVisible(self.overlay is not None and bool(value.text())
                             and (abs(b.x() - a.x()) >= v.width() + 4
                                  or abs(b.y() - a.y()) >= v.height() + 40))
        if value is not None and value.isVisible():  # the overlay's number, above the wire
            mid = self.path().pointAtPercent(0.5)
            dy = r.height() / 2 if shown else 3
            self.value_label.setPos(mid.x() - v.width() / 2, mid.y() - dy - v.height() - 2)

    def restyle(self) -> None:
        """Re-pick the pen (hover, problem, overlay, theme; paint() draws the selection);
        does not touch the path."""
        if self.problem:
            p = theme.pen("wire_bad", 2.5)
        elif self.overlay is not None:
            p = QPen(self.overlay[0], self.overlay[1] + (0.8 if self._hover else 0.0))
            p.setCapStyle(Qt.PenCapStyle.RoundCap)
        else:
            p = theme.pen("wire", 3.0 if self._hover else 2.2)
        if theme.wire_scale() != 1.0:
            p.setWidthF(p.widthF() * theme.wire_scale())
        if p != self.pen():
            self.setPen(p)
            self._reach = max(6.0, p.widthF() / 2) + 6.0
            self._update_bounds()
        brush = theme.color("shape_text")
        if brush != self._label_brush:
            self._label_brush = brush
            if self._label_pos is not None:
                self.update()
        if self._value_label is not None:
            brush = theme.color("text")
            if self._value_label.brush() != brush:
                self._value_label.setBrush(brush)

    def setToolTip(self, text: str) -> None:
        """The wire's tooltip also shows over its labels (a "⚠ 0" label explains itself;
        CanvasScene.helpEvent shows it over the shape text)."""
        if text == super().toolTip():
            return  # clearing the overlay resets every wire's tooltip, mostly to the same
        super().setToolTip(text)
        if self._value_label is not None:
            self._value_label.setToolTip(text)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(12)
        return stroker.createStroke(self.path())

    def _update_bounds(self, path: QPainterPath | None = None) -> None:
        """Work out what boundingRect() returns, after the path, the pen or the shape text
        changed (each caller has let Qt read the old one first: setPath, setPen and
        prepareGeometryChange do). Qt's own rectangle strokes the path (shape()) for every
        new wire; the curve's own rectangle, widened by the hit stroke's half and by 6 as
        before (or by the pen, when wider), holds everything painted or hit."""
        reach = self._reach
        rect = (path or self.path()).boundingRect().adjusted(-reach, -reach, reach, reach)
        if self._label_box is not None:
            rect = rect.united(self._label_box)
        self._bounds = rect

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        # The selection pen is picked here rather than in an itemChange override: that
        # Python hook would run for every change of every wire (14 per wire opening a file).
        pen = self.pen()
        if self.isSelected():
            pen = theme.pen("wire_selected", 3.0 * theme.wire_scale())
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())
        if self._label_pos is not None and option.levelOfDetailFromTransform(
                painter.worldTransform()) >= OUTLINE_ZOOM:  # else too small to read
            label = _shape_label_painter()
            if label.text() != self.label_text:
                label.setText(self.label_text)
            if label.brush().color() != self._label_brush:
                label.setBrush(self._label_brush)
            painter.save()
            painter.translate(self._label_pos)
            label.paint(painter, _PLAIN_OPTION, widget)
            painter.restore()

    def set_hover(self, on: bool) -> None:
        """Draw the wire highlighted (the mouse, or a node about to be dropped into it)."""
        if on != self._hover:
            self._hover = on
            self.restyle()

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.restyle()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.restyle()
        super().hoverLeaveEvent(event)


class DragWire(QGraphicsPathItem):
    """The temporary wire that follows the mouse while connecting."""

    def __init__(self):
        super().__init__()
        self.setZValue(5)
        self.state: str | None = None
        self.set_state(None)

    def set_state(self, state: str | None) -> None:
        """None (neutral), "ok" (would connect) or "bad" (would be refused)."""
        self.state = state
        name = {"ok": "wire_ok", "bad": "wire_bad"}.get(state or "", "wire_selected")
        self.setPen(theme.pen(name, 2.5, Qt.PenStyle.DashLine if state != "ok" else
                              Qt.PenStyle.SolidLine))

    def set_ends(self, a: QPointF, b: QPointF) -> None:
        self.setPath(wire_path(a, b))
