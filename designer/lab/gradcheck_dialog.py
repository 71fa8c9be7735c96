"""Gradient check: does backprop compute the right gradient? Compare with finite differences.

For every learnable tensor, the derivative of the loss is also estimated numerically:
nudge one number by ±ε, run the network forward twice and take (L(θ+ε) − L(θ−ε)) / 2ε.
`engine.lab.gradcheck` does this in float64 on a private copy of the graph with the current
weights and the current batch (copied from the worker with `session.run_on_worker`), on a
thread of its own; the dialog lists the relative error per tensor and says in plain words
what it means.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from designer import theme
from designer.lab.background import BackgroundJob, start_job
from designer.lab.formula_html import esc
from designer.lab.replay import current_batch_copy
from engine.core.compiler import compile_graph
from engine.lab.gradcheck import GradcheckReport, gradcheck

INTRO = (
    "<b>What am I looking at?</b> Backprop computes every gradient in one backward pass. "
    "A slow but simple check is to <i>measure</i> each derivative instead: nudge one weight "
    "by a tiny ε up and down, run the network forward twice and take "
    "(L(θ+ε) − L(θ−ε)) / 2ε. The table compares the two for every learnable tensor "
    "(in float64, on a copy with the current weights and batch; big tensors on 200 random "
    "entries). The relative error is ‖backprop − measured‖ / (‖backprop‖ + ‖measured‖).")


def run_check(payload) -> tuple[GradcheckReport, int, bool, int]:
    """(report, step, after_step, batch size) for a `current_batch_copy` payload."""
    spec, theta, buffers, x, y, step, used = payload
    program = compile_graph(spec, dtype="float64", seed=0)
    program.theta[...] = theta
    for key, arr in buffers.items():
        if key in program.buffers:
            program.buffers[key][...] = arr
    return gradcheck(program, x, y), step, used, len(x)


def verdict(report: GradcheckReport) -> str:
    """The result in plain words."""
    if not report.rows:
        return "This graph has nothing to learn, so there is nothing to check."
    if report.passed:
        return (f"✓ Backprop computes the exact gradient: every relative error is below "
                f"{report.rtol:.0e} (what is left is the rounding of the finite difference "
                "itself, not a mistake in backprop).")
    worst = report.worst
    return (f"✗ {worst.key} disagrees: relative error {worst.rel:.1e} is above {report.rtol:.0e}. "
            "Usually a kink is to blame (ReLU or max exactly at 0, where the slope jumps and "
            "the measurement straddles it) or randomness (Dropout); a steady large error "
            "points to a wrong backward rule.")


class GradcheckDialog(QDialog):
    """Non-modal: Run checks the current graph and batch, the table fills when done."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.report: GradcheckReport | None = None
        self._job: BackgroundJob | None = None
        self.setWindowTitle("Gradient Check")
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget(0, 5)
        self.table.setObjectName("gradcheck_table")
        self.table.setHorizontalHeaderLabels(
            ["tensor", "checked", "max |error|", "relative error", "result"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, 5):
            head.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.run_button = QPushButton("Run Again")
        self.run_button.clicked.connect(self.run)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.verdict)
        layout.addWidget(buttons)
        self.resize(640, 460)

    @property
    def busy(self) -> bool:
        return self._job is not None and self._job.isRunning()

    def run(self) -> None:
        """Copy the weights and batch from the worker, then check on a thread of its own."""
        if self.busy:
            return
        self.run_button.setEnabled(False)
        self.status.setText("Copying the current weights and batch…")
        self.session.run_on_worker(current_batch_copy, self._start, self._failed)

    def _start(self, payload) -> None:
        self.status.setText("Measuring every derivative (two forward passes per number)…")
        self._job = start_job(lambda _job: run_check(payload), on_done=self._done,
                              on_failed=self._failed, parent=self, name="gradcheck")

    def _failed(self, message: str) -> None:
        self.run_button.setEnabled(True)
        self.status.setText(f"<span style='color:{theme.current().error}'>"
                            f"{esc(message)}</span>")

    def _done(self, result) -> None:
        report, step, used, n = result
        self.report = report
        self.run_button.setEnabled(True)
        when = f"after training step {step}" if used else "before any training step"
        self.status.setText(f"Checked {when}: the batch of {n} sample{'s' if n != 1 else ''} "
                            "that step used, ε = 1e-6, float64.")
        self.fill(report)

    def fill(self, report: GradcheckReport) -> None:
        pal = theme.current()
        self.table.setRowCount(len(report.rows))
        for r, row in enumerate(report.rows):
            cells = [row.key, f"{row.checked}/{row.size}", f"{row.max_abs:.2e}",
                     f"{row.rel:.2e}", "✓ pass" if row.passed else "✗ FAIL"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if c == 4:
                    item.setForeground(QColor(pal.ok if row.passed else pal.error))
                self.table.setItem(r, c, item)
        self.verdict.setText(verdict(report))
        color = pal.ok if report.passed else pal.error
        self.verdict.setStyleSheet(f"color: {color}; font-weight: 600;")

    def rows(self) -> list[tuple[str, bool]]:
        """(tensor, passed) as shown in the table."""
        return [(self.table.item(r, 0).text(), self.table.item(r, 4).text().endswith("pass"))
                for r in range(self.table.rowCount())]

    def done(self, code: int) -> None:
        if self._job is not None and self._job.isRunning():
            self._job.wait(10000)
        super().done(code)
