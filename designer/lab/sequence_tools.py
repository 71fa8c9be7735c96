"""Learn menu: Generate Text and Attention windows for next-character models (tiny GPT).

Both read the live program through `session.run_on_worker` with module-level functions
that return copies: Generate copies the graph and the weights, then samples on a
BackgroundJob with a private program; Attention copies one head's attention weights and
their gradients from the last training step, refreshed while training runs.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.lab.background import start_job
from designer.lab.menu import ToolDialog, add_learn_actions
from designer.lab.optimization_tools import _raise
from designer.training.on_demand import pg  # pyqtgraph loads when a view opens
from designer.training.throttle import ThrottledFetch

FETCH_INTERVAL_MS = 300
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥"}


def shown(ch: str) -> str:
    """A character as an axis label (space, newline and tab made visible)."""
    return VISIBLE.get(ch, ch)


# -- functions run on the training thread (module level: they must be picklable) ------------

def snapshot_for_sampling(program, trainer) -> dict[str, Any] | None:
    """The graph, a copy of the weights and the vocabulary of the data (None if not ready)."""
    if program is None or trainer is None:
        return None
    vocab = list(getattr(trainer.train_set, "preprocessing", {}).get("vocabulary") or [])
    return {"spec": program.spec, "dtype": str(program.dtype), "theta": program.theta.copy(),
            "buffers": {k: v.copy() for k, v in program.buffers.items()},
            "vocab": vocab, "step": trainer.step_count}


def attention_snapshot(node: str, head: int, sample: int, program, trainer
                       ) -> dict[str, Any] | None:
    """One head's attention weights (and their gradients) for one sample of the last batch."""
    if program is None or node not in program.index:
        return None
    kernel = program.kernels[program.index[node]]
    attn = getattr(kernel, "attn", None)
    if attn is None:
        return {"node": node, "empty": "Train a step to see the attention weights."}
    sample = min(sample, attn.shape[0] - 1)
    head = min(head, attn.shape[1] - 1)
    grad = getattr(kernel, "attn_grad", None)
    ids = program.values[program.input_nodes[0]][sample] if program.input_nodes else None
    vocab = []
    if trainer is not None:
        vocab = list(getattr(trainer.train_set, "preprocessing", {}).get("vocabulary") or [])
    chars = None
    if ids is not None and vocab and ids.ndim == 1 and len(ids) == attn.shape[-1]:
        chars = [vocab[int(i)] for i in ids]
    return {"node": node, "head": head, "sample": sample, "heads": attn.shape[1],
            "batch": attn.shape[0], "attn": attn[sample, head].copy(),
            "grad": None if grad is None else grad[sample, head].copy(), "chars": chars,
            "step": trainer.step_count if trainer is not None else 0}


def attention_nodes(document) -> list[str]:
    """Ids of the MultiHeadAttention nodes of a document."""
    return [n.id for n in document.spec().nodes if n.op == "MultiHeadAttention"]


def sample_text(snapshot: dict[str, Any], prompt: str, length: int, temperature: float,
                seed: int, job) -> str:
    """On a BackgroundJob: rebuild the model from the snapshot and sample, emitting chunks."""
    from engine.core.compiler import compile_graph
    from engine.lab.generate import generate

    program = compile_graph(snapshot["spec"], dtype=snapshot["dtype"])
    program.theta[...] = snapshot["theta"]
    for key, value in snapshot["buffers"].items():
        program.buffers[key][...] = value
    pending: list[str] = []

    def on_char(ch: str) -> bool:
        pending.append(ch)
        if len(pending) >= 8:
            job.emit("".join(pending))
            pending.clear()
        return not job.cancelled

    text = generate(program, snapshot["vocab"], prompt, length, temperature, seed, on_char)
    if pending:
        job.emit("".join(pending))
    return text


# -- Generate ----------------------------------------------------------------------------------

class GenerateView(QWidget):
    """Prompt, temperature and length in; text sampled from the live weights out."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.job = None
        self.text = ""
        self.runs = 0
        form = QFormLayout()
        self.prompt = QLineEdit("The fox ")
        self.prompt.setToolTip("The text the model continues (its characters must occur in "
                               "the training text).")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 3.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.8)
        self.temperature.setToolTip("Below 1: safer, more repetitive; above 1: more surprising; "
                                    "0 always takes the most likely character.")
        self.length = QSpinBox()
        self.length.setRange(1, 5000)
        self.length.setValue(300)
        self.length.setSuffix(" characters")
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.seed.setToolTip("Same seed, same weights and settings: the same text.")
        form.addRow("Prompt", self.prompt)
        form.addRow("Temperature", self.temperature)
        form.addRow("Length", self.length)
        form.addRow("Seed", self.seed)
        buttons = QHBoxLayout()
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(lambda: self.cancel())
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        self.status = QLabel("Samples from the current weights (training may keep running).")
        self.status.setWordWrap(True)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        font = self.output.font()
        font.setFamily("monospace")
        font.setPointSize(max(font.pointSize(), 11))
        self.output.setFont(font)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.output, 1)

    def start(self) -> None:
        """Copy the live weights on the worker, then sample on a background thread."""
        self.cancel()
        self.generate_button.setEnabled(False)
        self.status.setText("Copying the weights…")
        self.session.run_on_worker(snapshot_for_sampling, self._sample, self._failed)

    def _sample(self, snapshot) -> None:
        if snapshot is None or not snapshot["vocab"]:
            self._failed("Open a text model (such as the tiny GPT example) and train or "
                         "compile it first: generating needs next-character text data.")
            return
        self.text = ""
        self.output.setPlainText(self.prompt.text())
        self.status.setText(f"Sampling with the weights of step {snapshot['step']}, "
                            f"temperature {self.temperature.value():g}…")
        fn = functools.partial(sample_text, snapshot, self.prompt.text(), self.length.value(),
                               self.temperature.value(), self.seed.value())
        self.stop_button.setEnabled(True)
        self.step = snapshot["step"]
        self.job = start_job(fn, self._chunk, self._done, self._failed, name="generate-text")

    def _chunk(self, piece: str) -> None:
        self.text += piece
        cursor = self.output.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(piece)

    def _done(self, text: str) -> None:
        self.text = text
        self.runs += 1
        self._idle()
        self.status.setText(f"{len(text)} characters sampled with the weights of step "
                            f"{self.step} (temperature {self.temperature.value():g}, seed "
                            f"{self.seed.value()}).")

    def _failed(self, message: str) -> None:
        self._idle()
        self.status.setText(message)

    def _idle(self) -> None:
        self.job = None
        self.generate_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel(wait=True)
            self._idle()


class GenerateDialog(ToolDialog):
    TITLE = "Generate Text"
    NAME = "generate_dialog"
    SIZE = (760, 560)

    def __init__(self, session, parent=None):
        self.session = session
        super().__init__(parent)

    def make_view(self, parent):
        return GenerateView(self.session, parent)


# -- Attention ---------------------------------------------------------------------------------

class AttentionView(QWidget):
    """Heat maps of one head's attention weights and their gradients, characters on the axes."""

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.session = window.training.session
        self.result: dict[str, Any] | None = None
        self.fetches = 0
        controls = QHBoxLayout()
        self.node_box = QComboBox()
        self.head_box = QSpinBox()
        self.head_box.setPrefix("head ")
        self.sample_box = QSpinBox()
        self.sample_box.setPrefix("sample ")
        self.sample_box.setRange(0, 4095)
        for label, w in (("Attention node", self.node_box), ("", self.head_box),
                         ("of the last batch:", self.sample_box)):
            if label:
                controls.addWidget(QLabel(label))
            controls.addWidget(w)
        controls.addStretch(1)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(theme.current().background)
        self.plots = []
        self.images = []
        cmaps = (pg.colormap.get("viridis"), pg.colormap.get("CET-D1"))
        for col, title in enumerate(("attention weights (row: query, column: key)",
                                     "gradient ∂L/∂attention")):
            plot = self.graphics.addPlot(row=0, col=2 * col, title=title)
            plot.invertY(True)
            plot.setAspectLocked(True)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            image = pg.ImageItem(axisOrder="row-major")
            image.setColorMap(cmaps[col])
            plot.addItem(image)
            bar = pg.ColorBarItem(colorMap=cmaps[col], interactive=False, width=12)
            bar.setImageItem(image)
            self.graphics.addItem(bar, row=0, col=2 * col + 1)
            self.plots.append(plot)
            self.images.append((image, bar))
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.info)
        layout.addWidget(self.graphics, 1)
        self.fetch = ThrottledFetch(self.session, FETCH_INTERVAL_MS, self._job, self._show,
                                    self._failed, self.isVisible, self)
        self.session.report.connect(lambda _r: self.fetch.request())
        for box in (self.head_box, self.sample_box):
            box.valueChanged.connect(lambda _v: self.fetch.request(now=True))
        self.node_box.currentIndexChanged.connect(lambda _i: self.fetch.request(now=True))
        self.refresh_nodes()

    def refresh_nodes(self) -> None:
        """Fill the node list from the document and fetch."""
        current = self.node_box.currentText()
        nodes = attention_nodes(self.window.document)
        self.node_box.blockSignals(True)
        self.node_box.clear()
        self.node_box.addItems(nodes)
        if current in nodes:
            self.node_box.setCurrentText(current)
        self.node_box.blockSignals(False)
        if not nodes:
            self.info.setText("The graph has no MultiHeadAttention node; open the tiny GPT "
                              "example (File → Examples) to see attention.")
        self.fetch.request(now=True)

    def _job(self):
        return functools.partial(attention_snapshot, self.node_box.currentText(),
                                 self.head_box.value(), self.sample_box.value())

    def _failed(self, message: str) -> None:
        self.info.setText(message)

    def _show(self, result) -> None:
        self.fetches += 1
        if result is None:
            if self.node_box.count():
                self.info.setText("Compile or train the graph to see the attention weights.")
            return
        if "empty" in result:
            self.info.setText(result["empty"])
            return
        self.result = result
        self.head_box.setMaximum(result["heads"] - 1)
        self.sample_box.setMaximum(result["batch"] - 1)
        attn, grad, chars = result["attn"], result["grad"], result["chars"]
        self.images[0][0].setImage(attn, levels=(0.0, float(max(attn.max(), 1e-12))))
        self.images[0][1].setLevels((0.0, float(max(attn.max(), 1e-12))))
        if grad is not None:
            m = float(max(np.abs(grad).max(), 1e-12))
            self.images[1][0].setImage(grad, levels=(-m, m))
            self.images[1][1].setLevels((-m, m))
        n = attn.shape[0]
        labels = [shown(c) for c in chars] if chars else [str(i) for i in range(n)]
        ticks = [[(i + 0.5, labels[i]) for i in range(n)]]
        for plot in self.plots:
            for side in ("left", "bottom"):
                plot.getAxis(side).setTicks(ticks)
        text = "".join(chars) if chars else ""
        self.info.setText(
            f"<b>{result['node']}</b>, head {result['head']}, sample {result['sample']} of the "
            f"batch of training step {result['step']}"
            + (f": “{text.replace(chr(10), '↵')}”" if text else "")
            + ". Each row is one position: how much it takes from each earlier position "
            "(rows add up to 1).")

    def cancel(self) -> None:
        """Nothing runs in the background; fetches stop when the window is hidden."""


class AttentionDialog(ToolDialog):
    TITLE = "Attention"
    NAME = "attention_dialog"
    SIZE = (1100, 640)

    def __init__(self, window, parent=None):
        self.main = window
        super().__init__(parent)

    def make_view(self, parent):
        return AttentionView(self.main, parent)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.view.refresh_nodes()


class SequenceLab(QObject):
    """Generate Text and Attention in the Learn menu (kept as `window.sequence_lab`)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.generate: GenerateDialog | None = None
        self.attention: AttentionDialog | None = None
        self.actions = add_learn_actions(window, (
            ("learn_attention", "&Attention…", self.show_attention,
             "The attention weights of one head, live while training, and their gradients"),
            ("learn_generate", "&Generate Text…", self.show_generate,
             "Sample text from the trained character model")))

    def show_generate(self) -> GenerateDialog:
        if self.generate is None:
            self.generate = GenerateDialog(self.window.training.session, self.window)
        return _raise(self.generate)

    def show_attention(self) -> AttentionDialog:
        if self.attention is None:
            self.attention = AttentionDialog(self.window, self.window)
        return _raise(self.attention)

    def shutdown(self) -> None:
        if self.generate is not None:
            self.generate.view.cancel()


def install_sequence_lab(window) -> SequenceLab:
    """Add Attention and Generate Text to the Learn menu."""
    return SequenceLab(window)
