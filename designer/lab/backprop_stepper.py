"""Watch backpropagation step by step: forward, backward, then the optimizer update.

Step Forward asks the worker for `engine.lab.stepper.preview_step` (forward and backward on the
next training batch, nothing updated) and lights the wires in the engine's topological
order, each labelled with the value it carries. Step Backward then sends the gradient from
the loss back to the inputs, wire by wire in reverse topological order. Apply Update runs
the real optimizer step (the session's ordinary Step, so counters and the loss plot follow)
and shows every parameter's change θ ← θ − α·∂L/∂θ with the numbers, in the panel and as
captions under the parameter nodes. A QTimer walks the lists; the slider sets its pace.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.canvas.edge_item import WireLabel
from designer.overlays.gradient_overlay import format_magnitude, format_number
from designer.training import session as states
from engine.errors import GradscapeError
from engine.lab import stepper

DEFAULT_DELAY_MS = 350
MIN_DELAY_MS, MAX_DELAY_MS = 30, 1500
IDLE, FORWARD, FORWARD_DONE, BACKWARD, BACKWARD_DONE, UPDATING, UPDATED = (
    "idle", "forward", "forward_done", "backward", "backward_done", "updating", "updated")
NOT_TRAINABLE = (states.EMPTY, states.INVALID, states.FAILED, states.COMPILING)


def value_text(t: stepper.Tensor | None, sym: str) -> str:
    """A wire's number: exact for one number, else mean |·| of the tensor."""
    if t is None:
        return "no ∂L"
    if t.scalar is not None:
        return format_number(t.scalar)
    return f"mean|{sym}| {format_magnitude(t.summary.mean_abs)}"


def _mag(t: stepper.Tensor | None) -> float:
    if t is None:
        return 0.0
    return abs(t.scalar) if t.scalar is not None else t.summary.mean_abs


def _num(v: float) -> str:
    return f"{v:.6g}".replace("-", "−")


def _short(v: float) -> str:
    return f"{v:.5g}".replace("-", "−")


def update_formula(u: stepper.ParamUpdate, lr: float, plain_sgd: bool) -> str:
    """One line per parameter: the update with its numbers (scalars exactly)."""
    if u.old.scalar is not None:
        old, g, new = u.old.scalar, u.grad.scalar, u.new.scalar
        if plain_sgd:
            return f"{u.key} ← {_num(old)} − {lr:g}·({_num(g)}) = {_num(new)}"
        return f"{u.key}: {_num(old)} → {_num(new)}  (Δθ {_num(u.delta.scalar)}, ∂L/∂θ {_num(g)})"
    return (f"{u.key} {_shape(u.shape)}: ‖Δθ‖ {format_magnitude(u.delta_norm)}, "
            f"‖∂L/∂θ‖ {format_magnitude(u.grad_norm)}")


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + "×".join(str(d) for d in shape) + ")"


SMALL_TENSOR = 16  # tensors up to this size get one table row per element
WHY_MINUS = ("Why minus: ∂L/∂θ points the way the loss grows fastest, so stepping against "
             "it (−α·∂L/∂θ) makes the loss smaller.")


def element_rows(key: str, views: list[stepper.Tensor | None]) -> list[tuple[str, ...]]:
    """One row per element (name[i, j], then each view's number) for a small tensor."""
    first = views[0]
    shape = first.shape
    rows = []
    for flat in range(first.size):
        index = ", ".join(str(int(i)) for i in _unravel(flat, shape))
        rows.append((f"{key}[{index}]",) + tuple(
            _short(v.values[flat]) if v is not None and v.values else "" for v in views))
    return rows


def _unravel(flat: int, shape: tuple[int, ...]) -> list[int]:
    out = []
    for d in reversed(shape):
        flat, r = divmod(flat, d)
        out.append(r)
    return list(reversed(out))


def matrix_text(t: stepper.Tensor) -> str:
    """A small matrix (or vector) written out row by row: [[0.1, −0.2], [0.3, 0.4]]."""
    vals = [_short(v) for v in (t.values or ())]
    if len(t.shape) != 2:
        return "[" + ", ".join(vals) + "]"
    cols = t.shape[1]
    rows = ["[" + ", ".join(vals[r * cols:(r + 1) * cols]) + "]" for r in range(t.shape[0])]
    return "[" + ", ".join(rows) + "]"


def dense_text(d: stepper.DenseGrad) -> str:
    """∂L/∂W = δᵀx for one small Dense layer, with its numbers."""
    return (f"∂L/∂W of {d.node} = δᵀ·x\n"
            f"  δ = ∂L/∂{d.node} {_shape(d.delta.shape)} = {matrix_text(d.delta)}\n"
            f"  x = its input {_shape(d.x.shape)} = {matrix_text(d.x)}\n"
            f"  δᵀ·x {_shape(d.grad_w.shape)} = {matrix_text(d.grad_w)}")


class BackpropStepper(QObject):
    """Drives the three stages on the canvas. Signals `changed()` when its text changes.

    Attributes (read by the panel and the tests):
        preview: the last StepPreview; update: the last UpdateResult.
        phase: one of IDLE … UPDATED.
        visited: edge indices lit so far in the current pass, in order.
        shown: edge index → label text shown on that wire in the current pass.
    """

    changed = Signal()

    def __init__(self, window, parent: QObject | None = None):
        super().__init__(parent)
        self.window = window
        self.scene = window.scene
        self.session = window.training.session
        self.overlay = window.training.overlay
        self.preview: stepper.StepPreview | None = None
        self.update: stepper.UpdateResult | None = None
        self.phase = IDLE
        self.visited: list[int] = []
        self.shown: dict[int, str] = {}
        self.message = "Step Forward runs the next batch through the network."
        self._queue: list[stepper.EdgeStage] = []
        self._pos = 0
        self._range = (-3.0, 0.0)
        self._captions: list[WireLabel] = []
        self.timer = QTimer(self)
        self.timer.setInterval(DEFAULT_DELAY_MS)
        self.timer.timeout.connect(self._tick)
        self.session.state_changed.connect(self._on_state)
        self.session.weights_reset.connect(self.cancel)
        self.window.document.changed.connect(self._on_document_changed)

        self.forward_action = self._action("Step &Forward", "F7", self.step_forward,
                                           "Run the next batch forward, wire by wire "
                                           "(no update)")
        self.backward_action = self._action("Step &Backward", "F8", self.step_backward,
                                            "Send the gradient back from the loss, wire by "
                                            "wire")
        self.apply_action = self._action("&Apply Update", "F9", self.apply_update,
                                         "Apply the optimizer step and show each "
                                         "parameter's change")

    def _action(self, text: str, key: str, slot, tip: str) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(key))
        action.setStatusTip(tip)
        action.setToolTip(f"{text.replace('&', '')} ({key}): {tip}")
        action.triggered.connect(lambda _c=False: slot())
        return action

    # -- speed -----------------------------------------------------------------------------
    def set_delay(self, ms: int) -> None:
        """Milliseconds between two wires."""
        self.timer.setInterval(max(0, int(ms)))

    # -- the three stages ------------------------------------------------------------------
    def step_forward(self) -> None:
        """Pause training and preview the next step (forward + backward, no update)."""
        s = self.session
        s.pause()
        if s.needs_compile():
            s.compile_now()
        if s.state in NOT_TRAINABLE:
            self._say(s._why_not() or "The graph cannot be trained yet.")
            return
        self.timer.stop()
        self._say("Running the next batch…")

        def job(program, trainer):
            if program is None or trainer is None:
                raise GradscapeError("The graph cannot be trained yet.")
            return stepper.preview_step(program, trainer)

        s.run_on_worker(job, self._on_preview, self._say)

    def _on_preview(self, preview: stepper.StepPreview) -> None:
        self.preview, self.update = preview, None
        self._clear_canvas()
        mags = [_mag(st.data) for st in preview.forward]
        self._range = _log_range(mags)
        self._start(FORWARD, preview.forward)

    def step_backward(self) -> None:
        """Animate the gradients of the previewed step, from the loss back to the inputs."""
        if self.preview is None or self.phase in (IDLE, UPDATING, UPDATED):
            self._say("Step Forward first: backward needs the values of a forward pass.")
            return
        if self.phase == FORWARD:
            self.finish()
        if not math.isfinite(self.preview.loss):
            self._say("The loss is not finite: no gradient to send back.")
            return
        mags = [_mag(st.data) for st in self.preview.backward]
        self._range = _log_range(mags)
        self._start(BACKWARD, self.preview.backward)

    def apply_update(self) -> None:
        """Run the optimizer step on the previewed batch and show each parameter's change."""
        if self.preview is None or self.phase in (IDLE, UPDATING, UPDATED):
            self._say("Step Forward first: the update applies the gradients of a previewed "
                      "batch.")
            return
        self.finish()
        preview = self.preview

        # The two jobs run in the training process, before and after the step; the weights
        # before the step wait there, in the worker's stash, for the second job.
        def before(program, trainer, worker):
            worker.stash.pop("stepper_before", None)
            if program is None or id(program) != preview.program_id \
                    or trainer.step_count + 1 != preview.step:
                raise GradscapeError("The network changed since Step Forward: step forward "
                                     "again.")
            worker.stash["stepper_before"] = stepper.snapshot(program)
            return None

        def after(program, trainer, worker):
            held = worker.stash.pop("stepper_before", None)
            if held is None:
                raise GradscapeError("No update was applied.")
            if trainer is None or trainer.step_count != preview.step:
                raise GradscapeError("The optimizer step did not run (see the status bar).")
            loss = trainer.step_losses[-1] if trainer.step_losses else float("nan")
            return stepper.describe_update(program, trainer, held, loss)

        self.phase = UPDATING
        self.session.run_on_worker(before, _ignore, self._update_failed, with_worker=True)
        self.session.step()
        self.session.run_on_worker(after, self._on_update, self._update_failed,
                                   with_worker=True)

    def _update_failed(self, message: str) -> None:
        if self.phase == UPDATING:
            self.phase = BACKWARD_DONE if self.preview is not None else IDLE
        self._say(message)

    def _on_update(self, result: stepper.UpdateResult) -> None:
        self.update = result
        self.phase = UPDATED
        self._show_captions(result)
        rule = ("θ ← θ − α·∂L/∂θ" if result.plain_sgd else
                f"{result.optimizer}: Δθ is the optimizer's step, not just −α·∂L/∂θ")
        self._say(f"Step {result.step} applied (α = {result.lr:g}; {rule}). "
                  "Step Forward again for the next batch.")

    # -- animation -------------------------------------------------------------------------
    def _start(self, phase: str, queue: list[stepper.EdgeStage]) -> None:
        self.session.run.claim_wires("stepper")  # the live overlay stops repainting them
        self.phase = phase
        self._queue, self._pos = list(queue), 0
        self.visited, self.shown = [], {}
        self._restyle_all_dim()
        self._legend_shows("value" if phase == FORWARD else "grad")
        self._tick()
        if self._pos < len(self._queue):
            self.timer.start()

    def _tick(self) -> None:
        if self._pos >= len(self._queue):
            self._done()
            return
        prev = self.visited[-1] if self.visited else None
        st = self._queue[self._pos]
        self._pos += 1
        if prev is not None:
            self._paint(self._queue[self._pos - 2], current=False)
        self._paint(st, current=True)
        self.visited.append(st.index)
        n = len(self._queue)
        e = st.edge
        what = "value" if self.phase == FORWARD else "∂L/∂wire"
        text = self.shown[st.index]
        why = f"\n  {st.why}" if self.phase == BACKWARD and st.why else ""
        self._say(f"{'Forward' if self.phase == FORWARD else 'Backward'} {self._pos}/{n}: "
                  f"{e.src} → {e.dst}.{e.dst_port}   {what} {text}{why}")
        if self._pos >= n:
            self._done()

    def finish(self) -> None:
        """Show the rest of the current pass at once."""
        while self.phase in (FORWARD, BACKWARD) and self._pos < len(self._queue):
            self._tick()

    def _done(self) -> None:
        self.timer.stop()
        if self.visited:
            last = next(st for st in self._queue if st.index == self.visited[-1])
            self._paint(last, current=False)
        p = self.preview
        if self.phase == FORWARD:
            self.phase = FORWARD_DONE
            self._say(f"Forward done: loss {_num(p.loss)} on a batch of {len(p.batch)} "
                      f"(step {p.step}). Step Backward sends the gradient back.")
        elif self.phase == BACKWARD:
            self.phase = BACKWARD_DONE
            self._show_grad_captions(p)
            self._say("Backward done: every parameter has its gradient ∂L/∂θ. Apply Update "
                      "takes the optimizer step.")

    def _paint(self, st: stepper.EdgeStage, current: bool) -> None:
        sym = "v" if self.phase == FORWARD else "g"
        text = value_text(st.data, sym)
        self.shown[st.index] = text
        item = self.scene.edges.get(st.edge)
        if item is None:
            return
        if st.data is None:
            item.set_overlay(QColor(theme.current().wire), 1.4, text)
            return
        if current:
            item.set_overlay(QColor(theme.current().selection), 5.0, text)
        else:
            mag = _mag(st.data)
            pos = _position(mag, self._range)
            lut = self.overlay.lut
            item.set_overlay(lut[round(pos * (len(lut) - 1))], 1.8 + 3.0 * pos, text)

    def _legend_shows(self, mode: str | None) -> None:
        """Make the canvas legend describe what the wires show now: values while the forward
        pass runs, gradients while backward runs, with the stepper's colour range; None
        gives the legend back to the overlay's own setting."""
        legend = getattr(self.window.training, "legend", None)
        if mode is None:
            if legend is not None and self.overlay.mode != legend.mode_combo.currentData():
                self.overlay.mode = legend.mode_combo.currentData()
            return
        self.overlay.mode = mode
        self.overlay.range = self._range
        self.overlay.range_changed.emit(self._range[0], self._range[1], self.overlay.title())

    def _restyle_all_dim(self) -> None:
        for item in self.scene.edges.values():
            item.set_overlay(None)
        self.overlay.labels = {}

    def _clear_canvas(self) -> None:
        self._restyle_all_dim()
        self._clear_captions()

    # -- captions under parameter nodes ----------------------------------------------------
    def _clear_captions(self) -> None:
        for item in self._captions:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._captions = []

    def _caption(self, node: str, lines: list[str]) -> None:
        node_item = self.scene.nodes.get(node)
        if node_item is None or not lines:
            return
        label = WireLabel()
        label.setFont(theme.mono_font(7.5))
        label.setBrush(theme.color("text"))
        label.setText("\n".join(lines))
        label.setZValue(5)
        r = node_item.sceneBoundingRect()
        b = label.boundingRect()
        label.setPos(r.center().x() - b.width() / 2, r.bottom() + 6)
        self.scene.addItem(label)
        self._captions.append(label)

    def _show_grad_captions(self, p: stepper.StepPreview) -> None:
        self._clear_captions()
        by_node: dict[str, list[str]] = {}
        for g in p.params:
            name = "θ" if g.name == "value" else g.name
            if g.grad.scalar is not None:
                line = f"∂L/∂{name} = {_short(g.grad.scalar)}"
            else:
                line = f"‖∂L/∂{name}‖ = {format_magnitude(g.grad.summary.l2)}"
            by_node.setdefault(g.node, []).append(line)
        for node, lines in by_node.items():
            self._caption(node, lines)

    def _show_captions(self, result: stepper.UpdateResult) -> None:
        self._clear_captions()
        by_node: dict[str, list[str]] = {}
        for u in result.params:
            name = "θ" if u.name == "value" else u.name
            if u.old.scalar is not None:
                if result.plain_sgd:
                    lines = [f"{name} ← {_short(u.old.scalar)} − {result.lr:g}×"
                             f"({_short(u.grad.scalar)})", f"  = {_short(u.new.scalar)}"]
                else:
                    lines = [f"{name}: {_short(u.old.scalar)} → {_short(u.new.scalar)}"]
            else:
                lines = [f"‖Δ{name}‖ = {format_magnitude(u.delta_norm)}"]
            by_node.setdefault(u.node, []).extend(lines)
        for node, lines in by_node.items():
            self._caption(node, lines)

    # -- housekeeping ----------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the animation and forget the preview (weights reset, graph edited)."""
        self.timer.stop()
        self.preview = None
        self.update = None
        self.phase = IDLE
        self.visited, self.shown = [], {}
        self._clear_captions()
        self.session.run.release_wires("stepper")  # the overlay repaints the live numbers
        self._legend_shows(None)
        self.changed.emit()

    def _on_state(self, state: str) -> None:
        if state == states.RUNNING:
            self.timer.stop()
            self._clear_captions()
            if self.phase != IDLE:
                self.cancel()

    def _on_document_changed(self) -> None:
        if self.phase != IDLE and self.session._structure_key() != self.session._job_key:
            self.cancel()
            self._say("The graph changed: Step Forward starts again.")

    def _say(self, text: str) -> None:
        self.message = text
        self.changed.emit()


def _ignore(_result) -> None:
    pass


def _log_range(mags: list[float]) -> tuple[float, float]:
    logs = [math.log10(m) for m in mags if m > 0 and math.isfinite(m)]
    if not logs:
        return (-3.0, 0.0)
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    return (float(min(lo, hi - 1)), float(hi))


def _position(mag: float, rng: tuple[float, float]) -> float:
    lo, hi = rng
    if not (mag > 0 and math.isfinite(mag)):
        return 0.0
    return min(max((math.log10(mag) - lo) / (hi - lo), 0.0), 1.0)


class BackpropPanel(QWidget):
    """Buttons, the speed slider, what the current wire carries and the update table."""

    def __init__(self, stepper_: BackpropStepper, parent: QWidget | None = None):
        super().__init__(parent)
        self.stepper = stepper_
        row = QHBoxLayout()
        row.setSpacing(4)
        self.buttons = []
        for action in (stepper_.forward_action, stepper_.backward_action,
                       stepper_.apply_action):
            b = QToolButton()
            b.setDefaultAction(action)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            row.addWidget(b)
            self.buttons.append(b)
        row.addStretch(1)

        speed = QHBoxLayout()
        speed.addWidget(QLabel("Slow"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setToolTip("Animation speed: time spent on each wire")
        speed.addWidget(self.slider, 1)
        speed.addWidget(QLabel("Fast"))
        self.delay_label = QLabel()
        self.delay_label.setMinimumWidth(86)
        speed.addWidget(self.delay_label)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.setValue(self._slider_for(DEFAULT_DELAY_MS))
        self._on_slider(self.slider.value())

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setMinimumHeight(48)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.status.setFont(theme.mono_font(8.5))

        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["parameter", "θ old", "∂L/∂θ", "Δθ", "θ new"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setFont(theme.mono_font(8))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # Δθ never scrolls off
        self.rule = QLabel()
        self.rule.setWordWrap(True)
        self.dense = QLabel()  # ∂L/∂W = δᵀx of small Dense layers, after backward
        self.dense.setFont(theme.mono_font(8.5))
        self.dense.setWordWrap(True)
        self.dense.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(row)
        layout.addLayout(speed)
        layout.addWidget(self.status)
        layout.addWidget(self.rule)
        layout.addWidget(self.dense)
        layout.addWidget(self.table, 1)
        self._rows: list[tuple[str, ...]] | None = None
        stepper_.changed.connect(self.refresh)
        self.refresh()

    @staticmethod
    def _slider_for(ms: int) -> int:
        frac = math.log(MAX_DELAY_MS / ms) / math.log(MAX_DELAY_MS / MIN_DELAY_MS)
        return round(100 * frac)

    def delay_for(self, value: int) -> int:
        """Slider position (0 slow … 100 fast) → ms per wire, on a log scale."""
        return round(MAX_DELAY_MS * (MIN_DELAY_MS / MAX_DELAY_MS) ** (value / 100))

    def _on_slider(self, value: int) -> None:
        ms = self.delay_for(value)
        self.stepper.set_delay(ms)
        self.delay_label.setText(f"{ms} ms / wire")

    def refresh(self) -> None:
        s = self.stepper
        self.status.setText(s.message)
        rows: list[tuple[str, ...]] = []
        pal = theme.current()
        dense = ""
        if s.phase == UPDATED and s.update is not None:
            u = s.update
            if u.plain_sgd:
                self.rule.setText(f"<b>θ ← θ − α·∂L/∂θ</b>, so Δθ = −α·∂L/∂θ, with α = {u.lr:g} "
                                  f"(SGD), step {u.step}, loss {_num(u.loss)}.<br>{WHY_MINUS}")
            else:
                self.rule.setText(f"<b>θ ← θ + Δθ</b>: {u.optimizer} with α = {u.lr:g}; its Δθ "
                                  "uses running averages of ∂L/∂θ but still points against "
                                  f"them (step {u.step}).<br>{WHY_MINUS}")
            for q in u.params:
                if q.old.scalar is not None:
                    rows.append((q.key, _num(q.old.scalar), _num(q.grad.scalar),
                                 _num(q.delta.scalar), _num(q.new.scalar)))
                elif q.old.size <= SMALL_TENSOR and q.old.values:
                    rows += element_rows(q.key, [q.old, q.grad, q.delta, q.new])
                else:
                    rows.append((f"{q.key} {_shape(q.shape)}",
                                 f"‖θ‖ {format_magnitude(q.old.summary.l2)}",
                                 f"‖g‖ {format_magnitude(q.grad_norm)}",
                                 f"‖Δθ‖ {format_magnitude(q.delta_norm)}",
                                 f"‖θ‖ {format_magnitude(q.new.summary.l2)}"))
        elif s.preview is not None and s.phase in (BACKWARD_DONE, BACKWARD, FORWARD_DONE,
                                                   FORWARD):
            self.rule.setText(f"<span style='color:{pal.muted_text}'>Parameters before the "
                              "update (gradients after Step Backward); the update will be "
                              f"θ ← θ − α·∂L/∂θ.</span> {WHY_MINUS}")
            show_grad = s.phase == BACKWARD_DONE
            if show_grad:
                dense = "\n".join(dense_text(d) for d in s.preview.dense)
            for g in s.preview.params:
                if g.value.scalar is not None:
                    rows.append((g.key, _num(g.value.scalar),
                                 _num(g.grad.scalar) if show_grad else "", "", ""))
                elif g.value.size <= SMALL_TENSOR and g.value.values:
                    rows += [r + ("", "") for r in element_rows(
                        g.key, [g.value, g.grad if show_grad else None])]
                else:
                    rows.append((f"{g.key} {_shape(g.value.shape)}",
                                 f"‖θ‖ {format_magnitude(g.value.summary.l2)}",
                                 f"‖g‖ {format_magnitude(g.grad.summary.l2)}"
                                 if show_grad else "", "", ""))
        else:
            self.rule.setText(f"<span style='color:{pal.muted_text}'>F7 forward · F8 backward"
                              " · F9 update</span>")
        self.dense.setText(dense)
        self.dense.setVisible(bool(dense))
        if rows != self._rows:  # refilled only when it changes: every wire's tick calls here
            self._rows = rows
            self._fill(rows)

    def _fill(self, rows: list[tuple[str, ...]]) -> None:
        table, header = self.table, self.table.horizontalHeader()
        # Sizing columns to contents after every cell costs a pass over the table per
        # cell; size them once after filling.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(r, c, item)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
