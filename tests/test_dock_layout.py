"""The default dock layout at 1280×800: the canvas gets most of the width and every panel
still does its job."""

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QScrollArea

from tests.gui import make_window, open_example


def shown_whole(widget, within) -> bool:
    """WIDGET lies entirely inside WITHIN's visible rectangle (no scrolling needed)."""
    top_left = widget.mapTo(within.window(), QPoint(0, 0))
    rect = widget.rect().translated(top_left)
    area = within.rect().translated(within.mapTo(within.window(), QPoint(0, 0)))
    return widget.isVisible() and area.contains(rect)


def test_the_canvas_gets_most_of_a_1280_window(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1280, 800))
    qtbot.wait(30)
    open_example(qtbot, win, "xor_mlp.json")
    assert win.view.viewport().width() >= 0.6 * 1280
    # Data is a tab beside Training (a table is wide and short), History beside the Palette
    assert win.data_dock in win.tabifiedDockWidgets(win.training_dock)
    assert win.history_dock in win.tabifiedDockWidgets(win.palette_dock)
    lessons = win.tabifiedDockWidgets(win.inspector_dock)
    assert win.lab_a.chain_dock in lessons and win.lab_a.opt_dock in lessons
    assert not win.training_dock.visibleRegion().isEmpty()  # Training is the tab on top


def test_the_panels_keep_the_window_at_its_size_and_show_what_they_must(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1280, 800))
    qtbot.wait(30)
    session = open_example(qtbot, win, "digits_cnn.json")
    session.step()
    predictions = win.lab_training.predictions
    qtbot.waitUntil(lambda: predictions.last is not None, timeout=5000)
    qtbot.wait(50)
    assert (win.width(), win.height()) == (1280, 800)  # samples and matrix did not grow it
    assert predictions.samples.isVisible() and predictions.confusion.isVisible()
    assert predictions.confusion.width() >= 140
    win.scene.select_nodes(["logits"])  # a Dense layer: its units without scrolling
    inspector = win.inspector
    qtbot.waitUntil(lambda: "units" in inspector.editors, timeout=2000)
    scroll_viewport = inspector.findChild(QScrollArea).viewport()
    assert shown_whole(inspector.editors["units"], scroll_viewport)
