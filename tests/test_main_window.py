"""Main window: inspector edits, title, files, examples, clipboard, shortcuts, problems."""

import json

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QTableWidget

from designer.controller import Controller
from designer.main_window import MainWindow, example_files, example_title
from designer.resources import resource_path
from tests.gui import track_window


def make_window(qtbot, tmp_path, name="w"):
    settings = QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat)
    controller = Controller(recovery_dir=tmp_path / f"recovery-{name}")
    win = MainWindow(controller, settings)
    win.ask_save_changes = lambda: "discard"
    win.errors = []
    win.show_error = lambda title, text: win.errors.append(text)
    track_window(win)
    win.resize(1400, 850)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path)


def select(win, node_id):
    win.scene.select_nodes([node_id])
    assert win.inspector.node_id == node_id


def test_inspector_edit_and_undo(window):
    d = window.controller.add_node("Dense", (0.0, 0.0))
    select(window, d)
    spin = window.inspector.editors["units"]
    spin.setValue(16)
    assert window.document.node(d).params["units"] == 16
    window.controller.undo_stack.undo()
    assert window.document.node(d).params["units"] == 8
    assert spin.value() == 8
    window.controller.undo_stack.redo()
    assert spin.value() == 16


def test_inspector_choice_and_bool(window):
    d = window.controller.add_node("Dense", (0.0, 0.0))
    select(window, d)
    window.inspector.editors["bias"].setChecked(False)
    window.inspector.editors["init"].setCurrentText("xavier")
    params = window.document.node(d).params
    assert params["bias"] is False and params["init"] == "xavier"


def test_invalid_param_refused_with_message(window):
    d = window.controller.add_node("Dense", (0.0, 0.0))
    select(window, d)
    reason = window.inspector.commit("units", 0)
    assert reason
    assert window.document.node(d).params["units"] == 8
    label = window.inspector.errors["units"]
    assert label.isVisibleTo(window.inspector) and label.text() == reason


def test_invalid_shape_text_refused(window):
    x = window.controller.add_node("Input", (0.0, 0.0))
    select(window, x)
    edit = window.inspector.editors["shape"]
    edit.setText("2, -3")
    edit.editingFinished.emit()
    assert window.inspector.errors["shape"].text()
    assert window.document.node(x).params["shape"] == []
    edit.setText("2, 3")
    edit.editingFinished.emit()
    assert window.document.node(x).params["shape"] == [2, 3]
    assert not window.inspector.errors["shape"].isVisibleTo(window.inspector)


def test_inspector_rename(window):
    d = window.controller.add_node("Dense", (0.0, 0.0))
    window.controller.add_node("Dense", (0.0, 100.0))
    select(window, d)
    window.inspector.id_edit.setText("dense_2")  # taken
    window.inspector.id_edit.editingFinished.emit()
    assert "already" in window.inspector.errors["__id__"].text()
    window.inspector.id_edit.setText("hidden")
    window.inspector.id_edit.editingFinished.emit()
    assert window.document.has_node("hidden") and window.inspector.node_id == "hidden"


def test_title_shows_modification(window, tmp_path):
    assert "[*]" in window.windowTitle() and not window.isWindowModified()
    window.controller.add_node("Dense", (0.0, 0.0))
    assert window.isWindowModified()
    target = tmp_path / "net.json"
    window.ask_save_path = lambda: str(target)
    assert window.file_save()
    assert target.exists() and not window.isWindowModified()
    assert window.windowTitle().startswith("net.json")


def test_close_asks_before_losing_work(window):
    window.controller.add_node("Dense", (0.0, 0.0))
    asked = []
    window.ask_save_changes = lambda: asked.append(1) or "cancel"
    assert not window.close()
    assert asked and window.isVisible()
    window.ask_save_changes = lambda: "discard"
    assert window.close()


def test_new_asks_and_clears(window):
    window.controller.add_node("Dense", (0.0, 0.0))
    window.ask_save_changes = lambda: "cancel"
    window.file_new()
    assert window.document.nodes()
    window.ask_save_changes = lambda: "discard"
    window.file_new()
    assert not window.document.nodes() and not window.scene.nodes


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_opens_clean(window, path):
    assert window.open_path(path, ask=False), window.errors
    analysis = window.document.analysis()
    assert analysis.ok, [d.message for d in analysis.diagnostics]
    assert set(window.scene.nodes) == {n.id for n in window.document.nodes()}
    assert all(not item.problems for item in window.scene.nodes.values())
    assert window.status_text().startswith("✓ Ready to train")
    assert not window.isWindowModified()


def test_examples_menu_lists_every_file(window):
    files = example_files()
    if not files:
        pytest.skip("no examples yet")
    titles = [a.text() for a in window.examples_menu.actions()]
    assert titles == [example_title(p) for p in files]


def test_example_title(tmp_path):
    plain = tmp_path / "xor_mlp.json"
    plain.write_text("{}")
    assert example_title(plain) == "XOR MLP"
    titled = tmp_path / "two_moons.json"
    titled.write_text(json.dumps({"training": {"title": "Two moons, small"}}))
    assert example_title(titled) == "Two moons, small"


def test_saving_an_example_asks_for_a_new_path(window, tmp_path):
    xor = resource_path("examples", "xor_mlp.json")
    if not xor.exists():
        pytest.skip("xor example not there yet")
    window.open_path(xor, ask=False)
    window.controller.add_node("ReLU", (0.0, 300.0))
    target = tmp_path / "mine.json"
    window.ask_save_path = lambda: str(target)
    assert window.file_save()
    assert target.exists() and window.controller.path == target


def test_open_bad_file_shows_error(window, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    assert not window.open_path(bad, ask=False)
    assert window.errors and "bad.json" in window.errors[0]


def test_copy_paste_between_windows(qtbot, tmp_path):
    a = make_window(qtbot, tmp_path, "a")
    b = make_window(qtbot, tmp_path, "b")
    x = a.controller.add_node("Input", (0.0, 0.0))
    d = a.controller.add_node("Dense", (220.0, 0.0))
    a.controller.connect(x, d, "in")
    a.scene.select_nodes([x, d])
    assert a.edit_copy()
    assert "gradscape-graph" in QApplication.clipboard().text()
    ids = b.edit_paste()
    assert len(ids) == 2 and len(b.document.edges()) == 1
    assert sorted(b.scene.selected_node_ids()) == sorted(ids)


def test_cut_and_duplicate(window):
    c = window.controller
    d = c.add_node("Dense", (0.0, 0.0))
    window.scene.select_nodes([d])
    window.edit_duplicate()
    assert len(window.document.nodes()) == 2
    window.edit_select_all()
    window.edit_cut()
    assert not window.document.nodes()
    assert len(window.edit_paste()) == 2


def test_auto_layout_brings_the_graph_into_view(window):
    c = window.controller
    ids = [c.add_node(op, (3000.0 + 300 * i, 2000.0)) for i, op in
           enumerate(("Input", "Dense", "Tanh"))]
    for a, b in zip(ids, ids[1:]):
        assert c.connect(a, b, "in") is None
    window.view.show_graph()
    window.actions["auto_layout"].trigger()
    assert window.document.position(ids[0]) != (3000.0, 2000.0)  # the layout moved them
    visible = window.view.mapToScene(window.view.viewport().rect()).boundingRect()
    for node_id in ids:
        assert visible.intersects(window.scene.nodes[node_id].sceneBoundingRect())


def test_shortcuts_dialog_lists_actions(window):
    dialog = window.shortcuts_dialog()
    table = dialog.findChild(QTableWidget, "shortcuts_table")
    names = {table.item(r, 0).text() for r in range(table.rowCount())}
    for expected in ("Undo", "Redo", "Save", "Open", "Delete", "Zoom In", "Fit to View"):
        assert expected in names
    assert any("Tab" in table.item(r, 1).text() for r in range(table.rowCount()))
    dialog.close()


def test_status_bar_problems_select_node(window):
    d = window.controller.add_node("Dense", (0.0, 0.0))
    assert "problem" in window.problems_button.text()
    entries = window.problem_entries()
    assert any(node == d for _m, node in entries)
    menu = window.show_problems()
    assert menu is not None and menu.actions()
    menu.close()
    window.select_problem(d)
    assert window.scene.selected_node_ids() == [d]


def test_training_dock_empty_state(window):
    assert "Training controls arrive here" in window.training_label.text()


def test_dock_state_is_remembered(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, "s")
    win.palette_dock.hide()
    win.save_settings()
    win.close()
    again = make_window(qtbot, tmp_path, "s")
    assert not again.palette_dock.isVisible()


def test_recovery_is_offered(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, "r")
    folder = win.controller.recovery_dir()
    folder.mkdir(parents=True, exist_ok=True)
    spec = '{"format": "gradscape-graph", "version": 1, "nodes": [{"id": "x", "op": "Input"}]}'
    (folder / "autosave-1-dead.json").write_text(spec)
    offered = []
    win.ask_recover = lambda files: offered.append(files) or "restore"
    win.offer_recovery()
    assert offered and win.document.has_node("x") and win.isWindowModified()


def test_app_opens_first_example_or_file(qtbot, tmp_path):
    from designer.app import open_initial, parse_args

    win = make_window(qtbot, tmp_path, "app")
    open_initial(win, parse_args([]).file)
    if resource_path("examples", "xor_mlp.json").exists():
        assert win.document.nodes() and win.controller.path.name == "xor_mlp.json"
    other = make_window(qtbot, tmp_path, "app2")
    open_initial(other, parse_args([str(tmp_path / "nope.json")]).file)
    assert other.errors and not other.document.nodes()
