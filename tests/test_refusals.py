"""Refused values say why; the mouse wheel edits a spin box only when it has the focus."""

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from designer.editing.param_widgets import refusal_text
from tests.gui import make_window, open_example


def type_into(qtbot, spin, text: str) -> None:
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)


def test_refusal_sentences():
    assert refusal_text("units", "0", 1, 1e9, whole=True).startswith("units must be at least 1")
    assert "positive" in refusal_text("Learning rate", "-1", 1e-7, 1e3)
    assert "at most 0.9" in refusal_text("Validation", "2", 0.0, 0.9)
    assert refusal_text("Learning rate", "0.5", 1e-7, 1e3) is None
    assert "whole number" in refusal_text("Epochs", "2.5", 0, 100, whole=True)


def test_inspector_says_why_units_0_was_refused(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    open_example(qtbot, win, "xor_mlp.json")
    win.scene.select_nodes(["h1"])
    inspector = win.inspector
    spin = inspector.editors["units"]
    type_into(qtbot, spin, "0")
    label = inspector.errors["units"]
    assert label.isVisible() and "units must be at least 1" in label.text()
    assert win.document.node("h1").params["units"] == 8  # the document is untouched
    assert spin.value() == 8


def test_training_panel_says_why_a_negative_learning_rate_was_refused(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    open_example(qtbot, win, "xor_mlp.json")
    spin = win.training.panel.lr_spin
    type_into(qtbot, spin, "-1")
    assert "Learning rate must be positive" in spin.number_guard.last_refusal
    assert "Learning rate must be positive" in win.statusBar().currentMessage()
    assert win.document.training()["lr"] == 0.05


def test_the_wheel_changes_a_spin_box_only_with_focus(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    open_example(qtbot, win, "xor_mlp.json")
    spin = win.training.panel.epochs_spin
    win.view.setFocus()
    before = spin.value()

    def wheel() -> None:
        pos = QPointF(spin.rect().center())
        event = QWheelEvent(pos, QPointF(spin.mapToGlobal(QPoint(5, 5))), QPoint(0, 0),
                            QPoint(0, 120), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(spin, event)

    wheel()
    assert spin.value() == before
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=2000)
    wheel()
    assert spin.value() == before + 1
