"""Train → Add Loss…: give a graph that only predicts (an imported model) a loss and a Target.

The engine's `add_loss` decides the wiring and the Target's size; this module asks which
loss and which node, and adds the two nodes and their wires as one undo step.
Installed with ``install_add_loss(window)`` (kept as ``window.add_loss``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel

from designer.document import commands as cmd
from engine.core import registry
from engine.errors import GradscapeError
from engine.training.loss_head import LOSSES, add_loss, prediction_nodes

HELP = {
    "CrossEntropyLoss": "class scores (logits), one class index per sample",
    "MSELoss": "numbers to predict, mean squared error",
    "MAELoss": "numbers to predict, mean absolute error",
    "HuberLoss": "numbers to predict, robust to outliers",
    "BCELoss": "probabilities of yes/no labels (0 or 1)",
}


class AddLoss(QObject):
    """The Train → Add Loss… action. `ask(nodes, default)` -> (loss, node) or None
    (tests replace it)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.ask: Callable[[list[str], str | None], tuple[str, str] | None] = self._ask
        self.action = QAction("Add &Loss…", window)
        self.action.setStatusTip("Add a loss and a Target so the graph can train (for an "
                                 "imported model, which brings none)")
        self.action.triggered.connect(lambda _c=False: self.run())
        window.actions["add_loss"] = self.action
        window.addAction(self.action)
        training = getattr(window, "training", None)
        if training is not None and getattr(training, "menu", None) is not None:
            training.menu.addSeparator()
            training.menu.addAction(self.action)

    def candidates(self) -> tuple[list[str], str | None]:
        """Nodes a loss may judge (predictions first) and the one to preselect."""
        spec = self.window.document.spec()
        heads = prediction_nodes(spec)
        others = [n.id for n in spec.nodes if n.id not in heads
                  and (op := registry.get(n.op)) is not None and op.role is None
                  and not op.is_loss]
        return heads + others, (heads[0] if heads else None)

    def run(self) -> bool:
        """Ask, then add the loss and its Target as one undo step. False if nothing changed."""
        nodes, default = self.candidates()
        if not nodes:
            self.window.show_message("Add Loss: the graph has no node for a loss to judge.")
            return False
        answer = self.ask(nodes, default)
        if answer is None:
            return False
        return self.add(*answer)

    def add(self, loss: str, node: str) -> bool:
        doc = self.window.document
        spec = doc.spec()
        layout = {n.id: list(doc.position(n.id)) for n in spec.nodes}
        try:
            new = add_loss(type(spec)(spec.nodes, spec.edges, layout, spec.training), loss, node)
        except GradscapeError as exc:
            self.window.show_error("Cannot add the loss", str(exc))
            return False
        added = new.nodes[len(spec.nodes):]
        edges = list(new.edges[len(spec.edges):])
        self.window.controller.undo_stack.push(cmd.PasteItems(
            doc, [(n, tuple(new.layout[n.id])) for n in added], edges, "Add loss:"))
        self.window.show_message(f"Added {loss} on '{node}' and a Target. Choose a data set "
                                 "in the training panel, then Play.")
        return True

    def _ask(self, nodes: list[str], default: str | None) -> tuple[str, str] | None:
        dialog = QDialog(self.window)
        dialog.setWindowTitle("Add Loss")
        form = QFormLayout(dialog)
        losses = QComboBox()
        for name in LOSSES:
            losses.addItem(f"{name} — {HELP[name]}", name)
        targets = QComboBox()
        targets.addItems(nodes)
        if default is not None:
            targets.setCurrentText(default)
        form.addRow(QLabel("The loss compares a node's output with a new Target."))
        form.addRow("Loss:", losses)
        form.addRow("Judges node:", targets)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return str(losses.currentData()), targets.currentText()


def install_add_loss(window) -> AddLoss:
    """Add Train → Add Loss… to a MainWindow (after install_training)."""
    return AddLoss(window)
