"""A sentence on the canvas when a run stops learning (loss at chance level, dead ReLUs).

Listens to the session's `report` and `state_changed` signals only; the analysis itself is
`engine.training.health.diagnose_run`. The chance-level numbers are computed once per
compiled graph on the training thread (`chance_numbers`, a module-level function, so it can
run in a worker process too).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton

from designer import theme
from designer.training import session as states
from engine.core import registry
from engine.training.health import STUCK_WINDOW, chance_accuracy, chance_loss, diagnose_run

MAX_LOSSES = 4 * STUCK_WINDOW


def chance_numbers(program, trainer) -> tuple[float | None, float | None]:
    """(chance loss, chance accuracy) of the training targets; runs on the training thread."""
    if program is None or trainer is None:
        return None, None
    loss_nodes = [n for n in program.spec.nodes if getattr(registry.get(n.op), "is_loss", False)]
    if len(loss_nodes) != 1:
        return None, None
    node = loss_nodes[0]
    op = registry.get(node.op)
    params = op.resolve_params(node.params) if hasattr(op, "resolve_params") else node.params
    reduction = params.get("reduction", "mean")
    y = np.asarray(trainer.y)
    acc = chance_accuracy(y) if node.op in ("CrossEntropyLoss", "BCELoss") else None
    return chance_loss(node.op, y, reduction), acc


class HealthNotice(QObject):
    """Keeps the recent losses and flags of the run and shows `diagnose_run`'s sentences."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.training.session
        self.losses: list[float] = []
        self.chance: tuple[float | None, float | None] = (None, None)
        self.last_report = None
        self.messages: list[str] = []
        self.banner = _Banner(window.view)
        self.banner.closed.connect(self.banner.hide)
        window.view.viewport().installEventFilter(self)
        self.session.report.connect(self._on_report)
        self.session.state_changed.connect(self._on_state)
        self.session.weights_reset.connect(self._forget)

    def _forget(self) -> None:
        self.losses, self.last_report, self.messages = [], None, []
        self.banner.hide()

    def _on_state(self, state: str) -> None:
        if state in (states.READY, states.EMPTY, states.INVALID, states.COMPILING):
            self._forget()
        if state == states.READY:
            self.session.run_on_worker(chance_numbers, self._on_chance, lambda _m: None)
        if state in (states.PAUSED, states.FINISHED):
            self.check()

    def _on_chance(self, numbers) -> None:
        self.chance = numbers

    def _on_report(self, report) -> None:
        if len(report.losses):
            self.losses.extend(float(v) for v in np.asarray(report.losses).ravel())
            del self.losses[:-MAX_LOSSES]
        self.last_report = report
        if report.step % STUCK_WINDOW == 0 or not report.running:
            self.check()

    def dead_relus(self) -> dict[str, float]:
        """ReLU node id → fraction of zero outputs, from the last report's flags."""
        report, doc = self.last_report, self.window.document
        out = {}
        if report is None:
            return out
        for k, fraction in report.flags.items():
            edge = report.edges[k] if k < len(report.edges) else None
            if edge is not None and doc.has_node(edge.src) and doc.node(edge.src).op == "ReLU":
                out[edge.src] = max(out.get(edge.src, 0.0), float(fraction))
        return out

    def check(self) -> list[str]:
        """Diagnose the run so far; show the sentences (or hide the banner)."""
        report = self.last_report
        accuracy = None
        if report is not None and report.epochs:
            accuracy = report.epochs[-1][1].accuracy
        chance, chance_acc = self.chance
        self.messages = diagnose_run(self.losses, chance, self.dead_relus(), accuracy,
                                     chance_acc, report.lr if report is not None else None)
        if self.messages:
            self.banner.show_text(" ".join(self.messages))
            self.window.show_message("⚠ " + self.messages[0])
        else:
            self.banner.hide()
        return self.messages

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.banner.place()
        return False


class _Banner(QFrame):
    """A warning strip at the top of the canvas with a close button."""

    closed = Signal()

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.setObjectName("healthBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        close = QToolButton()
        close.setText("×")
        close.setAutoRaise(True)
        close.setToolTip("Hide this note")
        close.clicked.connect(self.closed.emit)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 4, 6)
        row.addWidget(self.label, 1)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_text(self, text: str) -> None:
        pal = theme.current()
        self.setStyleSheet(
            f"#healthBanner {{ background: {pal.label_background}; border: 1px solid "
            f"{pal.error}; border-left: 5px solid {pal.error}; border-radius: 5px; }}"
            f"QLabel {{ color: {pal.text}; }}")
        self.label.setText("⚠ " + text)
        self.place()
        self.show()
        self.raise_()

    def place(self) -> None:
        vp = self.view.viewport().geometry()
        width = min(620, vp.width() - 20)
        self.setFixedWidth(max(200, width))
        self.adjustSize()
        self.move(vp.left() + (vp.width() - self.width()) // 2, vp.top() + 10)


def install_health_notice(window) -> HealthNotice:
    """Add the stuck-run note to a window that has `install_training` done."""
    return HealthNotice(window)
