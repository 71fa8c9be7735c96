"""Learning views of live training: one call, `install_lab_training(window)`.

Adds three docks below the inspector, tabbed: "Predictions" (decision regions, fitted
curve or sample grid, and a confusion matrix), "Weights" (heatmaps of the selected node's
parameters and gradients) and "Backprop" (step-by-step forward, backward and update, with
its Train-menu actions F7/F8/F9). Call it after `install_training(window)`.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget

from designer.lab.backprop_stepper import BackpropPanel, BackpropStepper
from designer.training.on_demand import DeferredWidget, build_when_idle

RIGHT_WIDTH = 340  # samples beside the confusion matrix; the canvas keeps the rest
TRAINING_HEIGHT = 250  # leaves a 1280×800 canvas tall enough for the examples at a legible zoom


class LabTraining(QObject):
    """The three docks and the stepper (kept as `window.lab_training`)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.stepper = BackpropStepper(window, self)
        self.backprop = BackpropPanel(self.stepper)
        # Predictions and Weights are pyqtgraph plots: built right after the window's first
        # paint (or when asked for), not as part of opening the window.
        self.predictions_holder = DeferredWidget(
            self._make_predictions, "Predictions appear here.",
            placed=lambda view: view.request(now=True))
        self.weights_holder = DeferredWidget(
            self._make_weights, "Weights appear here.",
            placed=lambda view: (view._on_selection(), view.request()))  # already selected
        self.predictions_dock = self._dock("Predictions", "predictions_dock",
                                           self.predictions_holder)
        self.weights_dock = self._dock("Weights", "weights_dock", self.weights_holder)
        self.backprop_dock = self._dock("Backprop", "backprop_dock", self.backprop)
        self._place_docks()
        build_when_idle(window, self.predictions_holder.widget, self.weights_holder.widget)
        self._add_actions()
        self.stepper.forward_action.triggered.connect(lambda _c=False: self.backprop_dock.raise_())

    @property
    def predictions(self):
        """The PredictionView (built now if it was not yet)."""
        return self.predictions_holder.widget()

    @property
    def weights(self):
        """The WeightsView (built now if it was not yet)."""
        return self.weights_holder.widget()

    def _make_predictions(self):
        from designer.lab.prediction_view import PredictionView

        view = PredictionView(self.window)
        view.set_dock(self.predictions_dock)
        return view

    def _make_weights(self):
        from designer.lab.weights_view import WeightsView

        view = WeightsView(self.window)
        view.set_dock(self.weights_dock)
        return view

    def _dock(self, title: str, name: str, widget) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        return dock

    def _place_docks(self) -> None:
        w = self.window
        right = Qt.DockWidgetArea.RightDockWidgetArea
        docks = (self.predictions_dock, self.weights_dock, self.backprop_dock)
        restored = [w.restoreDockWidget(d) for d in docks]  # a layout saved earlier
        self._tabs_pending = False
        if all(restored):
            return
        # Below the inspector's tab group (splitDockWidget would join that group as a tab).
        w.addDockWidget(right, self.predictions_dock, Qt.Orientation.Vertical)
        for d in (self.weights_dock, self.backprop_dock):
            w.addDockWidget(right, d, Qt.Orientation.Vertical)
            d.hide()
        anchor = getattr(w, "inspector_dock", None)
        w.resizeDocks([self.predictions_dock], [RIGHT_WIDTH], Qt.Orientation.Horizontal)
        if anchor is not None:
            w.resizeDocks([anchor, self.predictions_dock], [260, 420], Qt.Orientation.Vertical)
        # Tabifying into a second group before the window is laid out leaves a stale extra
        # tab bar on screen (Qt 6.11), so the tabs are made once the window is showing.
        self._tabs_pending = True
        w.installEventFilter(self)
        if w.isVisible():
            QTimer.singleShot(0, self, self.make_tabs)  # not after the window is gone

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Show and self._tabs_pending:
            QTimer.singleShot(0, self, self.make_tabs)  # not after the window is gone
        return False

    def make_tabs(self) -> None:
        """Put Weights and Backprop in tabs next to Predictions (once, after showing)."""
        if not self._tabs_pending:
            return
        self._tabs_pending = False
        self.window.removeEventFilter(self)
        w = self.window
        for d in (self.weights_dock, self.backprop_dock):
            w.tabifyDockWidget(self.predictions_dock, d)
            d.show()
        self.predictions_dock.raise_()
        # Laid out now that the window has its real size: the training dock gets its height.
        w.resizeDocks([w.training_dock], [TRAINING_HEIGHT], Qt.Orientation.Vertical)

    def _add_actions(self) -> None:
        w = self.window
        st = self.stepper
        menu = getattr(w.training, "menu", None)
        if menu is not None:
            menu.addSeparator()
            menu.addActions([st.forward_action, st.backward_action, st.apply_action])
        toolbar = getattr(w.training, "toolbar", None)
        if toolbar is not None:
            toolbar.addSeparator()
            toolbar.addActions([st.forward_action, st.backward_action, st.apply_action])
        for name, action in (("step_forward", st.forward_action),
                             ("step_backward", st.backward_action),
                             ("apply_update", st.apply_action)):
            w.actions[name] = action  # the Help → Shortcuts listing reads window.actions
            w.addAction(action)
        panels = w.menu("panels")
        for d in (self.predictions_dock, self.weights_dock, self.backprop_dock):
            panels.addAction(d.toggleViewAction())


def install_lab_training(window) -> LabTraining:
    """Add the Predictions, Weights and Backprop docks to a MainWindow with training."""
    return LabTraining(window)
