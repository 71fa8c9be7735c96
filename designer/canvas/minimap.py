"""The minimap: an overview of the whole graph in the canvas's corner.

Shown only while the graph does not fit in the view. Nodes, blocks and notes are drawn as
small rectangles with the part the view shows outlined; click or drag on it to look
elsewhere. Item rectangles are gathered once per document revision, so panning only
repaints this small widget.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from designer import theme
from designer.canvas.block_item import BLOCK_COLOR
from designer.canvas.note_item import FRAME_COLOR, NOTE_COLOR

MINIMAP_SIZE = (180, 110)
MARGIN = 12


class Minimap(QWidget):
    """Overview of a CanvasView's scene; a child widget floating over the view."""

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.setFixedSize(*MINIMAP_SIZE)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview of the graph: click or drag to look elsewhere.")
        self._rects: list[tuple[QRectF, QColor]] = []
        # The drawn rectangles, kept while the graph, the framed area and the palette stay
        # the same: a 20,000-node graph would otherwise cost 20,000 rectangles at every
        # repaint of the canvas under it.
        self._picture: QPixmap | None = None
        self._picture_key: tuple = ()
        self._revision = -1
        self._world = QRectF()
        self._visible = QRectF()
        self.enabled = True
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self.refresh)
        view.canvas.document.changed.connect(self.schedule)
        view.canvas.document.reset.connect(self.schedule)
        view.zoom_changed.connect(self._on_zoom)
        self.hide()

    def _on_zoom(self, _zoom: float) -> None:
        self.schedule()

    def schedule(self) -> None:
        """Refresh soon (many scroll steps in a row cost one refresh)."""
        if not self._timer.isActive():
            self._timer.start()

    def set_enabled(self, on: bool) -> None:
        """View › Show Minimap: off hides it even when the graph does not fit."""
        self.enabled = on
        self.refresh()

    def _gather(self) -> None:
        canvas = self.view.canvas
        rects: list[tuple[QRectF, QColor]] = []
        for note in canvas.notes.values():
            rects.append((note.sceneBoundingRect(),
                          QColor(FRAME_COLOR if note.kind == "frame" else NOTE_COLOR)))
        colors: dict[str, QColor] = {}
        for item in canvas.nodes.values():
            if item.isVisible():
                category = item.op.category if item.op else ""
                color = colors.get(category)
                if color is None:
                    color = colors[category] = theme.category_color(category)
                # pos + boundingRect is sceneBoundingRect for a top-level, untransformed
                # card, without Qt working out 20,000 scene transforms right after a big
                # file opens.
                rects.append((item.boundingRect().translated(item.x(), item.y()), color))
        for block in canvas.blocks.values():
            rects.append((block.sceneBoundingRect(), QColor(BLOCK_COLOR)))
        self._rects = rects
        self._revision = canvas.document.revision

    def refresh(self) -> None:
        """Show or hide (does the graph fit?) and repaint with the current view rectangle."""
        if self._revision != self.view.canvas.document.revision or self.view.canvas.user_moving:
            self._gather()
        graph = QRectF()
        for rect, _ in self._rects:
            graph = graph.united(rect)
        vp = self.view.viewport().rect()
        self._visible = self.view.mapToScene(vp).boundingRect()
        fits = graph.isEmpty() or self._visible.contains(graph)
        self._world = graph.united(self._visible).adjusted(-40, -40, 40, 40)
        self.setVisible(self.enabled and not fits)
        self.place()
        self.update()

    def place(self) -> None:
        """Sit in the view's bottom-right corner."""
        vp = self.view.viewport().geometry()
        self.move(vp.right() - self.width() - MARGIN, vp.bottom() - self.height() - MARGIN)
        self.raise_()

    def _scale(self) -> tuple[float, QPointF]:
        w, h = self.width() - 8, self.height() - 8
        scale = min(w / max(1.0, self._world.width()), h / max(1.0, self._world.height()))
        offset = QPointF(4 + (w - self._world.width() * scale) / 2,
                         4 + (h - self._world.height() * scale) / 2)
        return scale, offset

    def to_map(self, rect: QRectF) -> QRectF:
        scale, off = self._scale()
        return QRectF(off.x() + (rect.left() - self._world.left()) * scale,
                      off.y() + (rect.top() - self._world.top()) * scale,
                      max(1.5, rect.width() * scale), max(1.5, rect.height() * scale))

    def to_scene(self, point: QPointF) -> QPointF:
        scale, off = self._scale()
        return QPointF(self._world.left() + (point.x() - off.x()) / scale,
                       self._world.top() + (point.y() - off.y()) / scale)

    def paintEvent(self, event) -> None:
        pal = theme.current()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        back = QColor(pal.label_background)
        back.setAlpha(235)
        painter.setPen(QPen(QColor(pal.node_border), 1))
        painter.setBrush(back)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        painter.drawPixmap(0, 0, self._items_picture())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(pal.selection), 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(self.to_map(self._visible))

    def _items_picture(self) -> QPixmap:
        """The item rectangles, drawn once per (items, framed area, size, palette)."""
        w = self._world
        key = (id(self._rects), w.left(), w.top(), w.width(), w.height(), self.width(),
               self.height(), self.devicePixelRatioF(), theme.is_dark())
        if self._picture is None or key != self._picture_key:
            ratio = self.devicePixelRatioF()
            picture = QPixmap(round(self.width() * ratio), round(self.height() * ratio))
            picture.setDevicePixelRatio(ratio)
            picture.fill(Qt.GlobalColor.transparent)
            painter = QPainter(picture)
            painter.setPen(Qt.PenStyle.NoPen)
            scale, off = self._scale()
            left, top = w.left(), w.top()
            for rect, color in self._rects:
                painter.setBrush(color)
                painter.drawRect(QRectF(off.x() + (rect.left() - left) * scale,
                                        off.y() + (rect.top() - top) * scale,
                                        max(1.5, rect.width() * scale),
                                        max(1.5, rect.height() * scale)))
            painter.end()
            self._picture, self._picture_key = picture, key
        return self._picture

    def mousePressEvent(self, event) -> None:
        self.view.centerOn(self.to_scene(event.position()))
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))
        event.accept()
