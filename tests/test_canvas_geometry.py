"""Canvas geometry worked out in Python instead of asked of Qt (what keeps opening big graphs
fast): wire ends, the wires' shape text, wire and minimap rectangles."""

import pytest
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QHelpEvent, QImage, QPainter
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.canvas.edge_item import WireLabel
from designer.canvas.port_item import PortItem
from tests.test_canvas import chain, drag, view_point, window  # noqa: F401 (fixture)


def _wire_into(win, node_id):
    return next(item for edge, item in win.scene.edges.items() if edge.dst == node_id)


def test_port_positions_added_up_equal_qts_after_moves(window):  # noqa: F811
    c = window.controller
    x = c.add_node("Input", (0.0, 0.0))
    cat = c.add_node("Concat", (300.0, 40.0))
    assert c.connect(x, cat, "c") is None
    c.move_nodes({cat: ((300.0, 40.0), (517.0, -233.0))})
    item = window.scene.nodes[cat]
    item.setPos(item.pos() + QPointF(13.5, 7.25))  # a drag step: the scene moves the wires
    window.scene.node_item_moved(item)
    for node_id in (x, cat):
        node = window.scene.nodes[node_id]
        for port in node.ports():
            assert node.port_scene_pos(port.name, port.is_output) == port.scenePos()
    # A wire into a port the op lacks attaches at the middle of the header's left edge.
    assert item.port_scene_pos("nope", False) == item.mapToScene(QPointF(0, 13))
    wire = _wire_into(window, cat)
    path = wire.path()
    assert path.elementAt(path.elementCount() - 1).x == item.inputs["c"].scenePos().x()
    assert path.elementAt(path.elementCount() - 1).y == item.inputs["c"].scenePos().y()


def test_shape_text_is_drawn_at_the_wires_middle_as_a_label_item_would_be(window):  # noqa: F811
    _x, d1, d2 = chain(window, step=300.0)
    wire = _wire_into(window, d2)
    assert wire.label_text == "(batch, 8)" and wire.label_visible
    rect = wire.label_rect()
    mid = wire.path().pointAtPercent(0.5)
    assert rect.center().x() == pytest.approx(mid.x()) and rect.center().y() == pytest.approx(
        mid.y())
    assert wire.boundingRect().contains(rect.adjusted(-3, -1, 3, 1))
    area = rect.adjusted(-8, -8, 8, 8)

    def picture() -> QImage:
        image = QImage(int(area.width()) * 2, int(area.height()) * 2, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.white)
        painter = QPainter(image)
        window.scene.render(painter, QRectF(image.rect()), area)
        painter.end()
        return image

    drawn = picture()
    window.scene.set_show_wire_shapes(False)
    assert not wire.label_visible and wire.label_rect() is None
    bare = picture()
    assert drawn != bare
    # The same text on a child WireLabel, as wires carried it before, looks the same.
    label = WireLabel(wire)
    label.setFont(theme.canvas_font("shape"))
    label.setText("(batch, 8)")
    label.setBrush(theme.color("shape_text"))
    label.setPos(rect.topLeft())
    assert picture() == drawn
    label.setParentItem(None)
    window.scene.removeItem(label)
    window.scene.set_show_wire_shapes(True)
    assert wire.label_visible and picture() == drawn


def test_short_wires_leave_out_the_shape_text(window):  # noqa: F811
    c = window.controller
    x = c.add_node("Input", (0.0, 0.0))
    d = c.add_node("Dense", (170.0, 0.0))  # 18 px between the ports: no room
    assert c.connect(x, d, "in") is None
    wire = _wire_into(window, d)
    assert wire.label_text and not wire.label_visible
    c.move_nodes({d: ((170.0, 0.0), (420.0, 0.0))})
    assert wire.label_visible


def test_the_wires_message_shows_over_its_shape_text(window, monkeypatch):  # noqa: F811
    _x, _d1, d2 = chain(window, step=300.0)
    window.controller.move_nodes({d2: ((600.0, 0.0), (600.0, 60.0))})  # a slanted middle
    wire = _wire_into(window, d2)
    wire.set_problem("Shapes do not match.")
    shown = []
    monkeypatch.setattr("designer.canvas.scene.QToolTip.showText",
                        lambda _pos, text, *_a: shown.append(text))
    corner = wire.label_rect().topLeft() + QPointF(2, 2)  # on the text, off the wire's stroke
    assert not wire.shape().contains(corner)
    assert window.scene.wire_label_at(corner) is wire
    where = view_point(window, corner)
    event = QHelpEvent(QEvent.Type.ToolTip, where, window.view.viewport().mapToGlobal(where))
    QApplication.sendEvent(window.view.viewport(), event)
    assert shown == ["Shapes do not match."]


def test_wire_rectangle_holds_its_stroke_label_and_pen(window):  # noqa: F811
    _x, d1, d2 = chain(window, step=300.0)
    wire = _wire_into(window, d2)
    for width in (2.2, 14.0):
        wire.set_overlay(QColor("#123456"), width, "")
        bounds = wire.boundingRect()
        assert bounds.contains(wire.shape().boundingRect())
        half = wire.pen().widthF() / 2
        assert bounds.contains(wire.path().boundingRect().adjusted(-half, -half, half, half))
        assert bounds.contains(wire.label_rect())
    window.controller.move_nodes({d1: ((300.0, 0.0), (300.0, 300.0))})
    assert wire.boundingRect().contains(wire.shape().boundingRect())
    # Qt's index follows the new rectangle: the wire is found where it now runs.
    mid = wire.path().pointAtPercent(0.5)
    assert wire in window.scene.items(mid)


def test_minimap_rectangles_are_the_items_scene_rectangles(window):  # noqa: F811
    x, d1, _d2 = chain(window)
    window.controller.move_nodes({d1: ((220.0, 0.0), (260.0, 90.0))})
    minimap = window.view.minimap
    minimap._gather()
    rects = [r for r, _c in minimap._rects]
    want = [window.scene.nodes[n].sceneBoundingRect() for n in window.scene.nodes]
    assert rects == want


def _far_graph(win):
    """An Input wired into an Add far off screen, plus one on screen."""
    c = win.controller
    x = c.add_node("Input", (0.0, 0.0))
    far = c.add_node("Add", (9000.0, 6000.0))
    assert c.connect(x, far, "b") is None
    return x, far


def test_ports_are_made_when_painted_or_hit_and_know_their_wires(window, qtbot):  # noqa: F811
    x, far = _far_graph(window)
    scene = window.scene
    window.view.viewport().repaint()
    assert scene.nodes[x].has_ports  # on screen: painted with its ports
    node = scene.nodes[far]
    assert not node.has_ports and not [i for i in scene.items() if isinstance(i, PortItem)
                                        and i.parentItem() is node]
    # Wires attach where the ports will be, before they exist.
    wire = _wire_into(window, far)
    end = wire.path().elementAt(wire.path().elementCount() - 1)
    # A press on the port's place finds it (made on the spot), wired and filled.
    spot = node.pos() + QPointF(0, 26 + 6 + 20 * 1.5)
    port = scene.port_at(spot)
    assert node.has_ports and port is node.inputs["b"] and port.connected
    assert not node.inputs["a"].connected and not node.output.connected
    assert (end.x, end.y) == (port.scenePos().x(), port.scenePos().y())
    # Scrolled into view, a node is painted with its ports.
    other = window.controller.add_node("Dense", (-9000.0, 6000.0))
    window.view.centerOn(scene.nodes[other].pos())
    window.view.viewport().repaint()
    assert scene.nodes[other].has_ports


def test_hover_and_connect_reach_ports_not_made_yet(window, qtbot):  # noqa: F811
    c = window.controller
    x = c.add_node("Input", (0.0, 0.0))
    d = c.add_node("Dense", (300.0, 0.0))
    scene = window.scene
    for item in (scene.nodes[x], scene.nodes[d]):  # as a big file leaves nodes off screen
        for port in item.ports():
            port.setParentItem(None)
            scene.removeItem(port)
        item._inputs, item._output, item.has_ports = {}, None, False
        scene._portless.add(item.node_id)
    a = scene.nodes[x].port_scene_pos("out", True)
    b = scene.nodes[d].port_scene_pos("in", False)
    vp = window.view.viewport()
    QTest.mouseMove(vp, view_point(window, b + QPointF(40, 40)))
    QTest.mouseMove(vp, view_point(window, b))  # hovering lights the port up
    qtbot.waitUntil(lambda: scene.nodes[d].has_ports and scene.nodes[d].inputs["in"]._hover)
    drag(qtbot, window, a, b)
    assert [(e.src, e.dst, e.dst_port) for e in window.document.edges()] == [(x, d, "in")]
    assert scene.nodes[d].inputs["in"].connected and scene.nodes[x].output.connected


def test_once_every_node_has_ports_painting_looks_for_none(window, monkeypatch):  # noqa: F811
    x, far = _far_graph(window)
    window.scene.nodes[far].ports()  # made when asked, not by the paint
    window.view.viewport().repaint()
    assert not window.scene._portless
    asked = []
    monkeypatch.setattr(window.scene, "items", lambda *a: asked.append(a) or [])
    window.scene.ensure_ports(QRectF(-1e4, -1e4, 2e4, 2e4))
    assert asked == []
