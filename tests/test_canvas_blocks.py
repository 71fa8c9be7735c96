"""Blocks, notes, reroute points, drop-on-wire, nudges, arrange and the minimap in the window."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from designer.canvas.block_item import BlockFrame
from designer.training import session as states
from engine.core.spec import EdgeSpec
from tests.gui import EXAMPLES, make_window, open_example


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path)


def _double_click(scene, pos: QPointF) -> None:
    from PySide6.QtWidgets import QGraphicsSceneMouseEvent

    event = QGraphicsSceneMouseEvent(QGraphicsSceneMouseEvent.Type.GraphicsSceneMouseDoubleClick)
    event.setScenePos(pos)
    event.setButton(Qt.MouseButton.LeftButton)
    event.setButtons(Qt.MouseButton.LeftButton)
    scene.mouseDoubleClickEvent(event)


def test_the_residual_example_opens_as_a_closed_block(qtbot, window):
    window.open_path(EXAMPLES / "residual_block.json", ask=False)
    scene = window.scene
    (block,) = scene.blocks.values()
    assert block.title == "Residual block"
    members = window.document.group(block.group_id).nodes
    assert all(not scene.nodes[m].isVisible() for m in members)
    # Its ports are the wires crossing the border, drawn to the block's ports.
    entering = window.document.incoming(f"{block.group_id}/in", "in")
    port = block.port(entering.dst, "in", False)
    assert port is not None and port.connected
    assert scene.edges[entering].isVisible()
    assert scene.edges[entering].path().pointAtPercent(1) == port.scenePos()
    inner = EdgeSpec(f"{block.group_id}/in", "out", f"{block.group_id}/dense1", "in")
    assert not scene.edges[inner].isVisible()
    assert "5 nodes" in block.size_text and "(batch, 16)" in block.size_text


def test_double_click_opens_a_block_in_place_and_its_title_bar_closes_it(qtbot, window):
    window.open_path(EXAMPLES / "residual_block.json", ask=False)
    scene = window.scene
    gid, block = next(iter(scene.blocks.items()))
    _double_click(scene, block.mapToScene(block.header_rect().center()))
    assert not scene.blocks and gid in scene.frames
    members = window.document.group(gid).nodes
    assert all(scene.nodes[m].isVisible() for m in members)
    frame = scene.frames[gid]
    assert all(frame.boundingRect().contains(scene.nodes[m].sceneBoundingRect())
               for m in members)
    view = window.view  # the inside sits below the main line: the view scrolls to it
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    assert shown.intersects(frame.sceneBoundingRect())
    place = window.document.group(gid).position
    _double_click(scene, frame.header_rect().center())
    assert gid in scene.blocks and not scene.frames
    assert window.document.group(gid).position == place  # closing does not move it
    window.controller.undo_stack.undo()
    window.controller.undo_stack.undo()
    assert gid in scene.blocks


def test_group_and_ungroup_from_the_menu(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    before = window.document.spec()
    window.scene.select_nodes(["h1", "a1"])
    window.actions["group"].trigger()
    (gid,) = window.scene.blocks
    assert window.scene.selected_group_ids() == [gid]
    assert not window.scene.nodes["h1"].isVisible()
    window.actions["ungroup"].trigger()
    assert window.document.spec() == before
    assert set(window.scene.selected_node_ids()) == {"h1", "a1"}


def test_gradients_colour_the_wires_crossing_a_closed_block(qtbot, window):
    session = open_example(qtbot, window, "residual_block.json")
    session.step()
    qtbot.waitUntil(lambda: session.last_report is not None, timeout=10000)
    qtbot.waitUntil(lambda: any(i.overlay is not None for i in window.scene.edges.values()),
                    timeout=5000)
    gid = next(iter(window.scene.blocks))
    crossing = window.document.incoming("a3", "in")
    assert crossing.src.startswith(f"{gid}/")
    qtbot.waitUntil(lambda: window.scene.edges[crossing].overlay is not None, timeout=5000)
    window.controller.set_block_open(gid, True)
    inner = EdgeSpec(f"{gid}/relu", "out", f"{gid}/dense2", "in")
    qtbot.waitUntil(lambda: window.scene.edges[inner].overlay is not None, timeout=5000)
    assert session.state in (states.PAUSED, states.READY)


def test_save_block_to_palette_and_drop_a_copy(qtbot, window, tmp_path):
    window.open_path(EXAMPLES / "residual_block.json", ask=False)
    gid = next(iter(window.scene.blocks))
    window.controller.rename_block(gid, "Skip it")
    window.scene.select_group(gid)
    window.actions["save_block"].trigger()
    assert window.palette_widget.block_titles("My blocks") == ["Skip it"]
    assert window.palette_widget.block_titles("Blocks") == ["Residual block", "Transformer"]
    saved = next(e.path for e in window.controller.blocks.entries() if not e.shipped)
    assert saved.parent == tmp_path / "blocks-w"
    new = window.view.add_block_at(str(saved), QPointF(0, 600))
    assert new != gid and new in window.scene.blocks
    assert window.scene.selected_group_ids() == [new]


def test_dropping_an_unwired_node_on_a_wire_inserts_it(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    scene, doc = window.scene, window.document
    edge = next(e for e in doc.edges() if e.dst_port == "in" and e.src != "x")
    node = window.controller.add_node("Tanh", (0.0, 900.0))
    item = scene.nodes[node]
    middle = scene.edges[edge].path().pointAtPercent(0.5)
    scene._press_positions = {node: QPointF(item.pos())}
    item.setPos(middle - QPointF(item.rect().width() / 2, item.rect().height() / 2))
    scene._commit_move()
    assert doc.incoming(node, "in").src == edge.src
    assert doc.incoming(edge.dst, edge.dst_port).src == node


def test_dropping_a_palette_op_on_a_wire_refuses_with_a_reason(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    edge = next(e for e in window.document.edges() if e.src == "x")
    middle = window.scene.edges[edge].path().pointAtPercent(0.5)
    node = window.view.add_op_at("Input", middle, onto_wire=True)
    assert window.document.has_edge(edge) and not window.document.edges_of(node)
    assert "has no input" in window.view.feedback_label.text()


def test_arrow_keys_nudge_the_selection_as_one_undo_step(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    window.view.setFocus()
    window.scene.select_nodes(["h1"])
    start = window.document.position("h1")
    count = window.controller.undo_stack.count()
    for _ in range(3):
        QTest.keyClick(window.view.viewport(), Qt.Key.Key_Right)
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert window.document.position("h1") == (start[0] + 3, start[1] + 20)
    assert window.controller.undo_stack.count() == count + 1
    window.controller.undo_stack.undo()
    assert window.document.position("h1") == start


def test_align_from_the_arrange_menu(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    window.scene.select_nodes(["x", "h1", "y"])
    window.actions["align_top"].trigger()
    assert len({window.document.position(n)[1] for n in ("x", "h1", "y")}) == 1


def test_notes_and_frames_are_edited_on_the_canvas_and_saved(qtbot, window, tmp_path):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    window.scene.select_nodes(["h1", "a1"])
    window.actions["add_frame"].trigger()
    window.actions["add_note"].trigger()
    notes = window.document.notes()
    assert [n.kind for n in notes] == ["frame", "note"]
    frame_item = window.scene.notes[notes[0].id]
    for n in ("h1", "a1"):
        assert frame_item.sceneBoundingRect().contains(window.scene.nodes[n].sceneBoundingRect())
    note_item = window.scene.notes[notes[1].id]
    assert note_item.editing
    note_item.editor.setPlainText("tanh saturates here")
    note_item.editor.clearFocus()
    assert window.document.note(notes[1].id).text == "tanh saturates here"
    path = tmp_path / "annotated.json"
    window.controller.save_as(path)
    window.open_path(path, ask=False)
    assert [n.text for n in window.document.notes()][1] == "tanh saturates here"
    assert len(window.scene.notes) == 2


def test_double_click_on_a_wire_adds_a_reroute_point(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    edge = next(e for e in window.document.edges() if e.src == "x")
    item = window.scene.edges[edge]
    point = item.path().pointAtPercent(0.5)
    _double_click(window.scene, point)
    assert window.document.waypoints(edge) == [(round(point.x()), round(point.y()))]
    (handle,) = item.reroutes
    handle.setPos(handle.pos() + QPointF(0, 80))
    window.scene.reroute_released(item)
    assert window.document.waypoints(edge)[0][1] == round(point.y()) + 80
    assert item.path().intersects(handle.sceneBoundingRect())
    window.scene.reroute_removed(item, 0)
    assert window.document.waypoints(edge) == [] and not item.reroutes


def test_the_minimap_shows_when_the_graph_does_not_fit(qtbot, window):
    window.open_path(EXAMPLES / "residual_block.json", ask=False)
    view = window.view
    view.fit_all()
    view.minimap.refresh()
    assert not view.minimap.isVisible()
    view.set_zoom(2.5)
    view.minimap.refresh()
    assert view.minimap.isVisible()
    target = view.minimap.to_map(window.scene.nodes["x"].sceneBoundingRect()).center()
    QTest.mouseClick(view.minimap, Qt.MouseButton.LeftButton, pos=target.toPoint())
    centre = view.mapToScene(view.viewport().rect().center())
    assert window.scene.nodes["x"].sceneBoundingRect().adjusted(-40, -40, 40, 40).contains(
        centre)
    window.actions["minimap"].setChecked(False)
    assert not view.minimap.isVisible()


def test_a_block_frame_is_drawn_behind_nodes(qtbot, window):
    window.open_path(EXAMPLES / "residual_block.json", ask=False)
    gid = next(iter(window.scene.blocks))
    window.controller.set_block_open(gid, True)
    frame = window.scene.frames[gid]
    assert isinstance(frame, BlockFrame) and frame.zValue() < 0


def test_duplicating_a_closed_block_makes_an_independent_block(qtbot, window):
    window.open_path(EXAMPLES / "residual_block.json", ask=False)
    gid = next(iter(window.scene.blocks))
    window.scene.select_group(gid)
    count = window.controller.undo_stack.count()
    window.actions["duplicate"].trigger()
    assert window.controller.undo_stack.count() == count + 1
    (new,) = [g for g in window.scene.blocks if g != gid]
    assert window.scene.selected_group_ids() == [new]
    old_nodes, new_nodes = (window.document.group(g).nodes for g in (gid, new))
    assert len(new_nodes) == 5 and not set(old_nodes) & set(new_nodes)
    window.controller.undo_stack.undo()
    assert list(window.scene.blocks) == [gid]


def test_a_moved_comment_frame_carries_the_nodes_inside_it(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    scene, doc = window.scene, window.document
    window.scene.select_nodes(["h1", "a1"])
    window.actions["add_frame"].trigger()
    frame_id = doc.notes()[0].id
    frame = scene.notes[frame_id]
    frame.finish_editing()
    scene.clearSelection()
    frame.setSelected(True)
    h1, x = doc.position("h1"), doc.position("x")
    scene._press_positions, scene._press_blocks = {}, {}
    scene._press_notes = {frame_id: QPointF(frame.pos())}
    scene._collect_riders([frame])
    scene.user_moving = True
    frame.setPos(frame.pos() + QPointF(100, 40))
    for item, offset, owner in scene._riders:
        item.setPos(owner.pos() + offset)
    scene._commit_move()
    assert doc.position("h1") == (h1[0] + 100, h1[1] + 40)
    assert doc.position("x") == x  # outside the frame: stays
    window.controller.undo_stack.undo()
    assert doc.position("h1") == h1


def test_typing_in_a_note_edits_its_text_not_the_graph(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    window.view.setFocus()
    window.actions["add_note"].trigger()
    (note,) = window.document.notes()
    item = window.scene.notes[note.id]
    QTest.keyClicks(window.view.viewport(), "ab")
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_Backspace)
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_Left)
    assert item.editor.toPlainText() == "a"
    assert window.document.has_note(note.id) and item.pos() == QPointF(*note.rect[:2])
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_Escape)
    assert window.document.note(note.id).text == "a" and not item.editing


def test_the_inspector_sums_up_a_selected_block(qtbot, window):
    window.open_path(EXAMPLES / "residual_block.json", ask=False)
    window.scene.select_group(next(iter(window.scene.blocks)))
    texts = [w.text() for w in window.inspector.findChildren(type(window.zoom_label))
             if w.isVisibleTo(window.inspector)]
    assert "5 nodes selected" in texts
    assert any("544 parameters in the selection" in t for t in texts)  # two 16×16 Dense


def test_dragging_both_ends_of_a_bent_wire_carries_its_reroute_points(qtbot, window):
    window.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    edge = next(e for e in window.document.edges() if e.src == "x")
    item = window.scene.edges[edge]
    bend = item.path().pointAtPercent(0.5) + QPointF(0, 60)
    window.controller.set_waypoints(edge, [(bend.x(), bend.y())])
    for node_id in (edge.src, edge.dst):
        window.scene.nodes[node_id].setSelected(True)
    src = window.scene.nodes[edge.src]
    grab = window.view.mapFromScene(src.sceneBoundingRect().topLeft() + QPointF(30, 10))
    vp = window.view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, grab)
    for i in range(1, 6):
        QTest.mouseMove(vp, grab + QPoint(8 * i, 6 * i))
    step = window.view.mapToScene(grab + QPoint(40, 30)) - window.view.mapToScene(grab)
    (handle,) = item.reroutes
    assert handle.pos() == bend + step  # the handle follows during the drag
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       grab + QPoint(40, 30))
    moved = (bend.x() + step.x(), bend.y() + step.y())
    assert window.document.waypoints(edge) == [pytest.approx(moved)]
    window.controller.undo_stack.undo()
    assert window.document.waypoints(edge) == [(bend.x(), bend.y())]
    assert item.reroutes[0].pos() == bend


def test_copy_cut_paste_and_duplicate_take_notes_along(qtbot, window):
    c = window.controller
    dense = c.add_node("Dense", (0.0, 0.0))
    note = c.add_note("note", (0.0, 100.0, 180.0, 90.0), "look here")
    frame = c.add_note("frame", (-20.0, -40.0, 400.0, 300.0), "Layer")
    window.scene.select_nodes([dense, note, frame])
    assert sorted(window.scene.selected_note_ids()) == sorted([note, frame])
    steps = c.undo_stack.count()
    window.edit_duplicate()
    assert c.undo_stack.count() == steps + 1
    notes = window.document.notes()
    assert [n.text for n in notes] == ["look here", "Layer", "look here", "Layer"]
    assert notes[2].rect == (30.0, 130.0, 180.0, 90.0) and notes[2].id not in (note, frame)
    assert sorted(window.scene.selected_note_ids()) == sorted(n.id for n in notes[2:])
    c.undo_stack.undo()
    assert [n.id for n in window.document.notes()] == [note, frame]
    window.scene.select_nodes([dense, note])
    window.edit_cut()
    assert not window.document.nodes() and [n.id for n in window.document.notes()] == [frame]
    ids = window.edit_paste()
    assert len(ids) == 2 and window.document.has_node(ids[0])
    pasted = window.document.note(ids[1])
    assert pasted.text == "look here" and pasted.kind == "note"
    assert window.scene.selected_note_ids() == [ids[1]]
    c.undo_stack.undo()
    assert [n.id for n in window.document.notes()] == [frame]


def test_select_all_then_cut_takes_blocks_and_notes(qtbot, window):
    window.open_path(EXAMPLES / "residual_block.json", ask=False)
    window.edit_select_all()
    window.edit_cut()
    assert not window.document.nodes() and not window.document.notes()
    window.edit_paste()
    assert len(window.document.groups()) == 1 and len(window.document.notes()) == 1
