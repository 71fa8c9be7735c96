"""Optimizer state: what the optimizer knows about one parameter tensor, step by step.

For the chosen tensor the panel plots, over the training steps, the gradient g, the
optimizer's running statistics (SGD's momentum buffer, Adam's m and v, RMSProp's average of
g²) and the step Δθ it actually applied to the weights. One small pyqtgraph plot each.

Recording happens on the training thread: a `_Tap` wraps the live Trainer's `step` so an
`engine.lab.optimizer_state.StateRecorder` takes a sample after every step (only while the panel
is visible, only for the one tensor). The GUI collects the new samples with
`session.run_on_worker` after each training report.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.lab.formula_html import esc, num
from engine.lab.optimizer_state import StateRecorder, parameter_state

MAX_KEEP = 5000  # samples kept per field on the GUI side
ELEMENTS = 16  # small tensors: the first this many numbers can be followed one by one

FIELD_TITLES = {
    "grad": "gradient g",
    "momentum": "momentum buffer",
    "m": "m: running mean of g (1st moment)",
    "v": "v: running mean of g² (2nd moment)",
    "square_avg": "running mean of g²",
    "delta": "step Δθ actually applied",
}
FIELD_COLORS = {"grad": "#d95f02", "momentum": "#7570b3", "m": "#7570b3", "v": "#1b9e77",
                "square_avg": "#1b9e77", "delta": "#3b75af"}

EXPLAIN = {
    "sgd": ("Plain SGD keeps no memory: every step is Δθ = −α·g, so the step plot is the "
            "gradient plot scaled by −α."),
    "sgd_momentum": ("SGD with momentum keeps a velocity b ← μ·b + g (a running sum of past "
                     "gradients) and steps Δθ = −α·b: steps grow while gradients agree and "
                     "shrink when they flip sign."),
    "adam": ("Adam keeps m, a running mean of g, and v, a running mean of g². Its step is "
             "Δθ = −α · m′ / (√v′ + ε), where m′ = m / (1 − β₁ᵗ) and v′ = v / (1 − β₂ᵗ) undo "
             "the start at zero: about α in size whatever the scale of g, smaller when g "
             "keeps changing sign (m small against √v)."),
    "rmsprop": ("RMSProp divides the gradient by the root of a running mean of g²: "
                "Δθ = −α·g / (√avg + ε), so every weight moves at a similar pace."),
}


class _Tap:
    """Lives on the training thread: records one tensor after every trainer step."""

    def __init__(self, trainer, key: str):
        self.trainer, self.key = trainer, key
        self.enabled = True
        self.recorder = StateRecorder(trainer.program, key, full_limit=ELEMENTS * 4,
                                      max_samples=MAX_KEEP)
        self._orig = trainer.step

        def step():
            rep = self._orig()
            if self.enabled:
                self.recorder.record(trainer)
            return rep

        trainer.step = step
        trainer._lab_state_tap = self

    def remove(self) -> None:
        self.trainer.step = self._orig
        del self.trainer._lab_state_tap


def fetch_state(program, trainer, key: str | None, last_step: int, active: bool) -> dict:
    """Runs on the worker: keys, optimizer facts and the samples newer than `last_step`."""
    if program is None or trainer is None:
        return {"keys": [], "samples": [], "reset": True}
    keys = [e.key for e in program.entries]
    out = {"keys": keys, "reset": False, "samples": [], "key": key,
           "optimizer": trainer.optimizer.name, "lr": float(trainer.optimizer.lr),
           "hyper": dict(trainer.optimizer.hyper), "step": int(trainer.step_count)}
    tap = getattr(trainer, "_lab_state_tap", None)
    if key not in keys or not active:
        if tap is not None:
            tap.enabled = False
        return out
    if tap is None or tap.key != key:
        if tap is not None:
            tap.remove()
        tap = _Tap(trainer, key)
        out["reset"] = True
        if trainer.step_count > 0:  # the state as it is now, so the plots are not empty
            tap.recorder.record(trainer)
    tap.enabled = True
    out["samples"] = [s for s in tap.recorder.samples(key) if s.step > last_step]
    state = parameter_state(trainer, program, key)
    out["size"] = int(state["value"].size)
    return out


class OptimizerStatePanel(QWidget):
    """Dock contents: tensor and quantity choosers, an explanation and four small plots."""

    def __init__(self, session, scene, parent=None):
        super().__init__(parent)
        self.session, self.scene = session, scene
        self.key: str | None = None
        self.samples: list = []  # StateSample, oldest first
        self.optimizer = ""
        self.hyper: dict = {}
        self.size = 0
        self.active = True
        self._pending = False
        self._again = False

        self.tensor_box = QComboBox()
        self.tensor_box.setObjectName("opt_state_tensor")
        self.tensor_box.setMinimumContentsLength(12)
        self.quantity_box = QComboBox()
        self.quantity_box.setObjectName("opt_state_quantity")
        self.intro = QLabel("<b>What am I looking at?</b> The numbers an optimizer keeps "
                            "for one learnable tensor and the step it took, after every "
                            "training step. Pick a tensor (or select its node) and press "
                            "Train → Step or Play.")
        self.intro.setWordWrap(True)
        self.explain = QLabel()
        self.explain.setWordWrap(True)
        self.now = QLabel()
        self.now.setWordWrap(True)
        self.now.setTextFormat(Qt.TextFormat.RichText)
        self.now.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        pal = theme.current()
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(pal.label_background)
        self.plot_items: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}

        top = QHBoxLayout()
        top.addWidget(QLabel("Tensor"))
        top.addWidget(self.tensor_box, 1)
        top.addWidget(QLabel("Show"))
        top.addWidget(self.quantity_box, 1)
        # The numbers come first and the texts sit in a scroll area: in a short dock they
        # scroll instead of being squeezed until their lines are cut in half.
        body = QWidget()
        inner = QVBoxLayout(body)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.now)
        inner.addWidget(self.explain)
        inner.addWidget(self.intro)
        self.plots.setMinimumHeight(260)
        inner.addWidget(self.plots, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)

        self.tensor_box.activated.connect(lambda _i: self.set_key(self.tensor_box.currentText()))
        self.quantity_box.currentIndexChanged.connect(lambda _i: self.redraw())
        session.report.connect(lambda _r: self.request())
        session.weights_reset.connect(self._on_reset)
        session.state_changed.connect(lambda _s: self.request())
        scene.selectionChanged.connect(self._on_selection)

    # -- choosing -------------------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        """Record only while the panel can be seen (the worker's tap is told on the fetch)."""
        self.active = bool(on)
        self.request(force=True)

    def set_key(self, key: str | None) -> None:
        if key == self.key:
            return
        self.key = key or None
        self.samples = []
        self.size = 0
        self.redraw()
        self.request()

    def _on_selection(self) -> None:
        try:
            nodes = self.scene.selected_node_ids()
        except RuntimeError:
            return
        if len(nodes) != 1:
            return
        for i in range(self.tensor_box.count()):
            key = self.tensor_box.itemText(i)
            if key.rsplit(".", 1)[0] == nodes[0]:
                self.tensor_box.setCurrentIndex(i)
                self.set_key(key)
                return

    def _on_reset(self) -> None:
        self.samples = []
        self.redraw()
        self.request()

    # -- fetching ---------------------------------------------------------------------------
    def request(self, force: bool = False) -> None:
        if not self.active and not force and self.tensor_box.count():
            return  # hidden: nothing to fetch, nothing recorded
        if self._pending:
            self._again = True
            return
        self._pending = True
        key, last = self.key, (self.samples[-1].step if self.samples else -1)
        active = self.active
        self.session.run_on_worker(
            lambda program, trainer: fetch_state(program, trainer, key, last, active),
            self._on_fetched, self._on_error)

    def _on_error(self, message: str) -> None:
        self._pending = False
        self.now.setText(esc(message))

    def _on_fetched(self, data: dict) -> None:
        self._pending = False
        keys = data["keys"]
        if [self.tensor_box.itemText(i) for i in range(self.tensor_box.count())] != keys:
            self.tensor_box.blockSignals(True)
            self.tensor_box.clear()
            self.tensor_box.addItems(keys)
            self.tensor_box.blockSignals(False)
        if keys and self.key not in keys:
            self.key = keys[0]
            self.samples = []
            self._again = True
        if self.key in keys:
            self.tensor_box.setCurrentIndex(keys.index(self.key))
        if data.get("key") == self.key:
            if data.get("reset"):
                self.samples = []
            last = self.samples[-1].step if self.samples else -1
            self.samples += [s for s in data["samples"] if s.step > last]
            del self.samples[:-MAX_KEEP]
            self.optimizer = data.get("optimizer", "")
            self.hyper = data.get("hyper", {})
            self.lr = data.get("lr", 0.0)
            if data.get("size", 0) != self.size:
                self.size = data.get("size", 0)
                self._fill_quantities()
            self.redraw()
        if self._again:
            self._again = False
            self.request()

    def _fill_quantities(self) -> None:
        box = self.quantity_box
        box.blockSignals(True)
        box.clear()
        if self.size <= ELEMENTS * 4:
            for i in range(min(self.size, ELEMENTS)):
                box.addItem(f"number [{i}]" if self.size > 1 else "the number", ("el", i))
        box.addItem("mean |·| (all numbers)", ("stat", "mean_abs"))
        box.addItem("mean (all numbers)", ("stat", "mean"))
        box.addItem("‖·‖₂ (all numbers)", ("stat", "l2"))
        box.setCurrentIndex(0)
        box.blockSignals(False)

    # -- drawing ----------------------------------------------------------------------------
    def fields(self) -> list[str]:
        """The plotted fields, in order: gradient, the optimizer's state, the step."""
        if not self.samples:
            return []
        have = self.samples[-1].summaries.keys()
        names = ["grad"] + [f for f in ("momentum", "m", "v", "square_avg") if f in have]
        return names + ["delta"]

    def series(self, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) currently plotted for `field` (tests read this)."""
        rows = [s for s in self.samples if field in s.summaries]
        steps = np.array([s.step for s in rows], dtype=float)
        how = self.quantity_box.currentData() or ("stat", "mean_abs")
        if how[0] == "el" and all(s.values is not None for s in rows):
            vals = np.array([s.values[field][how[1]] for s in rows], dtype=float)
        else:
            stat = how[1] if how[0] == "stat" else "mean_abs"
            vals = np.array([getattr(s.summaries[field], stat) for s in rows], dtype=float)
        return steps, vals

    def _ensure_plots(self, fields: list[str]) -> None:
        if list(self.plot_items) == fields:
            return
        self.plots.clear()
        self.plot_items.clear()
        self.curves.clear()
        pal = theme.current()
        for row, f in enumerate(fields):
            item = self.plots.addPlot(row=row, col=0)
            item.setTitle(FIELD_TITLES.get(f, f), size="9pt", color=pal.text)
            item.showGrid(x=True, y=True, alpha=0.25)
            item.setMouseEnabled(False, False)
            for side in ("left", "bottom"):
                ax = item.getAxis(side)
                ax.setStyle(tickFont=theme.ui_font(7.5))
                ax.setTextPen(pal.muted_text)
            item.getAxis("left").setWidth(52)
            if row == len(fields) - 1:
                item.setLabel("bottom", "training step", color=pal.muted_text)
            item.addLine(y=0, pen=pg.mkPen(pal.grid_major, width=1))
            self.plot_items[f] = item
            self.curves[f] = item.plot(pen=pg.mkPen(FIELD_COLORS.get(f, pal.text), width=2),
                                       symbol="o", symbolSize=4,
                                       symbolBrush=FIELD_COLORS.get(f, pal.text),
                                       symbolPen=None)
        items = list(self.plot_items.values())
        for other in items[1:]:
            other.setXLink(items[0])

    def redraw(self) -> None:
        fields = self.fields()
        self._ensure_plots(fields)
        for f in fields:
            xs, ys = self.series(f)
            self.curves[f].setData(xs, ys)
            self.curves[f].setSymbolSize(4 if len(xs) < 200 else 0)
        kind = self.optimizer
        if kind == "sgd" and "momentum" in fields:
            kind = "sgd_momentum"
        if kind == "adamw":
            kind = "adam"
        self.explain.setText(EXPLAIN.get(kind, ""))
        self._show_now(fields)

    def _show_now(self, fields: list[str]) -> None:
        if not self.samples:
            self.now.setText("No steps recorded yet: press Train → Step." if self.key
                             else "")
            return
        s = self.samples[-1]
        how = self.quantity_box.currentText()
        parts = [f"<b>{esc(self.key or '')}</b> · step {s.step} · {esc(self.optimizer)} "
                 f"α = {num(self.lr, 4)} · {esc(how)}:"]
        vals = []
        for f in fields:
            _, ys = self.series(f)
            if len(ys):
                vals.append(f"{esc(_short(f))} = {num(float(ys[-1]), 5)}")
        parts.append(" &nbsp; ".join(vals))
        self.now.setText("<br/>".join(parts))


def _short(field: str) -> str:
    return {"grad": "g", "delta": "Δθ", "momentum": "b", "square_avg": "avg"}.get(field, field)
