"""Your data in the GUI: the Data dock's table editor, the standardise switch, the chain
example's hand calculation, drawing points on the Predictions plane, image folders, and
bad files that leave the document untouched."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QApplication

from designer.overlays.gradient_overlay import format_number
from tests.gui import on_worker, open_example, window_fixture
from tests.test_your_data import hand_chain, make_images, rel_close


@pytest.fixture
def window(qtbot, tmp_path):
    yield from window_fixture(qtbot, tmp_path, size=(1280, 800))


def _send(widget, kind, pos, buttons):
    QApplication.sendEvent(widget, QMouseEvent(
        kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), Qt.MouseButton.LeftButton,
        buttons, Qt.KeyboardModifier.NoModifier))


def drag(view, start: QPointF, end: QPointF):
    """A real left-button drag on the Predictions plot between plane coordinates."""
    vb = view.plot.getPlotItem().getViewBox()
    a, b = (view.plot.mapFromScene(vb.mapViewToScene(p)) for p in (start, end))
    port, left = view.plot.viewport(), Qt.MouseButton.LeftButton
    _send(port, QEvent.Type.MouseButtonPress, a, left)
    for t in (0.25, 0.5, 0.75, 1.0):
        _send(port, QEvent.Type.MouseMove, a + (b - a) * t, left)
    _send(port, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)


def click(qtbot, view, at: QPointF, button=Qt.MouseButton.LeftButton):
    """A real mouse click on the Predictions plot at plane coordinates `at`."""
    vb = view.plot.getPlotItem().getViewBox()
    pos = view.plot.mapFromScene(vb.mapViewToScene(at))
    qtbot.mouseClick(view.plot.viewport(), button, pos=pos)


def rows_of(window):
    return window.document.training()["data"]["rows"]


def test_table_editor_edit_paste_and_undo(qtbot, window):
    open_example(qtbot, window, "chain_rule.json")
    dock = window.data
    model = dock.model
    stack = window.controller.undo_stack
    assert (model.rowCount(), model.columnCount()) == (3, 2)
    assert model.headerData(1, Qt.Orientation.Horizontal) == "y (target)"
    assert model.data(model.index(1, 0)) == "-1"

    # typing a cell: one undo step, the view follows undo and redo
    assert model.setData(model.index(0, 0), "0.75")
    assert rows_of(window)[0] == [0.75, 1.0] and model.data(model.index(0, 0)) == "0.75"
    assert stack.undoText() == "Edit cell 1, x"
    stack.undo()
    assert rows_of(window)[0] == [0.5, 1.0] and model.data(model.index(0, 0)) == "0.5"
    stack.redo()
    assert model.data(model.index(0, 0)) == "0.75"

    # pasting spreadsheet text at the current cell grows the table: one undo step
    dock.view.setCurrentIndex(model.index(2, 0))
    dock.paste("7\t8\t9\n10\t11\t12\n")
    assert model.columnCount() == 3 and model.rowCount() == 4
    assert rows_of(window)[2:] == [[7.0, 8.0, 9.0], [10.0, 11.0, 12.0]]
    assert window.document.training()["data"]["columns"] == ["x", "y", "x3"]
    stack.undo()
    assert rows_of(window) == [[0.75, 1.0], [-1.0, 0.0], [2.0, -0.5]]
    assert model.columnCount() == 2

    # rows and columns, targets and renaming
    dock.view.clearSelection()
    dock.add_row()
    assert model.rowCount() == 4 and rows_of(window)[3] == [None, None]
    dock.view.selectRow(3)
    dock.remove_selected_rows()
    assert model.rowCount() == 3
    assert model.add_column("z") and window.document.training()["data"]["columns"] == [
        "x", "z", "y"]
    assert model.rename_column(1, "w") and model.set_targets(["w", "y"])
    assert window.document.training()["data"]["targets"] == ["w", "y"]
    assert not model.rename_column(0, "y") and "already a column named 'y'" in model.message

    # copy gives tab-separated text; Ctrl+V in the table pastes the clipboard
    dock.view.clearSelection()
    text = dock.copy()
    assert text.splitlines()[0] == "x\tw\ty"
    assert QGuiApplication.clipboard().text() == text
    QGuiApplication.clipboard().setText("42\t43")
    dock.view.setFocus()
    dock.view.setCurrentIndex(model.index(1, 0))
    qtbot.keyClick(dock.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert rows_of(window)[1][:2] == [42.0, 43.0]
    assert stack.undoText() == "Paste into data table"


def test_bad_paste_names_the_line_and_changes_nothing(qtbot, window):
    open_example(qtbot, window, "chain_rule.json")
    before = window.document.training()
    revision = window.document.revision
    window.data.paste("1\t2\n3\n")
    assert window.document.training() == before and window.document.revision == revision
    assert "Line 2 has 1 values" in window.data.message_label.text()
    assert window.data.message_label.isVisibleTo(window.data)


def test_editing_the_table_retrains_on_the_new_numbers(qtbot, window):
    session = open_example(qtbot, window, "chain_rule.json")
    window.data.model.setData(window.data.model.index(0, 0), "1.5")
    session.compile_now()
    qtbot.waitUntil(lambda: session.state in ("ready", "paused"), timeout=5000)
    xs = on_worker(qtbot, session, lambda p, t: t.x[:, 0].tolist())
    assert xs == [1.5, -1.0, 2.0]


def test_chain_example_one_step_in_the_gui_equals_the_hand_calculation(qtbot, window):
    session = open_example(qtbot, window, "chain_rule.json")
    panel = window.training.panel
    assert panel.standardize_check.isVisibleTo(panel)
    assert not panel.standardize_check.isChecked()
    assert panel.table_label.text() == "3 rows: x → y. Edit them in the Data dock."
    with qtbot.waitSignal(session.report, timeout=5000):
        session.step()
    qtbot.waitUntil(lambda: session.last_report is not None, timeout=5000)

    def grads(program, trainer):
        g = {e.node: float(program.param_grad(e).ravel()[0]) for e in program.entries}
        return trainer.x[trainer.last_batch].tolist(), g

    batch, g = on_worker(qtbot, session, grads)
    assert batch == [[0.5]]  # the first row of the table, as written
    loss, da, db, dc = hand_chain([(0.5, 1.0)])
    assert rel_close(session.last_report.loss, loss)
    assert rel_close(g["a"], da) and rel_close(g["b"], db) and rel_close(g["c"], dc)
    assert panel.loss_label.text() == f"loss {loss:.4g}"
    # each parameter's wire shows its gradient; hovering gives every digit
    for node, want in (("a", da), ("b", db), ("c", dc)):
        item = next(i for e, i in window.scene.edges.items() if e.src == node)
        assert item.value_label.text().endswith(format_number(want))
        assert f"∂L/∂wire: {want!r}" in item.toolTip()


def test_standardize_checkbox_is_one_undo_step(qtbot, window):
    open_example(qtbot, window, "chain_rule.json")
    panel = window.training.panel
    panel.standardize_check.setChecked(True)
    assert window.document.training()["standardize"] is True
    window.controller.undo_stack.undo()
    assert window.document.training()["standardize"] is False
    assert not panel.standardize_check.isChecked()


def test_drawing_points_adds_moves_and_deletes_table_rows(qtbot, window):
    session = open_example(qtbot, window, "xor_mlp.json")
    view = window.lab_training.predictions
    window.lab_training.predictions_dock.raise_()
    qtbot.waitUntil(lambda: view.last is not None and view.last.kind == "regions",
                    timeout=5000)
    drawer = view.drawer
    assert drawer.combo.isVisibleTo(view)
    n = len(view.last.train_x) + (0 if view.last.val_x is None else len(view.last.val_x))
    drawer.set_mode(OFF := "off")
    assert not drawer.add_at(0.1, 0.2)  # drawing is off: nothing happens
    assert window.document.training().get("dataset") == "xor" and OFF

    # a mouse click on the plane (even on a point there) adds a point of the chosen class
    drawer.combo.setCurrentIndex(drawer.combo.findData(1))
    drawer.combo.activated.emit(drawer.combo.currentIndex())
    assert drawer.mode == 1
    click(qtbot, view, QPointF(0.31, -0.42))
    training = window.document.training()
    assert training["dataset"] == "table" and training["standardize"] is False
    rows = training["data"]["rows"]
    assert len(rows) == n + 1 and rows[-1][2] == 1.0
    assert abs(rows[-1][0] - 0.31) < 0.05 and abs(rows[-1][1] + 0.42) < 0.05
    assert window.controller.undo_stack.undoText() == "Add point"

    # training picks the change up
    qtbot.waitUntil(lambda: view.last is not None and len(view.last.train_x) + (
        0 if view.last.val_x is None else len(view.last.val_x)) == n + 1, timeout=8000)
    count = on_worker(qtbot, session, lambda p, t: len(t.x) + (len(t.val_set) if t.val_set
                                                               else 0))
    assert count == n + 1

    # drag the new point (press on it, move, release), then right-click it away
    x0, y0 = rows[-1][0], rows[-1][1]
    drag(view, QPointF(x0, y0), QPointF(0.9, 0.8))
    assert rows_of(window)[-1] == pytest.approx([0.9, 0.8, 1.0], abs=0.05)  # a pixel or two
    assert window.controller.undo_stack.undoText() == "Move point"
    moved = rows_of(window)[-1]
    click(qtbot, view, QPointF(0.9, 0.8), Qt.MouseButton.RightButton)
    assert len(rows_of(window)) == n and moved not in rows_of(window)
    assert window.controller.undo_stack.undoText() == "Delete point"
    stack = window.controller.undo_stack
    stack.undo()
    stack.undo()
    assert rows_of(window)[-1][:2] == [x0, y0]
    stack.undo()
    assert window.document.training().get("dataset") == "xor"


def test_drawing_on_a_regression_curve_adds_x_and_y(qtbot, window):
    open_example(qtbot, window, "chain_rule.json")
    view = window.lab_training.predictions
    window.lab_training.predictions_dock.raise_()
    qtbot.waitUntil(lambda: view.last is not None and view.last.kind == "curve", timeout=5000)
    view.drawer.set_mode("value")
    assert view.drawer.add_at(1.0, 0.25)
    assert rows_of(window)[-1] == [1.0, 0.25]
    assert view.drawer.nearest(1.0, 0.25) == 3
    drag(view, QPointF(0.5, 1.0), QPointF(1.5, 0.5))  # the first row's point
    assert rows_of(window)[0] == pytest.approx([1.5, 0.5], abs=0.05)
    window.controller.undo_stack.undo()
    assert rows_of(window)[0] == [0.5, 1.0]


def test_image_folder_from_the_panel_with_preview(qtbot, window, tmp_path):
    root = make_images(tmp_path / "shapes")
    open_example(qtbot, window, "digits_cnn.json")
    assert window.controller.set_param("logits", "units", 2) is None  # two classes of images
    panel = window.training.panel
    panel.ask_image_folder = lambda: str(root)
    panel.choose_image_folder()  # checked on a thread, then set
    qtbot.waitUntil(lambda: window.document.training().get("images") == str(root),
                    timeout=5000)
    assert panel.images_row.isVisibleTo(panel)
    session = window.training.session
    session.compile_now()
    qtbot.waitUntil(lambda: session.state in ("ready", "paused", "failed"), timeout=8000)
    assert session.state != "failed", panel.problem_label.text()
    shapes = on_worker(qtbot, session, lambda p, t: (t.x.shape, t.val_set.x.shape if t.val_set
                                                     else (0,)))
    assert shapes[0][1:] == (1, 8, 8) and shapes[0][0] + shapes[1][0] == 6
    dock = window.data
    window.data_dock.show()
    window.data_dock.raise_()
    dock._maybe_preview()
    qtbot.waitUntil(lambda: len(dock.image_grid.images) == 6, timeout=8000)
    assert "6 images in 2 classes (circle 3, square 3), resized to 1×8×8" in (
        dock.images_label.text())
    assert dock.image_grid.images[0][1].shape == (1, 8, 8)


def test_bad_image_folder_and_bad_csv_leave_the_document_untouched(qtbot, window, tmp_path):
    open_example(qtbot, window, "xor_mlp.json")
    panel = window.training.panel
    root = make_images(tmp_path / "r")
    (root / "empty").mkdir()
    before, revision = window.document.training(), window.document.revision
    panel.ask_image_folder = lambda: str(root)
    panel.choose_image_folder()
    qtbot.waitUntil(lambda: "'r/empty' has no PNG or JPEG images" in (
        panel.problem_label.text()), timeout=5000)
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b,label\n1,2,x\n3,four,y\n", encoding="utf-8")
    panel.ask_csv_path = lambda: str(csv)
    panel.choose_csv()
    qtbot.waitUntil(lambda: "Line 3, column 'b' holds 'four'" in panel.problem_label.text(),
                    timeout=5000)
    assert window.document.training() == before and window.document.revision == revision
    assert np.isfinite(revision)
