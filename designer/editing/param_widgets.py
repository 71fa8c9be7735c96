"""Small editors generated from an `engine.ops.base.Param` schema, and number spin boxes.

Used by the training panel for data-set, optimizer and schedule settings. Every editor calls
`on_change(value)` once per committed edit (no keyboard tracking: typing "0.05" is one edit).

`guard_number_box` makes a spin box say why a typed number was refused (a spin box otherwise
snaps silently back to its last value) and lets the mouse wheel change it only while it has
the keyboard focus, so scrolling a panel never edits a setting by accident.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QSpinBox,
    QToolTip,
    QWidget,
)

from engine.ops.base import Param

BIG = 1_000_000_000
_LOG_STEPS = (1.0, 2.0, 5.0)  # a 1-2-5 ladder per decade


class NumberSpinBox(QDoubleSpinBox):
    """A float spin box that shows numbers compactly (``1e-08``, ``0.001``, ``2.5``)."""

    def __init__(self, minimum: float = 0.0, maximum: float = 1e9, step: float = 0.1,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(minimum, maximum)
        self.setSingleStep(step)
        self.setKeyboardTracking(False)
        self.setAccelerated(True)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.replace(",", ".").strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.replace(",", ".").strip()
        if t in ("", "-", "+", ".", "-.", "e", "E") or t.endswith(("e", "E", "e-", "E-")):
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        if math.isfinite(v) and self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos


class LogSpinBox(NumberSpinBox):
    """A spin box for rates: the arrows walk a 1-2-5 ladder (… 0.001, 0.002, 0.005, 0.01 …)."""

    def __init__(self, minimum: float = 1e-7, maximum: float = 1e3,
                 parent: QWidget | None = None):
        super().__init__(minimum, maximum, 0.0, parent)
        self.setAccelerated(False)

    def stepBy(self, steps: int) -> None:
        v = self.value()
        for _ in range(abs(steps)):
            v = _ladder(v, up=steps > 0)
        self.setValue(min(max(v, self.minimum()), self.maximum()))

    def stepEnabled(self):
        return (QDoubleSpinBox.StepEnabledFlag.StepUpEnabled
                | QDoubleSpinBox.StepEnabledFlag.StepDownEnabled)


def _ladder(v: float, up: bool) -> float:
    """The next value of the 1-2-5 ladder above (or below) v."""
    if v <= 0:
        return 1e-4
    exp = math.floor(math.log10(v))
    candidates = [m * 10.0 ** e for e in (exp - 1, exp, exp + 1) for m in _LOG_STEPS]
    candidates = [float(f"{c:.12g}") for c in candidates]
    if up:
        return min(c for c in candidates if c > v * (1 + 1e-9))
    return max(c for c in candidates if c < v * (1 - 1e-9))


def refusal_text(label: str, text: str, minimum: float, maximum: float,
                 whole: bool = False) -> str | None:
    """Why `text` typed into a number box for `label` is refused, or None when it is fine."""
    t = text.replace(",", ".").strip()
    if not t:
        return None
    try:
        v = float(t)
    except ValueError:
        return f"{label}: '{text}' is not a number."
    kind = "a whole number" if whole else "a number"
    if not math.isfinite(v):
        return f"{label} must be {kind}, not {text}."
    if whole and v != int(v):
        return f"{label} must be a whole number; {text} was refused."
    if v < minimum:
        bound = ("positive" if minimum > 0 and minimum < 1e-3 and not whole
                 else f"at least {minimum:g}")
        return (f"{label} must be {bound}; {text} was refused "
                f"and {label.lower()} was left as it was.")
    if v > maximum:
        return (f"{label} must be at most {maximum:g}; {text} was refused "
                f"and {label.lower()} was left as it was.")
    return None


class _WheelOnlyWithFocus(QObject):
    """Event filter: the wheel goes to the panel around a widget that has no focus."""

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Wheel and not obj.hasFocus():
            event.ignore()
            return True
        return False


class _NumberGuard(_WheelOnlyWithFocus):
    """Event filter of one spin box: explains refused values; wheel only with focus."""

    def __init__(self, box: QAbstractSpinBox, label: str,
                 on_refused: Callable[[str], None] | None):
        super().__init__(box)
        self.box, self.label, self.on_refused = box, label, on_refused
        self.last_refusal: str | None = None

    def check(self) -> str | None:
        box = self.box
        text = box.lineEdit().text()
        for affix in (box.prefix(), box.suffix()):
            if affix:
                text = text.replace(affix, "")
        if isinstance(box, QSpinBox) and box.specialValueText() and \
                text.strip() == box.specialValueText():
            return None
        reason = refusal_text(self.label, text, box.minimum(), box.maximum(),
                              whole=isinstance(box, QSpinBox))
        self.last_refusal = reason
        if reason:
            if self.on_refused is not None:
                self.on_refused(reason)
            if box.isVisible():
                QToolTip.showText(box.mapToGlobal(box.rect().bottomLeft()), reason, box)
            window = box.window()
            if hasattr(window, "show_message"):
                window.show_message(reason)
        return reason

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if super().eventFilter(obj, event):
            return True
        if kind == QEvent.Type.FocusOut or (
                kind == QEvent.Type.KeyPress
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)):
            self.check()
        return False


def guard_number_box(box: QAbstractSpinBox, label: str,
                     on_refused: Callable[[str], None] | None = None) -> QAbstractSpinBox:
    """Make `box` explain refused values (to `on_refused`, a tooltip and the window's status
    bar) and ignore the mouse wheel unless it has the keyboard focus. Returns `box`."""
    box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone does not focus it
    guard = _NumberGuard(box, label, on_refused)
    box.installEventFilter(guard)
    box.setProperty("number_guard", True)
    box.number_guard = guard
    return box


def wheel_only_with_focus(widget: QWidget) -> QWidget:
    """The mouse wheel changes `widget` (a combo box) only while it has the focus."""
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_WheelOnlyWithFocus(widget))
    widget.setProperty("wheel_guard", True)
    return widget


def param_editor(param: Param, value: Any, on_change: Callable[[Any], None],
                 on_refused: Callable[[str], None] | None = None) -> QWidget:
    """An editor for one schema entry, showing `value`; edits call `on_change(new_value)`,
    and a typed number outside the schema's range calls `on_refused(sentence)`."""
    if param.kind == "bool":
        w = QCheckBox()
        w.setChecked(bool(value))
        w.toggled.connect(lambda v: on_change(bool(v)))
    elif param.kind == "choice":
        w = QComboBox()
        w.addItems(list(param.choices))
        w.setCurrentText(str(value))
        w.currentTextChanged.connect(on_change)
    elif param.kind == "int":
        w = QSpinBox()
        w.setRange(int(param.min) if param.min is not None else -BIG,
                   int(param.max) if param.max is not None else BIG)
        w.setSingleStep(int(param.step or 1))
        w.setKeyboardTracking(False)
        w.setValue(int(value))
        w.valueChanged.connect(lambda v: on_change(int(v)))
    else:  # float (and anything numeric)
        lo = param.min if param.min is not None else -1e12
        hi = param.max if param.max is not None else 1e12
        w = NumberSpinBox(lo, hi, param.step or 0.01)
        w.setValue(float(value))
        w.valueChanged.connect(lambda v: on_change(float(v)))
    if isinstance(w, QAbstractSpinBox):
        guard_number_box(w, param.name, on_refused)
    elif isinstance(w, QComboBox):
        wheel_only_with_focus(w)
    w.setToolTip(param.help)
    return w


def set_editor_value(w: QWidget, value: Any) -> None:
    """Show `value` in an editor made by `param_editor` without emitting a change."""
    w.blockSignals(True)
    try:
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
    finally:
        w.blockSignals(False)
