"""Small editors generated from an `engine.ops.base.Param` schema, and number spin boxes.

Used by the training panel for data-set, optimizer and schedule settings. Every editor calls
`on_change(value)` once per committed edit (no keyboard tracking: typing "0.05" is one edit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox, QWidget

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


def param_editor(param: Param, value: Any, on_change: Callable[[Any], None]) -> QWidget:
    """An editor for one schema entry, showing `value`; edits call `on_change(new_value)`."""
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
