"""A port: the small circle on a node's edge where wires start (output) or end (input)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from designer import theme

PORT_RADIUS = 5.5
HIT_RADIUS = 10.0  # generous hit area: ports are small targets
_BOUNDS = QRectF(-HIT_RADIUS, -HIT_RADIUS, 2 * HIT_RADIUS, 2 * HIT_RADIUS)
# Looked up once: reading a Qt enum member costs a Python call, and a big file makes
# tens of thousands of cards and ports.
DEVICE_CACHE = QGraphicsItem.CacheMode.DeviceCoordinateCache


class PortItem(QGraphicsItem):
    """One port of a node. Holds only the node id, the port name and its direction."""

    def __init__(self, node_id: str, name: str, is_output: bool, optional: bool = False,
                 help_text: str = "", parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self.node_id = node_id
        self.name = name
        self.is_output = is_output
        self.optional = optional
        self.connected = False
        self.highlight: str | None = None  # None, "ok" or "bad" while a wire is dragged
        self._hover = False
        self.setAcceptHoverEvents(True)
        # No z value: a child is drawn over its parent anyway, and under the badge (z 3).
        self.setCacheMode(DEVICE_CACHE)  # see NodeItem
        self.help_text = help_text
        self.offset = (0.0, 0.0)  # where the card that builds it places it (its pos())

    def toolTip(self) -> str:
        """Written when asked, like NodeItem.toolTip."""
        kind = "output" if self.is_output else ("optional input" if self.optional else "input")
        tip = f"<b>{self.name}</b> <i>({kind})</i>"
        if self.help_text:
            tip += f"<br>{self.help_text}"
        return tip + "<br><small>Drag to connect.</small>"

    def boundingRect(self) -> QRectF:
        return _BOUNDS

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = theme.current()
        r = PORT_RADIUS + (1.5 if self._hover or self.highlight else 0.0)
        border = pal.port_border
        if self.highlight == "ok":
            border = pal.wire_ok
        elif self.highlight == "bad":
            border = pal.wire_bad
        elif self._hover:
            border = pal.port_hover
        painter.setPen(QPen(QColor(border), 1.5))
        fill = border if (self.connected or self._hover or self.highlight) else pal.port_fill
        painter.setBrush(QBrush(QColor(fill)))
        if self.optional and not self.connected and not self._hover:
            painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(QPointF(0, 0), r, r)

    def set_hover(self, on: bool) -> None:
        """Light the port up (the mouse is over it, or a dragged wire would land here)."""
        if on != self._hover:
            self._hover = on
            self.update()

    def set_highlight(self, state: str | None) -> None:
        """Mark the port as a good ("ok") or refused ("bad") target of the dragged wire."""
        if state != self.highlight:
            self.highlight = state
            self.update()

    def set_connected(self, on: bool) -> None:
        if on != self.connected:
            self.connected = on
            self.update()

    def hoverEnterEvent(self, event) -> None:
        if not self.hasCursor():  # set on first hover: 50,000 ports open with a big graph
            self.setCursor(Qt.CursorShape.CrossCursor)
        self.set_hover(True)
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self.set_hover(False)
        super().hoverLeaveEvent(event)
