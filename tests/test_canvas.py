"""Canvas gestures: palette drop, connect drags, refused wires, delete, moves, rename."""

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QDropEvent, QHelpEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from designer.canvas.node_item import HEADER_HEIGHT, NODE_WIDTH
from designer.controller import Controller
from designer.editing.palette import OP_MIME
from designer.main_window import MainWindow
from tests.gui import track_window


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    controller = Controller(recovery_dir=tmp_path / "recovery")
    win = MainWindow(controller, settings)
    win.ask_save_changes = lambda: "discard"
    win.show_error = lambda title, text: None
    track_window(win)
    win.resize(1400, 850)
    win.show()
    qtbot.waitExposed(win)
    win.view.reset_zoom()
    win.view.centerOn(QPointF(300, 100))
    return win


def view_point(win, scene_pos: QPointF) -> QPoint:
    return win.view.mapFromScene(scene_pos)


def drag(qtbot, win, a: QPointF, b: QPointF, steps: int = 6) -> None:
    """Press at scene point a, move in steps to b, release (on the view's viewport)."""
    vp = win.view.viewport()
    pa, pb = view_point(win, a), view_point(win, b)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pa)
    for i in range(1, steps + 1):
        p = pa + (pb - pa) * (i / steps)
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pb)


def out_pos(win, node_id):
    return win.scene.nodes[node_id].port_scene_pos("out", True)


def in_pos(win, node_id, port="in"):
    return win.scene.nodes[node_id].port_scene_pos(port, False)


def chain(win, step: float = 220.0):
    c = win.controller
    x = c.add_node("Input", (0.0, 0.0))
    d1 = c.add_node("Dense", (step, 0.0))
    d2 = c.add_node("Dense", (2 * step, 0.0))
    assert c.connect(x, d1, "in") is None
    assert c.connect(d1, d2, "in") is None
    return x, d1, d2


def test_palette_drop_creates_node_at_drop_point(window, qtbot):
    view = window.view
    mime = QMimeData()
    mime.setData(OP_MIME, b"Dense")
    target = QPoint(400, 300)
    event = QDropEvent(QPointF(target), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    view.dropEvent(event)
    nodes = window.document.nodes()
    assert [n.op for n in nodes] == ["Dense"]
    drop = view.mapToScene(target)
    x, y = window.document.position(nodes[0].id)
    assert abs(x + NODE_WIDTH / 2 - drop.x()) <= 1 and abs(y + HEADER_HEIGHT / 2 - drop.y()) <= 1
    assert nodes[0].id in window.scene.nodes


def test_palette_lists_every_op_and_filters(window):
    from engine.core import registry

    palette = window.palette_widget
    assert palette.visible_ops() == [op.id for op in registry.all_ops()]
    palette.search.setText("relu")
    assert "ReLU" in palette.visible_ops() and "Dense" not in palette.visible_ops()


def test_mouse_drag_from_output_to_input_connects(window, qtbot):
    c = window.controller
    x = c.add_node("Input", (0.0, 0.0))
    d = c.add_node("Dense", (260.0, 40.0))
    drag(qtbot, window, out_pos(window, x), in_pos(window, d))
    edges = window.document.edges()
    assert [(e.src, e.dst, e.dst_port) for e in edges] == [(x, d, "in")]
    assert len(window.scene.edges) == 1
    window.controller.undo_stack.undo()
    assert window.document.edges() == [] and not window.scene.edges


def test_drag_from_input_to_output_connects_too(window, qtbot):
    c = window.controller
    x = c.add_node("Input", (0.0, 0.0))
    d = c.add_node("Dense", (260.0, 40.0))
    drag(qtbot, window, in_pos(window, d), out_pos(window, x))
    assert [(e.src, e.dst) for e in window.document.edges()] == [(x, d)]


def test_cycle_is_refused_and_reason_shown(window, qtbot):
    _x, d1, d2 = chain(window)
    before = window.document.edges()
    drag(qtbot, window, out_pos(window, d2), in_pos(window, d1))
    assert window.document.edges() == before
    label = window.view.feedback_label
    assert label.isVisible() and "loop" in label.text()
    assert "loop" in window.statusBar().currentMessage()


def test_output_to_output_is_refused_with_a_reason(window, qtbot):
    _x, d1, d2 = chain(window)
    before = window.document.edges()
    drag(qtbot, window, out_pos(window, d1), out_pos(window, d2))
    assert window.document.edges() == before
    label = window.view.feedback_label
    assert label.isVisible() and "two outputs" in label.text()


def test_dragging_a_wire_off_an_input_removes_it(window, qtbot):
    x, d1, d2 = chain(window)
    drag(qtbot, window, in_pos(window, d2), in_pos(window, d2) + QPointF(0, 200))
    assert [(e.src, e.dst) for e in window.document.edges()] == [(x, d1)]


def test_release_on_empty_canvas_offers_quick_add_and_connects(window, qtbot):
    c = window.controller
    x = c.add_node("Input", (0.0, 0.0))
    drag(qtbot, window, out_pos(window, x), out_pos(window, x) + QPointF(200, 150))
    popup = window.view.quick_add
    assert popup.isVisible()
    assert "Input" not in popup.visible_ops() and "ReLU" in popup.visible_ops()
    popup.search.setText("relu")
    count = c.undo_stack.count()
    popup.accept_current()
    relu = [n.id for n in window.document.nodes() if n.op == "ReLU"]
    assert relu and [(e.src, e.dst) for e in window.document.edges()] == [(x, relu[0])]
    assert c.undo_stack.count() == count + 1
    c.undo_stack.undo()
    assert [n.id for n in window.document.nodes()] == [x]


def test_delete_removes_selection_with_wires(window, qtbot):
    _x, d1, _d2 = chain(window)
    window.scene.select_nodes([d1])
    window.view.setFocus()
    window.actions["delete"].trigger()
    assert not window.document.has_node(d1)
    assert window.document.edges() == [] and not window.scene.edges
    assert d1 not in window.scene.nodes
    window.controller.undo_stack.undo()
    assert window.document.has_node(d1) and len(window.scene.edges) == 2


def test_moving_two_nodes_is_one_undo_step(window, qtbot):
    c = window.controller
    a = c.add_node("Input", (0.0, 0.0))
    b = c.add_node("Dense", (0.0, 150.0))
    window.scene.select_nodes([a, b])
    grab = window.scene.nodes[a].mapToScene(QPointF(NODE_WIDTH / 2, HEADER_HEIGHT / 2))
    count = c.undo_stack.count()
    drag(qtbot, window, grab, grab + QPointF(80, 40))
    assert c.undo_stack.count() == count + 1
    (ax, ay), (bx, by) = c.document.position(a), c.document.position(b)
    assert (ax, ay) == pytest.approx((80, 40), abs=2)
    assert (bx, by) == pytest.approx((80, 190), abs=2)
    c.undo_stack.undo()
    assert c.document.position(a) == (0.0, 0.0) and c.document.position(b) == (0.0, 150.0)
    assert window.scene.nodes[b].pos() == QPointF(0, 150)


def test_wires_follow_moving_nodes(window, qtbot):
    x, d1, _d2 = chain(window)
    edge = next(e for e in window.scene.edges if e.dst == d1)
    item = window.scene.edges[edge]
    before = item.path().elementAt(0)
    window.controller.move_nodes({x: ((0.0, 0.0), (0.0, 100.0))})
    after = item.path().elementAt(0)
    assert after.y - before.y == pytest.approx(100)


def test_double_click_title_renames_inline(window, qtbot):
    c = window.controller
    d = c.add_node("Dense", (0.0, 0.0))
    title = window.scene.nodes[d].mapToScene(QPointF(30, HEADER_HEIGHT / 2))
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier, view_point(window, title))
    editor = window.view.rename_editor
    assert editor is not None and editor.text() == d
    editor.setText("hidden")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    assert window.document.has_node("hidden") and "hidden" in window.scene.nodes


def test_diagnostics_badge_nodes(window):
    c = window.controller
    d = c.add_node("Dense", (0.0, 0.0))
    item = window.scene.nodes[d]
    assert item.badge.isVisible() and "not connected" in item.badge.toolTip()
    x = c.add_node("Input", (-250.0, 0.0))
    c.connect(x, d, "in")
    assert not item.badge.isVisible() and item.shape_text == "(batch, 8)"


def test_zoom_keys_and_fit(window):
    view = window.view
    chain(window)
    z = view.zoom()
    view.zoom_in()
    assert view.zoom() > z
    view.zoom_out()
    assert view.zoom() == pytest.approx(z)
    view.fit_all()
    for item in window.scene.nodes.values():
        assert view.viewport().rect().contains(view.mapFromScene(item.sceneBoundingRect().center()))


def test_tab_opens_quick_add_and_enter_adds(window, qtbot):
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_Tab)
    popup = window.view.quick_add
    assert popup.isVisible() and "Input" in popup.visible_ops()
    popup.search.setText("dense")
    QTest.keyClick(popup.search, Qt.Key.Key_Return)
    assert [n.op for n in window.document.nodes()] == ["Dense"]
    assert not popup.isVisible()


def test_middle_drag_pans(window, qtbot):
    vp = window.view.viewport()
    before = window.view.mapToScene(QPoint(100, 100))
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(300, 300))
    QTest.mouseMove(vp, QPoint(340, 320))
    QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier,
                       QPoint(340, 320))
    after = window.view.mapToScene(QPoint(100, 100))
    assert (before - after).x() == pytest.approx(40, abs=1)
    assert (before - after).y() == pytest.approx(20, abs=1)


def test_snap_to_grid_on_drop(window):
    window.actions["snap"].setChecked(True)
    node_id = window.view.add_op_at("ReLU", QPointF(333, 127))
    x, y = window.document.position(node_id)
    assert x % 20 == 0 and y % 20 == 0


def test_show_graph_stays_readable(window):
    c = window.controller
    for i in range(12):
        c.add_node("ReLU", (i * 220.0, 0.0))
    window.view.show_graph()
    assert window.view.zoom() >= 0.65
    first = window.scene.nodes[window.document.nodes()[0].id]
    assert window.view.viewport().rect().contains(
        window.view.mapFromScene(first.sceneBoundingRect().center()))


def test_dragging_a_node_snaps_raises_it_and_its_wires_follow_each_step(window, qtbot):
    x, d1, _d2 = chain(window)
    window.actions["snap"].setChecked(True)
    scene, item = window.scene, window.scene.nodes[d1]
    wire = scene.edges[next(e for e in scene.edges if e.dst == d1)]
    vp = window.view.viewport()
    grab = view_point(window, item.mapToScene(QPointF(40, HEADER_HEIGHT / 2)))
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, grab)
    assert item.isSelected() and item.zValue() > scene.nodes[x].zValue()
    for i in range(1, 4):
        QTest.mouseMove(vp, grab + QPoint(11 * i, 17 * i))
        pos = item.pos()
        assert pos.x() % 20 == 0 and pos.y() % 20 == 0  # snapped while dragging
        end = wire.path().elementAt(wire.path().elementCount() - 1)
        port = item.port_scene_pos("in", False)
        assert (end.x, end.y) == (port.x(), port.y())  # the wire is attached at every step
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       grab + QPoint(33, 51))
    assert window.document.position(d1) == (item.pos().x(), item.pos().y()) != (220.0, 0.0)
    scene.clearSelection()
    assert item.zValue() == scene.nodes[x].zValue()


def test_node_and_port_tooltips_are_written_when_shown(window, qtbot, monkeypatch):
    _x, d1, _d2 = chain(window)
    item = window.scene.nodes[d1]
    assert "Dense" in item.toolTip() and "(batch, 8)" in item.toolTip()
    assert "Drag to connect" in item.inputs["in"].toolTip()
    shown = []
    monkeypatch.setattr("designer.canvas.scene.QToolTip.showText",
                        lambda _pos, text, *_a: shown.append(text))
    for local in (QPointF(70, HEADER_HEIGHT + 15), item.inputs["in"].pos()):
        where = view_point(window, item.mapToScene(local))
        event = QHelpEvent(QEvent.Type.ToolTip, where, window.view.viewport().mapToGlobal(where))
        QApplication.sendEvent(window.view.viewport(), event)
    assert shown == [item.toolTip(), item.inputs["in"].toolTip()]
