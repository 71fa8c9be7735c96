"""Learn menu: Loss Landscape, Optimizer Race and Learning-Rate Sweep windows.

`install_optimization_lab(window)` (called once from main_window.py, after training is
installed) adds the three actions to the shared "Learn" menu and opens each tool as a
non-modal window, created on first use and kept for the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from designer.lab.menu import add_learn_actions, learn_menu

# The dialogs (and pyqtgraph, which they draw with) load when first opened: start-up stays fast.
if TYPE_CHECKING:
    from designer.lab.landscape_view import LandscapeDialog
    from designer.lab.lr_sweep_view import LRSweepDialog
    from designer.lab.race_view import RaceDialog


class OptimizationLab(QObject):
    """The three optimization tools of a main window (kept as `window.optimization_lab`)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.landscape: LandscapeDialog | None = None
        self.race: RaceDialog | None = None
        self.sweep: LRSweepDialog | None = None
        self.actions = add_learn_actions(window, (
            ("learn_landscape", "Loss &Landscape…", self.show_landscape,
             "The loss surface around the current weights, with the training path"),
            ("learn_race", "Optimizer &Race…", self.show_race,
             "Train copies of the graph with several optimizers from the same start"),
            ("learn_lr_sweep", "Learning-Rate &Sweep…", self.show_sweep,
             "Short runs over a range of learning rates: which rates work?")))
        self.menu = learn_menu(window)

    def show_landscape(self) -> LandscapeDialog:
        if self.landscape is None:
            from designer.lab.landscape_view import LandscapeDialog

            self.landscape = LandscapeDialog(self.window.training.session, self.window)
        return _raise(self.landscape)

    def show_race(self) -> RaceDialog:
        if self.race is None:
            from designer.lab.race_view import RaceDialog

            self.race = RaceDialog(self.window.controller, self.window)
        return _raise(self.race)

    def show_sweep(self) -> LRSweepDialog:
        if self.sweep is None:
            from designer.lab.lr_sweep_view import LRSweepDialog

            self.sweep = LRSweepDialog(self.window.controller, self.window)
        return _raise(self.sweep)

    def shutdown(self) -> None:
        """Stop every running computation and join its thread."""
        for dialog in (self.landscape, self.race, self.sweep):
            if dialog is not None:
                dialog.view.shutdown()


def _raise(dialog):
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def install_optimization_lab(window) -> OptimizationLab:
    """Add Loss Landscape, Optimizer Race and Learning-Rate Sweep to the Learn menu."""
    return OptimizationLab(window)
