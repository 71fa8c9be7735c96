"""Learning lab, part A: chain-rule inspector, neuron view, gradient check, optimizer state.

`install_learning_lab_a(window)` adds the two docks (Chain Rule, Optimizer State), the
in-place neuron view of Dense layers, the gradient-check dialog and their actions in the
"Learn" menu (shared with the other lab features: found by its objectName, created before
Help when missing). It is called once from `MainWindow.__init__`, after training exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QWidget

from designer.dock_tabs import tabify_when_shown
from designer.lab.chain_rule_panel import ChainRulePanel
from designer.lab.menu import learn_menu
from designer.lab.neuron_view import NeuronViews

# Built on first use: the optimizer plots need pyqtgraph, the dialog is rarely opened.
if TYPE_CHECKING:
    from designer.lab.gradcheck_dialog import GradcheckDialog
    from designer.lab.optimizer_state_panel import OptimizerStatePanel

RIGHT_WIDTH = 430
MIN_WIDTH = 320  # a lesson panel narrower than this gets RIGHT_WIDTH
LESSON_HEIGHT = 300  # and one lower than this gets this height


class LearningLabA(QObject):
    """Everything part A adds to a main window (kept as `window.lab_a`)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        session = window.training.session
        self.chain_panel = ChainRulePanel(session, window.scene)
        self.chain_dock = self._dock("Chain Rule", "chain_rule_dock", self.chain_panel)
        self._opt_panel: OptimizerStatePanel | None = None
        self.opt_dock = self._dock("Optimizer State", "optimizer_state_dock", QWidget())
        tabify_when_shown(window, window.inspector_dock, [self.chain_dock, self.opt_dock])
        self.opt_dock.visibilityChanged.connect(self._opt_visible)
        self.neurons = NeuronViews(session, window.scene, window.view)
        self.gradcheck_dialog: GradcheckDialog | None = None
        # A selected wire has nothing to show in the Inspector: show how its gradient was made.
        window.scene.selectionChanged.connect(self._raise_for_wire)
        self._build_actions()

    @property
    def opt_panel(self) -> OptimizerStatePanel:
        """The Optimizer State panel, built the first time its dock is shown or it is asked for."""
        if self._opt_panel is None:
            from designer.lab.optimizer_state_panel import OptimizerStatePanel

            self._opt_panel = OptimizerStatePanel(self.window.training.session,
                                                  self.window.scene)
            self._opt_panel.set_active(self.opt_dock.isVisible())
            self.opt_dock.setWidget(self._opt_panel)
        return self._opt_panel

    def _opt_visible(self, on: bool) -> None:
        if on or self._opt_panel is not None:
            self.opt_panel.set_active(on)

    def _dock(self, title: str, name: str, widget) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        return dock

    def _build_actions(self) -> None:
        w = self.window
        menu = learn_menu(w)
        if menu.actions():
            menu.addSeparator()

        def act(name: str, text: str, slot, tip: str, shortcut: str | None = None) -> QAction:
            a = QAction(text, w)
            a.setStatusTip(tip)
            if shortcut:
                a.setShortcut(shortcut)
            a.triggered.connect(lambda _c=False: slot())
            w.actions[name] = a
            w.addAction(a)
            menu.addAction(a)
            return a

        act("learn_chain_rule", "&Chain-Rule Inspector", self.show_chain_rule,
            "How the selected wire's or node's gradient was made, with the numbers")
        act("learn_neurons", "Expand Dense Layer into &Neurons", self.toggle_neurons,
            "Show the selected Dense layer's neurons and every weight on the canvas")
        act("learn_gradcheck", "&Gradient Check…", self.run_gradcheck,
            "Compare backprop with finite differences on the current batch")
        act("learn_optimizer", "&Optimizer State", self.show_optimizer_state,
            "Gradient, momentum / Adam's m and v and the step taken, over time")
        # The node context menu gets the neuron toggle too.
        sep = QAction(w)
        sep.setSeparator(True)
        w.view.node_menu_actions = list(w.view.node_menu_actions) + [
            sep, self.neurons.toggle_action]
        self.chain_dock.toggleViewAction().setText("Chain Rule")

    # -- actions ------------------------------------------------------------------------
    def _show(self, dock: QDockWidget) -> None:
        dock.show()
        dock.raise_()
        # Widen the column only when it is narrow: a wider column would shrink the canvas
        # below the zoom where its labels are legible.
        if dock.width() < MIN_WIDTH:
            self.window.resizeDocks([dock], [RIGHT_WIDTH], Qt.Orientation.Horizontal)
        # The lesson takes most of the column's height from the panels below it: both
        # chain-rule paths and their sum, whole Optimizer State lines.
        if dock.height() < LESSON_HEIGHT:
            self.window.resizeDocks([dock], [LESSON_HEIGHT], Qt.Orientation.Vertical)

    def show_chain_rule(self) -> None:
        self._show(self.chain_dock)

    def show_optimizer_state(self) -> None:
        self._show(self.opt_dock)

    def _raise_for_wire(self) -> None:
        try:
            edges = self.window.scene.selected_edges()
            nodes = self.window.scene.selected_node_ids()
        except RuntimeError:
            return
        if len(edges) == 1 and not nodes and self.chain_dock.isVisible():
            self.chain_dock.raise_()

    def toggle_neurons(self) -> None:
        self.neurons.toggle_selected()

    def run_gradcheck(self) -> GradcheckDialog:
        if self.gradcheck_dialog is None:
            from designer.lab.gradcheck_dialog import GradcheckDialog

            self.gradcheck_dialog = GradcheckDialog(self.window.training.session, self.window)
        self.gradcheck_dialog.show()
        self.gradcheck_dialog.raise_()
        self.gradcheck_dialog.run()
        return self.gradcheck_dialog


def install_learning_lab_a(window) -> LearningLabA:
    """Add part A of the learning lab to a MainWindow; returns it (store it on the window)."""
    return LearningLabA(window)
