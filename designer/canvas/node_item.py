"""A node on the canvas: coloured header with the op summary and the node id, ports, shape.

The item holds only its node id (and what it last painted); the scene feeds it from the
document and the compiler's analysis. No widgets are embedded in nodes.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from designer import theme
from designer.canvas.port_item import DEVICE_CACHE, PortItem
from engine.core import registry
from engine.ops.base import OpDef

NODE_WIDTH = 152.0
HEADER_HEIGHT = 26.0
ROW_HEIGHT = 20.0
BODY_PAD = 6.0
CORNER = 6.0
GRID_SIZE = 20.0
OUTLINE_ZOOM = 0.4  # below this zoom nodes are drawn as plain cards (level of detail)
_MOVABLE_SELECTABLE = (QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                       | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)

class ErrorBadge(QGraphicsItem):
    """The red "!" in a node's corner; its tooltip is the compiler's message."""

    SIZE = 16.0

    def __init__(self, parent: QGraphicsItem):
        super().__init__(parent)
        self.setZValue(3)
        self.setAcceptHoverEvents(True)

    def boundingRect(self) -> QRectF:
        return QRectF(-self.SIZE / 2, -self.SIZE / 2, self.SIZE, self.SIZE)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setPen(QPen(QColor("#ffffff"), 1.5))
        painter.setBrush(QBrush(theme.color("error")))
        painter.drawEllipse(self.boundingRect().adjusted(1, 1, -1, -1))
        painter.setFont(theme.ui_font(8.5, bold=True))
        painter.drawText(self.boundingRect(), Qt.AlignmentFlag.AlignCenter, "!")


class CardItem(QGraphicsItem):
    """What nodes and closed blocks share: a rounded card `card_width` wide under a header.

    Cards have no Python ``itemChange``: Qt would call it for every change of every card
    (about 16 per node while a file opens). The scene does that work instead: it moves the
    wires after a drag step or a document move, snaps while the user drags and raises the
    selected cards (CanvasScene.cards_moved, _raise_selected)."""

    card_width = NODE_WIDTH

    @property
    def height(self) -> float:
        raise NotImplementedError

    def rect(self) -> QRectF:
        return QRectF(0, 0, self.card_width, self.height)

    def header_rect(self) -> QRectF:
        return QRectF(0, 0, self.card_width, HEADER_HEIGHT)

    def boundingRect(self) -> QRectF:
        return self.rect().adjusted(-3, -3, 5, 6)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.rect(), CORNER, CORNER)
        return path


class NodeItem(CardItem):
    """One node. ``node_id`` is the only link to the document."""

    def __init__(self, node_id: str, op_id: str):
        super().__init__()
        self.node_id = node_id
        self.op_id = op_id
        self.op: OpDef | None = registry.get(op_id)
        self.title = op_id
        self.shape_text = ""
        self.problems: list[str] = []
        self.id_prefix = ""  # "block/" while the node is shown inside its open block
        # The port items are made when the node is first shown or asked for them (see
        # build_ports); until then where they go and which are wired is known without them.
        self._inputs: dict[str, PortItem] = {}
        self._output: PortItem | None = None
        self.has_ports = False
        self._wired: frozenset[tuple[str, bool]] = frozenset()
        self.setFlags(_MOVABLE_SELECTABLE)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        # Painted once into a pixmap and blitted afterwards: wires restyled by the training
        # overlay repaint the area around nodes ten times a second, and a Python paint()
        # there would take the GIL from the training thread. update() refreshes the pixmap.
        self.setCacheMode(DEVICE_CACHE)
        n_in = len(self.op.inputs) if self.op else 0
        self._body_height = max(1, n_in) * ROW_HEIGHT + 2 * BODY_PAD
        self._bounds = QRectF(0, 0, NODE_WIDTH, self.height).adjusted(-3, -3, 5, 6)
        self._port_places = _port_places(self.op)
        self._badge: ErrorBadge | None = None  # made when the node first has a problem

    # -- geometry ------------------------------------------------------------------------
    @property
    def height(self) -> float:
        return HEADER_HEIGHT + self._body_height

    def boundingRect(self) -> QRectF:
        return self._bounds  # fixed: asked for every node by the index and each repaint

    @property
    def badge(self) -> ErrorBadge:
        """The error badge (created on first use: most nodes never need one)."""
        if self._badge is None:
            self._badge = ErrorBadge(self)
            self._badge.setPos(NODE_WIDTH - 2, 0)
            self._badge.setVisible(False)
        return self._badge

    def build_ports(self) -> None:
        """Make the port items (once). A big file opens with most nodes off screen: their
        ports are made when the canvas first paints or hit-tests them
        (CanvasScene.ensure_ports), which halves the items made while it opens."""
        if self.has_ports:
            return
        self.has_ports = True
        scene = self.scene()
        if scene is not None and hasattr(scene, "ports_made"):
            scene.ports_made(self.node_id)
        if self.op is None:
            return
        places = self._port_places
        for port in self.op.inputs:
            item = PortItem(self.node_id, port.name, False, port.optional, port.help, self)
            item.offset = places[(port.name, False)]
            item.setPos(*item.offset)
            item.connected = (port.name, False) in self._wired
            self._inputs[port.name] = item
        self._output = item = PortItem(self.node_id, "out", True, parent=self)
        item.offset = places[("out", True)]
        item.setPos(*item.offset)
        item.connected = ("out", True) in self._wired

    @property
    def inputs(self) -> dict[str, PortItem]:
        """The input port items by name (made if they were not yet)."""
        self.build_ports()
        return self._inputs

    @property
    def output(self) -> PortItem | None:
        """The output port item (made if it was not yet); None for an unknown op."""
        self.build_ports()
        return self._output

    def ports(self) -> list[PortItem]:
        """Every port, inputs first."""
        return list(self.inputs.values()) + ([self.output] if self.output else [])

    def port(self, name: str, is_output: bool) -> PortItem | None:
        return self.output if is_output else self.inputs.get(name)

    def set_wired(self, wired: frozenset[tuple[str, bool]]) -> None:
        """Which ports have a wire, as (name, is_output): they are drawn filled."""
        self._wired = wired
        if self.has_ports:
            for port in self.ports():
                port.set_connected((port.name, port.is_output) in wired)

    def port_scene_pos(self, name: str, is_output: bool) -> QPointF:
        """Where a wire attaches, in scene coordinates.

        Added up from the node's position and the port's fixed place on it rather than
        asked of Qt (port.scenePos()): a node is a top-level item that is never scaled or
        rotated, and a big file attaches tens of thousands of wires as it opens."""
        place = self._port_places.get((name, is_output))
        if place is None:  # a wire into a port the op lacks: attach at the left edge
            place = (0.0, HEADER_HEIGHT / 2)
        return QPointF(self.x() + place[0], self.y() + place[1])

    # -- content -------------------------------------------------------------------------
    def set_content(self, title: str, shape_text: str, problems: list[str]) -> None:
        """What the node shows: op summary, inferred output shape, compiler messages."""
        if (title, shape_text, problems) == (self.title, self.shape_text, self.problems):
            return
        self.title, self.shape_text, self.problems = title, shape_text, list(problems)
        if problems or self._badge is not None:
            self.badge.setVisible(bool(problems))
            self.badge.setToolTip("<br><br>".join(_html(p) for p in problems))
        self.update()

    def set_node_id(self, node_id: str) -> None:
        """Follow a rename."""
        self.node_id = node_id
        for port in self.ports() if self.has_ports else ():
            port.node_id = node_id
        self.update()

    def set_id_prefix(self, prefix: str) -> None:
        """Inside an open block, its frame names the block: the title drops that prefix."""
        if prefix != self.id_prefix:
            self.id_prefix = prefix
            self.update()

    def toolTip(self) -> str:
        """Written when asked (CanvasScene.helpEvent), not stored: setting thousands of
        tooltips that are never shown made opening big graphs slow."""
        if self.op is None:
            return f"<b>{self.node_id}</b>: unknown op '{_html(self.op_id)}'"
        tip = f"<b>{_html(self.node_id)}</b> · {self.op.id}<br>{_html(self.op.description)}"
        if self.shape_text:
            tip += f"<br>Output: <tt>{self.shape_text}</tt>"
        return tip

    # -- painting ------------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = theme.current()
        rect = self.rect()
        category = self.op.category if self.op else ""
        head = theme.category_color(category)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < OUTLINE_ZOOM:
            # Zoomed far out the text would be a few pixels high: a coloured card is what
            # the eye can use, and it paints thousands of nodes in a frame.
            painter.setPen(QPen(QColor(pal.selection if self.isSelected() else
                                       pal.error if self.problems else pal.node_border), 2.0))
            painter.setBrush(QColor(pal.node_body))
            painter.drawRect(rect)
            painter.fillRect(self.header_rect(), head)
            return

        # Shadow, body, header.
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(pal.node_shadow))
        painter.drawRoundedRect(rect.translated(1.5, 2.5), CORNER, CORNER)
        painter.setBrush(QColor(pal.node_body))
        painter.drawRoundedRect(rect, CORNER, CORNER)
        header = QPainterPath()
        header.addRoundedRect(self.header_rect(), CORNER, CORNER)
        square = QPainterPath()
        square.addRect(QRectF(0, HEADER_HEIGHT / 2, NODE_WIDTH, HEADER_HEIGHT / 2))
        painter.setBrush(head)
        painter.drawPath(header.united(square))

        # Border: selection wins, then errors.
        if self.isSelected():
            border = QPen(QColor(pal.selection), 2.0)
        elif self.problems:
            border = QPen(QColor(pal.error), 1.5)
        else:
            border = QPen(QColor(pal.node_border), 1.0)
        painter.setPen(border)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, CORNER, CORNER)

        # Header text: summary (bold) left, id right (elided to fit).
        pad = 9.0
        tfont = theme.title_font()
        painter.setFont(tfont)
        tm = QFontMetricsF(tfont)
        room = NODE_WIDTH - 2 * pad - (12 if self.problems else 0)
        # The summary comes first; the id takes what is left (elided in the middle).
        title = tm.elidedText(self.title, Qt.TextElideMode.ElideRight, room - 30)
        title_w = tm.horizontalAdvance(title)
        painter.setPen(QColor("#ffffff"))
        text_rect = QRectF(pad, 0, room, HEADER_HEIGHT)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         title)
        sfont = theme.small_font()
        painter.setFont(sfont)
        sm = QFontMetricsF(sfont)
        id_room = room - title_w - 8
        if id_room > 12:
            shown = self.node_id
            if self.id_prefix and shown.startswith(self.id_prefix):
                shown = shown[len(self.id_prefix):]
            node_id = sm.elidedText(shown, Qt.TextElideMode.ElideMiddle, id_room)
            painter.setPen(QColor(255, 255, 255, 200))
            painter.drawText(text_rect,
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, node_id)

        # Port names inside the body when there is more than one input.
        names = [p.name for p in self.op.inputs] if self.op else []
        if len(names) > 1:
            painter.setPen(QColor(pal.muted_text))
            for name in names:
                y = self._port_places[(name, False)][1]
                painter.drawText(QRectF(10, y - ROW_HEIGHT / 2, NODE_WIDTH / 2, ROW_HEIGHT),
                                 Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)

        # Output shape, right-aligned next to the output port.
        body = QRectF(10, HEADER_HEIGHT, NODE_WIDTH - 22, self._body_height)
        if self.shape_text:
            painter.setFont(theme.canvas_font("shape"))
            painter.setPen(QColor(pal.shape_text))
            align = Qt.AlignmentFlag.AlignVCenter | (
                Qt.AlignmentFlag.AlignRight if len(names) > 1
                else Qt.AlignmentFlag.AlignHCenter)
            painter.drawText(body, align, self.shape_text)
        elif self.problems:
            painter.setFont(sfont)
            painter.setPen(QColor(pal.error))
            painter.drawText(body, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             "shape unknown")

_places: dict[str, dict[tuple[str, bool], tuple[float, float]]] = {}


def _port_places(op: OpDef | None) -> dict[tuple[str, bool], tuple[float, float]]:
    """Where an op's ports sit on its node, by (name, is_output): the same for every node
    of the op, worked out once."""
    if op is None:
        return {}
    places = _places.get(op.id)
    if places is None:
        body = max(1, len(op.inputs)) * ROW_HEIGHT + 2 * BODY_PAD
        places = {(port.name, False): (0.0, HEADER_HEIGHT + BODY_PAD + ROW_HEIGHT * (i + 0.5))
                  for i, port in enumerate(op.inputs)}
        places[("out", True)] = (NODE_WIDTH, HEADER_HEIGHT + body / 2)
        _places[op.id] = places
    return places


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
