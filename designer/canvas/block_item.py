"""Blocks on the canvas: a closed block is one node (`BlockItem`), an open block is a titled
frame drawn behind its nodes (`BlockFrame`).

A closed block's ports are the wires crossing its border (designer.document.blocks). Each
port is an ordinary PortItem that names the *inner* node and port, so connecting to a block
is connecting to the node inside it, and the wire's gradient colour is that wire's.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from designer import theme
from designer.canvas.node_item import BODY_PAD, CORNER, HEADER_HEIGHT, ROW_HEIGHT, CardItem
from designer.canvas.port_item import PortItem
from designer.document.blocks import BlockPorts

BLOCK_WIDTH = 196.0
BLOCK_COLOR = theme.CATEGORY_COLORS["Blocks"]
FOOTER_HEIGHT = 18.0
FRAME_MARGIN = 16.0


def _local(node_id: str, group_id: str) -> str:
    """An inner node's name without the block prefix: "res/dense1" -> "dense1"."""
    prefix = f"{group_id}/"
    return node_id[len(prefix):] if node_id.startswith(prefix) else node_id


class BlockItem(CardItem):
    """A closed block: its title, its id, one port per crossing wire, and what is inside."""

    card_width = BLOCK_WIDTH

    def __init__(self, group_id: str, title: str, ports: BlockPorts, size_text: str):
        super().__init__()
        self.group_id = group_id
        self.title = title
        self.size_text = size_text
        self.block_ports = ports
        self.inputs: dict[tuple[str, str], PortItem] = {}
        self.outputs: dict[str, PortItem] = {}
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(1)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.set_ports(ports)

    @property
    def height(self) -> float:
        rows = max(1, len(self.block_ports.inputs), len(self.block_ports.outputs))
        return HEADER_HEIGHT + rows * ROW_HEIGHT + 2 * BODY_PAD + FOOTER_HEIGHT

    def set_ports(self, ports: BlockPorts) -> None:
        """Rebuild the ports (the wires crossing the border changed)."""
        self.prepareGeometryChange()
        for port in list(self.inputs.values()) + list(self.outputs.values()):
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        self.block_ports = ports
        self.inputs, self.outputs = {}, {}
        top = HEADER_HEIGHT + BODY_PAD
        for i, (node, name) in enumerate(ports.inputs):
            item = PortItem(node, name, False, help_text=f"Goes to {node}.{name} inside the block",
                            parent=self)
            item.setPos(0, top + ROW_HEIGHT * (i + 0.5))
            self.inputs[(node, name)] = item
        for i, node in enumerate(ports.outputs):
            item = PortItem(node, "out", True, help_text=f"The output of {node} inside the block",
                            parent=self)
            item.setPos(BLOCK_WIDTH, top + ROW_HEIGHT * (i + 0.5))
            self.outputs[node] = item
        self.update()

    def set_content(self, title: str, size_text: str) -> None:
        if (title, size_text) != (self.title, self.size_text):
            self.title, self.size_text = title, size_text
            self.update()

    def ports(self) -> list[PortItem]:
        return list(self.inputs.values()) + list(self.outputs.values())

    def port(self, node_id: str, name: str, is_output: bool) -> PortItem | None:
        return self.outputs.get(node_id) if is_output else self.inputs.get((node_id, name))

    def port_scene_pos(self, node_id: str, name: str, is_output: bool) -> QPointF:
        """Where a wire of an inner node attaches: its port, else the block's side."""
        port = self.port(node_id, name, is_output)
        if port is not None:
            return port.scenePos()
        x = BLOCK_WIDTH if is_output else 0.0
        return self.mapToScene(QPointF(x, HEADER_HEIGHT / 2))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = theme.current()
        rect = self.rect()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(pal.node_shadow))
        # A second card behind the first: "there is more than one node in here".
        painter.drawRoundedRect(rect.translated(4, 4), CORNER, CORNER)
        painter.setBrush(QColor(pal.node_body))
        painter.setPen(QPen(QColor(pal.node_border), 1.0))
        painter.drawRoundedRect(rect.translated(3, 3), CORNER, CORNER)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(rect, CORNER, CORNER)
        header = QPainterPath()
        header.addRoundedRect(self.header_rect(), CORNER, CORNER)
        square = QPainterPath()
        square.addRect(QRectF(0, HEADER_HEIGHT / 2, BLOCK_WIDTH, HEADER_HEIGHT / 2))
        painter.setBrush(QColor(BLOCK_COLOR))
        painter.drawPath(header.united(square))
        border = (QPen(QColor(pal.selection), 2.0) if self.isSelected()
                  else QPen(QColor(BLOCK_COLOR), 1.4))
        painter.setPen(border)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, CORNER, CORNER)

        pad = 9.0
        tfont = theme.title_font()
        tm = QFontMetricsF(tfont)
        painter.setFont(tfont)
        painter.setPen(QColor("#ffffff"))
        room = BLOCK_WIDTH - 2 * pad
        title = tm.elidedText("▣ " + self.title, Qt.TextElideMode.ElideRight, room - 34)
        text_rect = QRectF(pad, 0, room, HEADER_HEIGHT)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         title)
        sfont = theme.small_font()
        sm = QFontMetricsF(sfont)
        painter.setFont(sfont)
        id_room = room - tm.horizontalAdvance(title) - 8
        if id_room > 12:
            painter.setPen(QColor(255, 255, 255, 200))
            painter.drawText(text_rect,
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             sm.elidedText(self.group_id, Qt.TextElideMode.ElideMiddle, id_room))

        painter.setPen(QColor(pal.muted_text))
        half = BLOCK_WIDTH / 2 - 12
        for (node, name), port in self.inputs.items():
            label = _local(node, self.group_id) + ("" if name == "in" else f".{name}")
            painter.drawText(QRectF(10, port.pos().y() - ROW_HEIGHT / 2, half, ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             sm.elidedText(label, Qt.TextElideMode.ElideMiddle, half))
        for node, port in self.outputs.items():
            label = _local(node, self.group_id)
            painter.drawText(QRectF(BLOCK_WIDTH / 2, port.pos().y() - ROW_HEIGHT / 2, half,
                                    ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             sm.elidedText(label, Qt.TextElideMode.ElideMiddle, half))
        footer = QRectF(10, rect.bottom() - FOOTER_HEIGHT - 2, BLOCK_WIDTH - 20, FOOTER_HEIGHT)
        painter.setPen(QColor(pal.shape_text))
        painter.drawText(footer, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         sm.elidedText(self.size_text, Qt.TextElideMode.ElideRight,
                                       footer.width()))


class BlockFrame(QGraphicsItem):
    """An open block: a tinted, titled rectangle behind its nodes. Double-click the title
    bar to close the block again."""

    def __init__(self, group_id: str, title: str):
        super().__init__()
        self.group_id = group_id
        self.title = title
        self._rect = QRectF()
        self.setZValue(-1)
        self.setAcceptHoverEvents(True)
        self.setToolTip("Double-click the title bar to close the block.")

    def set_frame(self, members_rect: QRectF, title: str) -> None:
        """Surround the nodes' scene rectangle, with room for the title above."""
        rect = members_rect.adjusted(-FRAME_MARGIN, -FRAME_MARGIN - HEADER_HEIGHT,
                                     FRAME_MARGIN, FRAME_MARGIN)
        if rect != self._rect or title != self.title:
            self.prepareGeometryChange()
            self._rect, self.title = rect, title
            self.update()

    def header_rect(self) -> QRectF:
        return QRectF(self._rect.left(), self._rect.top(), self._rect.width(), HEADER_HEIGHT)

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-2, -2, 2, 2)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.header_rect())  # only the title bar takes clicks
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        fill = QColor(BLOCK_COLOR)
        fill.setAlpha(28)
        painter.setPen(QPen(QColor(BLOCK_COLOR), 1.4, Qt.PenStyle.DashLine))
        painter.setBrush(fill)
        painter.drawRoundedRect(self._rect, CORNER + 2, CORNER + 2)
        head = QColor(BLOCK_COLOR)
        head.setAlpha(210)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(head)
        painter.drawRoundedRect(self.header_rect(), CORNER + 2, CORNER + 2)
        painter.setFont(theme.title_font())
        painter.setPen(QColor("#ffffff"))
        painter.drawText(self.header_rect().adjusted(10, 0, -10, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         f"▣ {self.title}  ·  {self.group_id}  (open)")
