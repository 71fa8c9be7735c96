"""Puts live training into the main window: one call, `install_training(window)`.

It creates the TrainingSession, the training panel and loss plot (in the bottom dock), the
gradient overlay with its legend and the wire detail panel (on the canvas), a "Train" menu,
a tool bar and a status-bar label. Space on the canvas toggles Play/Pause unless it was used
to pan (Space + drag).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QLabel, QSplitter, QToolBar

from designer.overlays.gradient_overlay import GradientOverlay, LegendPlacer, OverlayLegend
from designer.training import session as states
from designer.training.on_demand import DeferredWidget, build_pending_now, build_when_idle
from designer.training.panel import STATE_TEXT, TrainingPanel
from designer.training.session import TrainingSession


def headline(text: str) -> str:
    """One status-bar line of a (possibly multi-line) problem: a first line that only
    introduces a list ("… cannot be trained yet:") is joined with the list's first item."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        more = f" (+{len(lines) - 2} more)" if len(lines) > 2 else ""
        first = f"{first} {lines[1].lstrip('•').strip()}{more}"
    return first

class TrainingUI(QObject):
    """Everything training adds to a main window (kept as `window.training`)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = TrainingSession(window.controller, self)
        self.run = self.session.run
        self.panel = TrainingPanel(self.session)
        # The loss plot and the wire detail panel use pyqtgraph: built right after the
        # window's first paint (or when asked for), not as part of opening the window.
        self.plot_holder = DeferredWidget(self._make_plot, "The loss plot appears here.")
        self._detail = None
        self.overlay = GradientOverlay(window.scene, self.run, self)
        self.legend = OverlayLegend(self.overlay)
        self.legend_placer = LegendPlacer(window.view, self.legend)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.panel)
        splitter.addWidget(self.plot_holder)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([720, 460])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        window.training_dock.setWidget(splitter)
        window.resizeDocks([window.training_dock], [300], Qt.Orientation.Vertical)

        s = self.session
        run = self.run
        run.state_changed.connect(self._on_state)
        run.updated.connect(self._on_update)
        run.restarted.connect(self._on_restart)
        s.diverged.connect(self._on_diverged)
        s.problem.connect(lambda text: text and window.show_message(headline(text)))
        s.notice.connect(window.show_message)

        self._build_menu_and_toolbar()
        self.state_label = QLabel()
        window.statusBar().addPermanentWidget(self.state_label)
        self._space = _SpaceToggle(window.view, s.toggle)
        self._on_state(s.state)
        build_when_idle(window, self.plot_holder.widget, lambda: self.detail)

    @property
    def plot(self):
        """The LossPlot (built now if it was not yet)."""
        return self.plot_holder.widget()

    @property
    def detail(self):
        """The EdgeDetailPanel on the canvas (built now if it was not yet)."""
        if self._detail is None:
            from designer.overlays.edge_detail import EdgeDetailPanel

            self._detail = EdgeDetailPanel(self.session, self.window.scene, self.window.view)
        return self._detail

    def _make_plot(self):
        from designer.training.loss_plot import LossPlot

        plot = LossPlot(self.run)
        if len(self.run.history.acc):
            plot.set_accuracy_visible(True)
        plot.redraw()  # the run may already hold a history (a model file was opened)
        return plot

    def _build_menu_and_toolbar(self) -> None:
        w = self.window
        p = self.panel
        for name, action in (("train_play", p.play_action), ("train_step", p.step_action),
                             ("train_reset", p.reset_action)):
            w.actions[name] = action
            w.addAction(action)
        menu = w.menu("train", "&Train")
        menu.addActions([p.play_action, p.step_action, p.reset_action])
        self.menu = menu
        bar = QToolBar("Training")
        bar.setObjectName("training_toolbar")
        bar.addActions([p.play_action, p.step_action, p.reset_action])
        w.addToolBar(bar)
        self.toolbar = bar

    def _on_update(self, _report) -> None:
        self._on_state(self.run.state)  # keep epoch/loss current
        values = {}
        for node in self.window.document.nodes():
            value = self.run.parameter_value(node.id)
            if value is not None:
                values[node.id] = value
        self.window.scene.set_live_values(values)

    def _on_restart(self) -> None:
        self.window.scene.set_live_values({})
        self._on_state(self.run.state)

    def _on_state(self, state: str) -> None:
        if state == states.RUNNING:
            build_pending_now(self.window)  # before the first step, not during training
        run = self.run
        text = STATE_TEXT.get(state, state)
        if run.last_report is not None and state in (states.RUNNING, states.PAUSED,
                                                     states.FINISHED, states.DIVERGED):
            text += f" · epoch {run.epoch:,} · step {run.step:,} · loss {run.loss:.4g} (last step)"
        self.state_label.setText(text)
        if state in (states.INVALID, states.EMPTY):
            self.overlay.forget()

    def _on_diverged(self, message: str, node) -> None:
        self.window.show_message(message)
        if node:
            self.window.scene.select_nodes([node])

    def shutdown(self) -> bool:
        """Stop training and join the worker thread (True if it ended in time)."""
        return self.session.shutdown()


class _SpaceToggle(QObject):
    """Space pressed and released on the canvas without a drag in between: Play/Pause."""

    def __init__(self, view, toggle):
        super().__init__(view)
        self.view, self.toggle = view, toggle
        self._down = False
        self._used = False
        view.installEventFilter(self)
        view.viewport().installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        t = event.type()
        if t in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and obj is self.view:
            if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
                if t == QEvent.Type.KeyPress:
                    self._down, self._used = True, False
                elif self._down:
                    self._down = False
                    if not self._used:
                        self.toggle()
        elif t == QEvent.Type.MouseButtonPress and self._down:
            self._used = True  # Space + drag pans the canvas
        return False


def install_training(window) -> TrainingUI:
    """Add live training to a MainWindow; returns the TrainingUI (store it on the window)."""
    return TrainingUI(window)
