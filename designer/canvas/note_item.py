"""Annotations on the canvas: sticky notes, comment frames and wire reroute points.

They are for people only: saved in the file, never seen by the compiler. Items hold ids; the
scene turns their gestures into controller calls (move on release, resize, edit text).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QTextOption
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from designer import theme

NOTE_COLOR = "#fff1a8"
NOTE_TEXT = "#3b3413"
FRAME_COLOR = "#5b7fb8"
GRIP = 12.0
MIN_SIZE = 60.0
REROUTE_RADIUS = 5.0


class NoteItem(QGraphicsItem):
    """A sticky note (kind "note") or a comment frame (kind "frame") with editable text.

    Drag the body to move, the bottom-right corner to resize; double-click to edit the text
    (Escape or clicking elsewhere ends the edit).
    """

    def __init__(self, note_id: str, kind: str, text: str, size: tuple[float, float]):
        super().__init__()
        self.note_id = note_id
        self.kind = kind
        self.text = text
        self.size = size
        self.resizing_from: QRectF | None = None
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-2 if kind == "frame" else 0.5)
        self.editor = QGraphicsTextItem(self)
        self.editor.setDefaultTextColor(QColor(NOTE_TEXT if kind == "note" else "#ffffff"))
        self.editor.setFont(theme.ui_font(10 if kind == "note" else 10.5, bold=kind == "frame"))
        self.editor.setPos(6, 4)
        self.editor.document().setDefaultTextOption(QTextOption(
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop))
        self.editor.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.set_content(text, size)

    def set_content(self, text: str, size: tuple[float, float]) -> None:
        """Show the document's text and size (not while the user is typing)."""
        self.prepareGeometryChange()
        self.size = (float(size[0]), float(size[1]))
        if not self.editing:
            self.text = text
            self.editor.setPlainText(text)
        self.editor.setTextWidth(max(20.0, self.size[0] - 12))
        self.update()

    @property
    def editing(self) -> bool:
        return self.editor.textInteractionFlags() != Qt.TextInteractionFlag.NoTextInteraction

    def start_editing(self) -> None:
        self.editor.setTextInteractionFlags(Qt.TextInteractionFlag.TextEditorInteraction)
        self.editor.setFocus(Qt.FocusReason.MouseFocusReason)

    def finish_editing(self) -> str | None:
        """Leave text editing; returns the new text if it changed."""
        if not self.editing:
            return None
        self.editor.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        cursor = self.editor.textCursor()
        cursor.clearSelection()
        self.editor.setTextCursor(cursor)
        text = self.editor.toPlainText()
        return text if text != self.text else None

    def rect(self) -> QRectF:
        return QRectF(0, 0, self.size[0], self.size[1])

    def scene_rect(self) -> tuple[float, float, float, float]:
        return (self.pos().x(), self.pos().y(), self.size[0], self.size[1])

    def boundingRect(self) -> QRectF:
        return self.rect().adjusted(-2, -2, 4, 4)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        if self.kind == "frame":  # a frame takes clicks on its title band and its grip only
            path.addRect(QRectF(0, 0, self.size[0], 28))
            path.addRect(self.grip_rect())
        else:
            path.addRect(self.rect())
        return path

    def grip_rect(self) -> QRectF:
        return QRectF(self.size[0] - GRIP, self.size[1] - GRIP, GRIP, GRIP)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = theme.current()
        rect = self.rect()
        selected = self.isSelected()
        if self.kind == "note":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(pal.node_shadow))
            painter.drawRoundedRect(rect.translated(1.5, 2.5), 3, 3)
            painter.setBrush(QColor(NOTE_COLOR))
            painter.setPen(QPen(QColor(pal.selection), 2.0) if selected
                           else QPen(QColor("#d8c56a"), 1.0))
            painter.drawRoundedRect(rect, 3, 3)
        else:
            fill = QColor(FRAME_COLOR)
            fill.setAlpha(30)
            painter.setBrush(fill)
            painter.setPen(QPen(QColor(pal.selection), 2.0) if selected
                           else QPen(QColor(FRAME_COLOR), 1.2))
            painter.drawRoundedRect(rect, 6, 6)
            band = QColor(FRAME_COLOR)
            band.setAlpha(200)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(band)
            painter.drawRoundedRect(QRectF(0, 0, self.size[0], 28), 6, 6)
        # The resize grip: three small diagonal strokes in the corner.
        painter.setPen(QPen(QColor(pal.muted_text), 1.0))
        r = self.grip_rect()
        for k in (3, 6, 9):
            painter.drawLine(QPointF(r.right() - k, r.bottom() - 1),
                             QPointF(r.right() - 1, r.bottom() - k))

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.grip_rect().contains(
                event.pos()):
            self.resizing_from = QRectF(self.pos(), self.rect().size())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self.resizing_from is not None:
            w = max(MIN_SIZE, event.pos().x())
            h = max(MIN_SIZE / 2, event.pos().y())
            self.prepareGeometryChange()
            self.size = (w, h)
            self.editor.setTextWidth(max(20.0, w - 12))
            self.update()
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self.resizing_from is not None:
            self.resizing_from = None
            resized = getattr(self.scene(), "note_resized", None)
            if resized is not None:
                resized(self)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        self.start_editing()
        event.accept()


class RerouteItem(QGraphicsItem):
    """A reroute point of a wire: drag it to bend the wire, double-click it to remove it."""

    def __init__(self, index: int, parent: QGraphicsItem):
        super().__init__(parent)
        self.index = index
        self.press_pos: QPointF | None = None
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setZValue(2)
        self.setToolTip("Drag to bend the wire; double-click to remove this point.")

    def boundingRect(self) -> QRectF:
        r = REROUTE_RADIUS + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = theme.current()
        painter.setPen(QPen(QColor(pal.port_border), 1.5))
        painter.setBrush(QColor(pal.port_fill))
        painter.drawEllipse(QPointF(0, 0), REROUTE_RADIUS, REROUTE_RADIUS)

    def mousePressEvent(self, event) -> None:
        self.press_pos = QPointF(self.pos())
        super().mousePressEvent(event)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            parent = self.parentItem()
            if parent is not None and hasattr(parent, "reroute_dragged"):
                parent.reroute_dragged()
        return super().itemChange(change, value)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        moved = self.press_pos is not None and self.pos() != self.press_pos
        self.press_pos = None
        done = getattr(self.scene(), "reroute_released", None)
        if moved and done is not None:
            done(self.parentItem())

    def mouseDoubleClickEvent(self, event) -> None:
        remove = getattr(self.scene(), "reroute_removed", None)
        if remove is not None:
            remove(self.parentItem(), self.index)
        event.accept()
