"""View → Presentation Mode: readable from the back of a room.

Large type: the application font 1.5×, and so every panel font made by theme.ui_font or
theme.mono_font (the gradient legend, the confusion matrix, the sample captions, the
chain-rule formulas) and every widget's own font; the canvas, with its neuron cards, opens
at 1.5× the legible zoom. Thicker wires. The docks reduced to the lesson: the editing panels
and the training settings are hidden (the tool bar keeps Play, Step and the backprop
stepper), and of the side panels only the lesson panel on top of its tabs (Chain Rule,
Optimizer State, Backprop, Training Loop) stays, if one is; otherwise the whole width goes
to the graph, which then fits a 1280×800 screen at 1.5× the legible zoom (View → Panels
brings any panel back). Leaving the mode puts the window back exactly as it was (dock
layout, fonts, zoom).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget

from designer import theme

TEXT_SCALE = 1.5  # application font and canvas zoom
WIRE_SCALE = 1.8  # wire pens
LESSON_SHARE = 0.42  # of the window's width, for the one lesson panel kept
LESSON_DOCKS = ("chain_rule_dock", "optimizer_state_dock", "backprop_dock",
                "training_loop_dock")


class PresentationMode(QObject):
    """Turns presentation mode on and off for one MainWindow."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.on = False
        self._saved: tuple | None = None
        self._set_fonts: list = []  # (widget, its own font) while the mode is on
        self.action = QAction("&Presentation Mode", window)
        self.action.setCheckable(True)
        self.action.setShortcut(QKeySequence("F11"))
        self.action.setStatusTip("Large type, thicker wires, only the lesson's panels")
        self.action.toggled.connect(self.set_on)
        window.actions["presentation"] = self.action
        window.addAction(self.action)
        for menu_action in window.menuBar().actions():
            if menu_action.text() == "&View" and menu_action.menu() is not None:
                menu_action.menu().addSeparator()
                menu_action.menu().addAction(self.action)

    def set_on(self, on: bool) -> None:
        """Enter (True) or leave (False) presentation mode."""
        if on == self.on:
            return
        w, app = self.window, QApplication.instance()
        if on:
            self._saved = (w.saveState(), QApplication.font(), w.view.zoom())
            font = QApplication.font()
            font.setPointSizeF(font.pointSizeF() * TEXT_SCALE)
            app.setFont(font)
            keep = self.lesson_dock()
            for dock in w.findChildren(QDockWidget):
                if dock is not keep and not dock.isFloating():
                    dock.hide()
            theme.set_wire_scale(WIRE_SCALE)
            theme.set_text_scale(TEXT_SCALE)
            self._scale_set_fonts()
            if keep is not None and not keep.isFloating():
                # The lesson's formulas in large type need room: the panel gets a share
                # of the width as large as the type.
                w.resizeDocks([keep], [max(keep.width(), round(w.width() * LESSON_SHARE))],
                              Qt.Orientation.Horizontal)
            w.view.text_scale = TEXT_SCALE
        else:
            state, font, zoom = self._saved
            app.setFont(font)
            w.restoreState(state)
            theme.set_wire_scale(1.0)
            theme.set_text_scale(1.0)
            self._restore_set_fonts()
            w.view.text_scale = 1.0
        self.on = on
        if self.action.isChecked() != on:
            self.action.setChecked(on)
        w.scene.restyle()
        self._resize_painted_panels()
        w.layout().activate()  # the canvas takes its new size before it is framed
        if on:
            w.view.show_graph()
            selected = w.scene.selectedItems()
            if selected:  # the wire or node the lesson explains stays in view
                rect = selected[0].sceneBoundingRect()
                for item in selected[1:]:
                    rect = rect.united(item.sceneBoundingRect())
                w.view.centerOn(rect.center())
        else:
            w.view.set_zoom(zoom)


    def _scale_set_fonts(self) -> None:
        """Widgets given their own font (the backprop table, the training-loop text, …) do
        not follow the application font: their fonts grow by TEXT_SCALE too."""
        self._set_fonts = []
        for widget in QApplication.allWidgets():
            if not widget.testAttribute(Qt.WidgetAttribute.WA_SetFont):
                continue
            font = QFont(widget.font())
            if font.pointSizeF() <= 0:  # sized in pixels: left alone
                continue
            self._set_fonts.append((widget, QFont(font)))
            font.setPointSizeF(font.pointSizeF() * TEXT_SCALE)
            widget.setFont(font)

    def _restore_set_fonts(self) -> None:
        for widget, font in self._set_fonts:
            try:
                widget.setFont(font)
            except RuntimeError:  # closed while the mode was on
                pass
        self._set_fonts = []

    def _resize_painted_panels(self) -> None:
        """Panels that paint their own text (the gradient legend, the confusion matrix) take
        the new type size: they are laid out and painted again."""
        for widget in QApplication.allWidgets():
            if widget.styleSheet():  # styled widgets keep their font until polished again
                widget.setStyleSheet(widget.styleSheet())
            widget.updateGeometry()
            widget.update()
        lab_a = getattr(self.window, "lab_a", None)
        if lab_a is not None:
            lab_a.chain_panel.render()  # its HTML carries the type size
        training = getattr(self.window, "training", None)
        if training is not None:
            training.legend.adjustSize()
            training.legend_placer.place()
            if training.detail.isVisible():  # the selected wire's numbers, laid out again
                training.detail.adjustSize()
                training.detail.place()

    def lesson_dock(self) -> QDockWidget | None:
        """The one side panel presentation mode keeps (see the module docstring)."""
        docks = {d.objectName(): d for d in self.window.findChildren(QDockWidget)}
        on_top = [docks[n] for n in LESSON_DOCKS if n in docks and docks[n].isVisible()
                  and not docks[n].visibleRegion().isEmpty()]
        return on_top[0] if on_top else None


def install_presentation(window) -> PresentationMode:
    """Add View → Presentation Mode (F11) to a MainWindow."""
    return PresentationMode(window)
