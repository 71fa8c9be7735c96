"""Trained models in the designer: open and save ``.gsmodel`` files, export to other formats.

Installed with one call, ``install_model_files(window)`` (kept as ``window.models``), after the
training runtime. It adds File → Export Model… and Train → Save Trained Model….

The worker thread owns the live Program and Trainer, so everything here reads or writes
them through ``session.run_on_worker``: a save snapshots the weights, optimizer and trainer
state between two steps (while training runs or not); an export copies the weights there and
writes the files on a QThreadPool thread (the first ONNX export imports ``onnx``, ~0.4 s).

Opening a model restores the graph into the document (the session recompiles it), then a job
on the worker loads the saved weights, optimizer state, counters and RNG states into the fresh
program and trainer and emits one report holding the saved loss history, so the loss plot,
the counters and the status bar show where training stopped and Play / Step go on from there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEventLoop, QObject, QRunnable, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

from engine.errors import FileFormatError, GradscapeError
from engine.files.model_file import LoadedModel, load_model, preprocessing_info, save_model

MODEL_SUFFIX = ".gsmodel"
ONNX_SUFFIX = ".onnx"
SAVE_TIMEOUT_MS = 10000


def is_model_file(path: str | Path | None) -> bool:
    return path is not None and Path(path).suffix.lower() == MODEL_SUFFIX


def is_onnx_file(path: str | Path | None) -> bool:
    return path is not None and Path(path).suffix.lower() == ONNX_SUFFIX


def human_size(n: int) -> str:
    """12 kB, 1.4 MB: sizes as people say them."""
    if n < 1000:
        return f"{n} bytes"
    if n < 1000**2:
        return f"{n / 1000:.0f} kB"
    return f"{n / 1000**2:.1f} MB"


def _shape_text(shape) -> str:
    dims = ["batch" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ")"


@dataclass
class ExportResult:
    """What an export or save wrote, and one sentence saying so."""

    fmt: str
    out: Path
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""
    trained: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(f.stat().st_size for f in self.files if f.exists())


def _preprocessing(data: Any) -> dict[str, Any]:
    return preprocessing_info(data) if data is not None else {}


class _TrainerTotals:
    """The live trainer seen with the worker's totals.

    The worker keeps counting steps and epochs across recompiles (an edit that keeps the
    weights starts a fresh Trainer); the saved file holds the totals the panel shows and the
    loss history of the plot, so reopening it continues the same curve.
    """

    def __init__(self, trainer: Any, steps: int, epochs: int, losses: list[float],
                 history: list[Any]):
        self._trainer = trainer
        self.step_count, self.epoch = steps, epochs
        self.step_losses, self.history = losses, history

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trainer, name)

    def state(self) -> dict[str, Any]:
        state = self._trainer.state()
        state.update(step=self.step_count, epoch=self.epoch)
        return state


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)


class _ExportTask(QRunnable):
    """Runs an engine export on a pool thread (never on the GUI or the training thread)."""

    def __init__(self, source: Any, fmt: str, out: Path, trained: bool):
        super().__init__()
        self.source, self.fmt, self.out, self.trained = source, fmt, out, trained
        self.signals = _Signals()

    def run(self) -> None:
        from engine.export import export, resolve_model

        t0 = time.perf_counter()
        notes: list[str] = []
        try:
            files = export(self.source, self.fmt, self.out, notes=notes)
            program, _info = resolve_model(self.source)
            result = ExportResult(self.fmt, self.out, [Path(f) for f in files],
                                  time.perf_counter() - t0, trained=self.trained, notes=notes)
            result.message = export_message(result, program)
        except GradscapeError as exc:
            self.signals.failed.emit(str(exc))
            return
        except OSError as exc:
            self.signals.failed.emit(f"Cannot write {self.out.name}: {exc.strerror or exc}.")
            return
        except Exception as exc:  # noqa: BLE001  (say it in the GUI, never kill the pool)
            self.signals.failed.emit(f"The export failed: {type(exc).__name__}: {exc}")
            return
        self.signals.done.emit(result)


class _CallTask(QRunnable):
    """Runs `fn()` on a pool thread; its result or failure sentence comes back as a signal."""

    def __init__(self, fn: Callable[[], Any]):
        super().__init__()
        self.fn = fn
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self.fn()
        except GradscapeError as exc:
            self.signals.failed.emit(str(exc))
        except OSError as exc:
            self.signals.failed.emit(exc.strerror or str(exc))
        else:
            self.signals.done.emit(result)


def export_message(result: ExportResult, program: Any) -> str:
    """"Exported model.onnx (12 kB) — input 'input' (batch, 2), output 'output' (batch, 1)"."""
    files = result.files
    size = human_size(result.size)
    ins = [program.shapes[program.order[i]] for i in program.input_nodes]
    outs = [program.order[i] for i in program.output_nodes]
    in_text = _shape_text(ins[0]) if ins else "()"
    out_shapes = ", ".join(_shape_text(program.shapes[o]) for o in outs)
    if result.fmt == "onnx":
        names = ["output"] if len(outs) == 1 else [f"output_{o}" for o in outs]
        out_text = ", ".join(f"'{n}' {_shape_text(program.shapes[o])}"
                             for n, o in zip(names, outs))
        text = (f"Exported {files[0].name} ({size}) — input 'input' {in_text}, "
                f"output {out_text}.")
    elif result.fmt == "safetensors":
        text = (f"Exported {files[0].name} ({size}): {program.num_parameters:,} weights, "
                "keyed like the PyTorch module's state_dict.")
    elif result.fmt == "torch" and any(f.name == "train.py" for f in files):
        where = files[0].parent.name
        text = (f"Exported a PyTorch training folder {where}/ ({len(files)} files, {size}): "
                f"model.py taking {in_text} and returning {out_shapes}, train.py and the data. "
                "Run python train.py there to train it like Gradscape (CPU, GPU or torchrun); "
                "it writes trained.gsmodel, which File → Open reads.")
    else:
        kind = "PyTorch" if result.fmt == "torch" else "NumPy"
        names = " + ".join(f.name for f in files)
        where = files[0].parent.name if files else result.out.name
        text = (f"Exported {names} into {where}/ ({size}) — a {kind} model taking "
                f"{in_text} and returning {out_shapes}.")
    if not result.trained:
        text += " The graph has not been trained: these are its freshly initialised weights."
    for note in result.notes:
        text += " " + note
    return text


class ModelFiles(QObject):
    """Open/save .gsmodel files and export the live model (kept as `window.models`).

    Signals:
        saved(ExportResult): a .gsmodel was written.
        exported(ExportResult): an export finished.
        failed(str): an export or save failed (the sentence shown to the user).
        restored(object): the weights of an opened model are in the worker (the report).

    Prompts (tests replace them): `show_info(title, text)`; errors go to `window.show_error`.
    """

    saved = Signal(object)
    exported = Signal(object)
    failed = Signal(str)
    restored = Signal(object)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.training.session
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._tasks: set[QRunnable] = set()
        self.show_info: Callable[[str, str], None] = self._show_info
        self.busy = False
        self.imported: LoadedModel | None = None  # ONNX weights waiting for a trainable graph
        self._partial = (0, 0, "")
        window.document.reset.connect(self._forget_import)
        self.session.state_changed.connect(self._load_imported)
        self._build_actions()

    # -- actions -----------------------------------------------------------------------
    def _build_actions(self) -> None:
        w = self.window
        self.export_action = QAction("&Export Model…", w)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setStatusTip("Write the trained network as ONNX, PyTorch, "
                                        "safetensors, NumPy or a Gradscape model file")
        self.export_action.triggered.connect(lambda _c=False: self.show_export_dialog())
        self.save_model_action = QAction("Save Trained &Model…", w)
        self.save_model_action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        self.save_model_action.setStatusTip("Save the graph with its trained weights, optimizer "
                                            "state and loss history (.gsmodel)")
        self.save_model_action.triggered.connect(lambda _c=False: self.ask_and_save_model())
        for name, action in (("export", self.export_action),
                             ("save_trained_model", self.save_model_action)):
            w.actions[name] = action
            w.addAction(action)
        file_menu = w.menu("file")
        revert = w.actions.get("revert")
        before = revert if revert in file_menu.actions() else None
        file_menu.insertAction(before, self.export_action)
        train_menu = w.menu("train")
        train_menu.addSeparator()
        train_menu.addAction(self.save_model_action)
        w.training.panel.add_button(self.save_model_action, "Save Model…")

    # -- paths -------------------------------------------------------------------------
    def default_stem(self) -> str:
        path = self.window.controller.path
        return path.stem if path else "model"

    def default_folder(self) -> Path:
        """The document's folder (unless it is a bundled example), else the last one used."""
        path = self.window.controller.path
        if path is not None and not self.window.is_example(path):
            return path.parent
        recent = self.window.recent_files()
        return Path(recent[0]).parent if recent else Path.home()

    # -- opening -----------------------------------------------------------------------
    def open(self, path: str | Path) -> LoadedModel:
        """Open a .gsmodel: the graph becomes the document, then the weights, optimizer
        state, counters and loss history are loaded into the training worker. An .onnx
        model goes to `open_onnx`.

        Raises:
            FileFormatError: the file is damaged or hostile; the document is untouched.
        """
        path = Path(path)
        if is_onnx_file(path):
            return self.open_onnx(path)
        loaded = load_model(path)
        self.window.controller.open_spec(loaded.spec, path)  # recompiles (fresh weights)
        self.restore(loaded)
        return loaded

    def open_onnx(self, path: str | Path) -> LoadedModel:
        """Import an ONNX model: its graph becomes an untitled document, and its weights
        wait until the graph can train (a loss and a data set chosen), then load.

        Raises:
            FileFormatError: the model cannot be expressed or is hostile; nothing changes.
        """
        from engine.files.onnx_import import import_onnx

        path = Path(path)
        loaded = import_onnx(path)
        self.window.controller.open_spec(loaded.spec, path)
        self.imported = loaded  # after open_spec: its reset forgets an older import
        from designer.editing.graph_stats import parameter_count

        doc = self.window.document
        count = parameter_count(doc.nodes(), doc.analysis())
        self.window.show_message(
            f"Imported {path.name}: {len(loaded.spec.nodes)} nodes, {count:,} parameters. "
            "To train it: Train → Add Loss…, then choose a data set.")
        return loaded

    def _forget_import(self) -> None:
        self.imported = None

    def _load_imported(self, state: str) -> None:
        """The graph of an imported model compiled: put the imported weights in it."""
        from designer.training.session import READY

        if self.imported is not None and state == READY:
            loaded, self.imported = self.imported, None
            self.restore(loaded, strict=False)

    def restore(self, loaded: LoadedModel, strict: bool = True) -> None:
        """Load a model's weights and training state into the live (just compiled) program.

        strict=False loads the tensors whose node and shape still fit (an imported model
        the user edited before it could train) and names how many."""

        def job(program, trainer, worker):
            if program is None:
                raise GradscapeError("the graph could not be prepared for training, so the "
                                     "saved weights were not loaded")
            try:
                keys = program.load_state_dict(loaded.state_dict, strict=strict)
            except GradscapeError as exc:
                raise FileFormatError(f"{loaded.source}: {exc}") from None
            resumed = trainer is not None and loaded.trainer_state is not None
            if resumed:
                loaded.restore_training(trainer)
            report = _restored_report(worker, program, trainer, loaded)
            worker.publish(report)  # the worker's own channel: the run, plot, overlay
            return report, len(keys)

        def done(answer) -> None:
            report, got = answer
            if not strict:
                total, source = len(loaded.state_dict), loaded.source
                self.window.show_message(
                    f"Loaded the weights of {source} into the graph ({got} of {total} tensors"
                    + ("" if got == total else "; the others belong to nodes that changed")
                    + "). Play trains it.")
            else:
                self.window.show_message(
                    f"Restored the trained weights: step {report.step:,}, epoch {report.epoch}"
                    + (f", loss {report.loss:.4g}" if math.isfinite(report.loss) else "")
                    + ". Play continues the training.")
            self.restored.emit(report)

        def error(message: str) -> None:
            text = f"The graph was opened, but its trained weights could not be loaded: {message}"
            self.window.show_message(text)
            self.window.show_error("Cannot restore the trained model", text)
            self.failed.emit(text)

        self.session.run_on_worker(job, done, error, with_worker=True)

    # -- saving ------------------------------------------------------------------------
    def _fresh_program(self) -> None:
        """Make the worker's program match the document before reading it."""
        session = self.session
        if session.needs_compile():
            session.compile_now()

    def _save_job(self, path: Path):
        spec = self.window.document.spec()
        history = self.session.run.history  # the run's history, not a widget's copy
        run_losses = history.losses.view()[1].tolist()
        run_epochs = list(history.epochs)
        epoch_steps = [int(s) for s, _e in run_epochs]

        def job(program, trainer, worker):
            if program is None or trainer is None:
                raise GradscapeError("the graph cannot be trained yet, so there are no trained "
                                     "weights to save (fix the problems shown in the status "
                                     "bar, or save the graph as .json)")
            t0 = time.perf_counter()
            steps, epochs = worker.step_count, worker.epoch_count
            saving = trainer
            metrics: dict[str, Any] = {}
            if (steps, epochs) != (trainer.step_count, trainer.epoch):
                epoch_history = [e for _s, e in run_epochs]
                saving = _TrainerTotals(trainer, steps, epochs, run_losses, epoch_history)
                metrics["designer_epoch_steps"] = epoch_steps
            elif len(epoch_steps) == len(trainer.history):
                metrics["designer_epoch_steps"] = epoch_steps
            save_model(path, spec, program, saving, trainer.train_set, metrics)
            result = ExportResult("gsmodel", path, [path], time.perf_counter() - t0)
            loss = trainer.step_losses[-1] if trainer.step_losses else math.nan
            result.message = (f"Saved {path.name} ({human_size(result.size)}) — the graph with "
                              f"its trained weights at step {steps:,}, epoch {epochs}"
                              + (f", loss {loss:.4g}" if math.isfinite(loss) else "")
                              + ". Open it to continue training where it stopped.")
            return result

        return job

    def save_model(self, path: str | Path, on_done: Callable | None = None) -> None:
        """Write a .gsmodel with the live weights, optimizer and trainer state (async).

        The snapshot is taken on the training thread between two steps; the result
        (ExportResult) or the failure sentence is reported, then `on_done(result or None)`.
        """
        path = Path(path)
        if path.suffix.lower() != MODEL_SUFFIX:
            path = path.with_name(path.name + MODEL_SUFFIX)
        self._fresh_program()

        def done(result: ExportResult) -> None:
            self.window.show_message(result.message)
            self.saved.emit(result)
            if on_done is not None:
                on_done(result)

        def error(message: str) -> None:
            self._report_failure(f"Could not save {path.name}: {message}.")
            if on_done is not None:
                on_done(None)

        if self.imported is not None:  # an import that cannot train yet: its own weights
            self._run_task(self._save_imported_job(path, self.imported), done, error)
            return
        self.session.run_on_worker(self._save_job(path), done, error, with_worker=True)

    def _save_imported_job(self, path: Path, loaded: LoadedModel) -> Callable[[], ExportResult]:
        """Save the document with the weights of an import that has not trained yet."""
        spec = self.window.document.spec()

        def job() -> ExportResult:
            from engine.core.compiler import compile_graph
            from engine.errors import CompileError

            t0 = time.perf_counter()
            try:
                program = compile_graph(spec, require_loss=False)
            except CompileError as exc:
                raise GradscapeError("the graph cannot be compiled: "
                                     + "; ".join(str(d) for d in exc.diagnostics)) from None
            program.load_state_dict(loaded.state_dict, strict=False)
            save_model(path, spec, program)
            result = ExportResult("gsmodel", path, [path], time.perf_counter() - t0)
            result.message = (f"Saved {path.name} ({human_size(result.size)}) — the graph "
                              f"with the weights imported from {loaded.source}, not trained "
                              "yet.")
            return result

        return job

    def _run_task(self, fn: Callable[[], Any], done: Callable, error: Callable) -> None:
        task = _CallTask(fn)
        self._tasks.add(task)
        task.signals.done.connect(lambda r: (self._tasks.discard(task), done(r)))
        task.signals.failed.connect(lambda m: (self._tasks.discard(task), error(m)))
        task.setAutoDelete(False)
        self.pool.start(task)

    def save_model_now(self, path: str | Path, timeout_ms: int = SAVE_TIMEOUT_MS) -> bool:
        """save_model, waiting for the result (File → Save of a model document, which must
        say whether it worked before the window may close)."""
        if not self.session.is_alive():
            self._report_failure(f"Could not save {Path(path).name}: training has stopped.")
            return False
        box: dict[str, Any] = {}
        loop = QEventLoop()

        def finished(result) -> None:
            box["result"] = result
            loop.quit()

        self.save_model(path, finished)
        if "result" not in box:
            QTimer.singleShot(timeout_ms, loop.quit)
            loop.exec()
        return box.get("result") is not None

    def save_document(self, path: str | Path) -> bool:
        """File → Save / Save As to a .gsmodel: write the model and make it the document's file."""
        path = Path(path)
        if not self.save_model_now(path):
            return False
        self.window.controller.mark_saved(path)
        return True

    def ask_and_save_model(self) -> None:
        """Train → Save Trained Model…: ask for a .gsmodel path and save to it."""
        start = self.default_folder() / f"{self.default_stem()}{MODEL_SUFFIX}"
        path = self.ask_model_path(str(start))
        if path:
            self.save_model(path, self._after_menu_save)

    def _after_menu_save(self, result: ExportResult | None) -> None:
        if result is not None:
            self.window.add_recent(result.out)
            self.show_info("Model saved", result.message)

    def ask_model_path(self, start: str) -> str | None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.window, "Save Trained Model", start,
                                              "Gradscape models (*.gsmodel)")
        return path or None

    # -- exporting ---------------------------------------------------------------------
    def export(self, fmt: str, out: str | Path,
               on_done: Callable[[ExportResult | None], None] | None = None) -> None:
        """Export the live model as `fmt` (onnx, torch, safetensors, numpy, gsmodel).

        The weights are copied on the training thread, the files written on a pool thread;
        success and failure are reported in plain words, then `on_done(result or None)`.
        """
        out = Path(out)
        self.busy = True

        def finish(result: ExportResult | None) -> None:
            self.busy = False
            if result is not None:
                self.window.show_message(result.message)
                self.exported.emit(result)
                self.show_info("Export finished", result.message)
            if on_done is not None:
                on_done(result)

        if fmt == "gsmodel":
            self.save_model(out, finish)
            return
        self._fresh_program()
        spec = self.window.document.spec()

        def snapshot(program, trainer):
            if program is None:
                return None
            data = trainer.train_set if trainer is not None else None
            return LoadedModel(program.spec, str(np.dtype(program.dtype)), int(program.seed),
                               {k: np.array(v, copy=True)
                                for k, v in program.state_dict().items()},
                               preprocessing=_preprocessing(data), source="the live model")

        def start(model: LoadedModel | None) -> None:
            trained = model is not None and self.session.last_report is not None
            task = _ExportTask(model if model is not None else spec, fmt, out, trained)
            self._tasks.add(task)
            task.signals.done.connect(lambda r: (self._tasks.discard(task), finish(r)))
            task.signals.failed.connect(
                lambda m: (self._tasks.discard(task), self._report_failure(
                    f"Could not export {out.name}: {m}"), finish(None)))
            task.setAutoDelete(False)
            self.pool.start(task)

        def snapshot_failed(message: str) -> None:
            self._report_failure(f"Could not export {out.name}: {message}")
            finish(None)

        self.session.run_on_worker(snapshot, start, snapshot_failed)

    def show_export_dialog(self):
        from designer.files.export_dialog import ExportDialog

        dialog = ExportDialog(self)
        dialog.open()
        return dialog

    def wait(self, timeout_ms: int = 10000) -> bool:
        """Wait for pool exports (tests and shutdown)."""
        return self.pool.waitForDone(timeout_ms)

    # -- reporting ---------------------------------------------------------------------
    def _report_failure(self, text: str) -> None:
        self.window.show_message(text.splitlines()[0])
        self.failed.emit(text)
        self.window.show_error("Export failed" if "export" in text else "Save failed", text)

    def _show_info(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, text,
                          QMessageBox.StandardButton.Ok, self.window)
        box.setTextInteractionFlags(box.textInteractionFlags())
        box.open()  # not modal-blocking: the window keeps training


def _restored_report(worker, program, trainer, loaded: LoadedModel):
    """One report standing for the whole saved run: every step loss and epoch, no step."""
    from designer.training.worker import TrainingReport

    steps, epochs = worker.step_count, worker.epoch_count
    losses = np.asarray(trainer.step_losses if trainer is not None else loaded.step_losses,
                        dtype=np.float64)
    losses = losses[-steps:] if steps else losses[:0]
    history = list(trainer.history) if trainer is not None else []
    saved_steps = loaded.metrics.get("designer_epoch_steps")
    if (isinstance(saved_steps, list) and len(saved_steps) == len(history)
            and all(isinstance(s, int) for s in saved_steps)):
        at = saved_steps
    else:
        per_epoch = steps / epochs if epochs else 0
        at = [int(round(e.epoch * per_epoch)) for e in history]
    values, grads = trainer.edge_summaries() if trainer is not None else ([], [])
    loss = float(losses[-1]) if len(losses) else math.nan
    lr = trainer.optimizer.lr if trainer is not None else 0.0
    return TrainingReport(
        revision=worker.revision, step=steps, epoch=epochs, loss=loss, lr=lr,
        steps_per_second=0.0, running=False, first_step=steps - len(losses) + 1,
        losses=losses, epochs=list(zip(at, history)), edges=list(program.edges),
        values=values, grads=grads, flags={}, finished=False)


def install_model_files(window) -> ModelFiles:
    """Add model files and export to a MainWindow (after install_training)."""
    return ModelFiles(window)
