"""Training: batches, optimizer steps, epoch reports. Plain Python, no threads.

`Trainer.step()` runs one optimizer step and returns a small report; the GUI's worker
thread and the command line both drive it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.core.program import Program
from engine.core.stats import Summary, summarize_many
from engine.data.dataset import Dataset
from engine.errors import DataError, GradscapeError, TrainingDiverged
from engine.training.optim import clip_grad_norm, make_optimizer, make_schedule, regularization


@dataclass
class TrainConfig:
    """Training settings; stored in a graph file's `training` block."""

    dataset: str = "xor"
    dataset_params: dict[str, Any] = field(default_factory=dict)
    csv: str | None = None
    text: str | None = None  # a UTF-8 text file: next-character data (dataset_params: block_size)
    target_columns: list[str] | None = None
    feature_columns: list[str] | None = None
    images: str | None = None  # a folder with one sub-folder of images per class
    data: dict[str, Any] | None = None  # the table used by dataset "table"
    standardize: bool = True  # CSV and table features to mean 0, std 1
    validation_split: float = 0.0
    optimizer: str = "adam"
    optimizer_params: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.01
    schedule: str = "constant"
    schedule_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = 32  # None or 0: full batch
    epochs: int = 100
    seed: int = 0
    clip_norm: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    dtype: str = "float32"

    @classmethod
    def from_block(cls, block: dict[str, Any] | None, **overrides: Any) -> TrainConfig:
        """Build from a graph file's `training` block; unknown keys are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in (block or {}).items() if k in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def to_block(self) -> dict[str, Any]:
        """The settings as a JSON-able `training` block (defaults omitted)."""
        defaults = TrainConfig()
        return {k: v for k, v in asdict(self).items() if v != getattr(defaults, k)}

    def validate(self) -> None:
        """Raise GradscapeError with a sentence for the first setting that cannot work.

        A graph file's training block may hold anything, so every type is checked here
        rather than failing later inside numpy with a traceback.
        """
        if not (_is_number(self.lr) and self.lr > 0 and math.isfinite(self.lr)):
            raise GradscapeError(f"The learning rate must be a positive number, not {self.lr!r}.")
        if self.batch_size is not None and (not isinstance(self.batch_size, int)
                                            or self.batch_size < 0):
            raise GradscapeError(
                f"The batch size must be a whole number ≥ 1 (or 0 for full batch), "
                f"not {self.batch_size!r}.")
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise GradscapeError(f"Epochs must be a whole number ≥ 0, not {self.epochs!r}.")
        if not (_is_number(self.validation_split) and 0.0 <= self.validation_split < 1.0):
            raise GradscapeError("The validation split must be between 0 and 1 (e.g. 0.2), "
                                 f"not {self.validation_split!r}.")
        if type(self.seed) is not int or self.seed < 0:
            raise GradscapeError(f"The seed must be a whole number ≥ 0, not {self.seed!r}.")
        if self.dtype not in ("float32", "float64"):
            raise GradscapeError(
                f"The number type (dtype) must be 'float32' or 'float64', not {self.dtype!r}.")
        for label, value in (("gradient clipping norm", self.clip_norm),
                             ("L1 strength", self.l1), ("L2 strength", self.l2)):
            if not (_is_number(value) and value >= 0 and math.isfinite(value)):
                raise GradscapeError(f"The {label} must be a number ≥ 0, not {value!r}.")
        if not isinstance(self.standardize, bool):
            raise GradscapeError("The training setting 'standardize' must be true or false, "
                                 f"not {self.standardize!r}.")
        for label, value in (("CSV file", self.csv), ("image folder", self.images)):
            if value is not None and not isinstance(value, str):
                raise GradscapeError(f"The {label} must be given as a path, not {value!r}.")
        if self.data is not None and not isinstance(self.data, dict):
            raise GradscapeError("The training block's data table must be an object with "
                                 "'columns' and 'rows'.")
        for label, value in (("optimizer", self.optimizer), ("schedule", self.schedule),
                             ("dataset", self.dataset)):
            if not isinstance(value, str):
                raise GradscapeError(f"The {label} must be given by name, not {value!r}.")
        for label, value in (("optimizer_params", self.optimizer_params),
                             ("schedule_params", self.schedule_params),
                             ("dataset_params", self.dataset_params)):
            if not isinstance(value, dict):
                raise GradscapeError(
                    f"The training setting '{label}' must map names to values, not {value!r}.")


# Divergence: the loss at RUNAWAY_RATIO times its best (floored at RUNAWAY_FLOOR of the
# first loss), or a weight beyond WEIGHT_LIMIT times the largest target value (at least 1).
RUNAWAY_RATIO = 1e3
RUNAWAY_FLOOR = 0.1
WEIGHT_LIMIT = 1e6
_POINTWISE_LOSSES = ("MSELoss", "MAELoss", "HuberLoss")


def data_warnings(program: Program, train: Any) -> list[str]:
    """Sentences about settings that train but probably not as meant (not errors)."""
    out = []
    num_classes = getattr(train, "num_classes", 0) or 0
    if getattr(train, "task", None) == "classification" and num_classes > 2:
        for i in program.loss_nodes:
            op = program.op_ids[i]
            if op in _POINTWISE_LOSSES and train.y.ndim == 2 and train.y.shape[1] == 1:
                out.append(
                    f"The loss '{program.order[i]}' ({op}) compares the output with class "
                    f"numbers 0–{num_classes - 1} as if they were quantities, so class 3 "
                    "counts as 'closer' to 2 than to 0. For classes use CrossEntropyLoss "
                    f"with {num_classes} outputs.")
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class StepReport:
    """What one optimizer step produced."""

    step: int
    epoch: int  # epochs completed before this step
    loss: float
    lr: float
    epoch_done: EpochReport | None = None


@dataclass
class EpochReport:
    """Metrics at the end of an epoch (accuracy only for classification)."""

    epoch: int
    loss: float
    val_loss: float | None = None
    accuracy: float | None = None
    val_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epoch": self.epoch, "loss": self.loss}
        if self.val_loss is not None:
            out["val_loss"] = self.val_loss
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        if self.val_accuracy is not None:
            out["val_accuracy"] = self.val_accuracy
        return out


TABLE_DATASET = "table"  # `dataset` value that trains on the training block's `data` table


def load_data(cfg: TrainConfig) -> Dataset:
    """The training data named by the config, in this order of precedence: a text file, a
    CSV file, an image folder, the data table (dataset "table"), a built-in dataset."""
    from engine.data import load_csv, make_dataset

    if cfg.text:
        from engine.data.text import load_text_dataset

        return load_text_dataset(cfg.text, **cfg.dataset_params)
    if cfg.csv:
        target = cfg.target_columns
        if isinstance(target, list) and len(target) == 1:
            target = target[0]
        return load_csv(cfg.csv, target=target, features=cfg.feature_columns,
                        standardize=cfg.standardize)
    if cfg.images:
        from engine.data.images import load_image_folder

        return load_image_folder(cfg.images)
    if cfg.dataset == TABLE_DATASET:
        from engine.data.table import load_table

        if cfg.data is None:
            raise DataError("The training block says dataset 'table' but holds no data "
                            "table; add rows in the Data dock or choose another data set.")
        return load_table(cfg.data, standardize=cfg.standardize)
    return make_dataset(cfg.dataset, seed=cfg.seed, **cfg.dataset_params)


def fit_to_program(program: Program, *datasets: Any) -> None:
    """Shape each data set's inputs like the program's (first) Input node, in place."""
    from engine.data.dataset import fit_to_input

    if not program.input_nodes:
        return
    shape = tuple(program.shapes[program.order[program.input_nodes[0]]][1:])
    for data in datasets:
        if isinstance(data, Dataset):
            fit_to_input(data, shape)


def output_width_problem(program: Program, data: Any) -> str | None:
    """A sentence when the output feeding a classification loss does not give one score per
    class of `data` (checked before training, so no step is wasted on it)."""
    classes = int(getattr(data, "num_classes", 0) or 0)
    if getattr(data, "task", "") != "classification" or classes < 2:
        return None
    for i in program.loss_nodes:
        ports = program.input_ports[i]
        if "prediction" not in ports:
            continue
        src = program.order[program.srcs[i][ports.index("prediction")]]
        width = program.shapes[src][-1] if len(program.shapes[src]) == 2 else None
        loss = program.op_ids[i]
        wanted = classes if loss == "CrossEntropyLoss" else (1 if classes == 2 else classes)
        if loss not in ("CrossEntropyLoss", "BCELoss") or width in (None, wanted):
            continue
        names = ", ".join(getattr(data, "class_names", ())[:10])
        named = f" ({names})" if names else ""
        if loss == "BCELoss" and classes > 2:
            return (f"The dataset '{data.name}' has {classes} classes{named}, but BCELoss "
                    "answers yes/no for one class. Use CrossEntropyLoss with "
                    f"{classes} outputs.")
        return (f"Node '{src}' gives {width} output{'s' if width != 1 else ''} per sample "
                f"but the dataset '{data.name}' has {classes} classes{named}, so {loss} "
                f"needs {wanted}. Set the units of the layer before the loss to {wanted}.")
    return None


class Trainer:
    """Drives a compiled Program over a dataset with an optimizer.

    Args:
        program: the compiled graph (its `theta` is trained in place).
        train: the training Dataset; val: an optional validation Dataset.
        config: the TrainConfig.
    """

    def __init__(self, program: Program, train: Any, config: TrainConfig, val: Any = None):
        self.program = program
        self.config = config
        self.train_set = train
        self.val_set = val if val is not None and len(val) else None
        fit_to_program(program, train, self.val_set)
        dtype = program.dtype
        self.x = np.ascontiguousarray(train.x, dtype=dtype)
        self.y = np.ascontiguousarray(train.y, dtype=dtype)
        self._check_data_fits()
        program.check_batch_fits(max(config.batch_size or len(self.x), 1))
        self.warnings = data_warnings(program, train)
        self.optimizer = make_optimizer(config.optimizer, program.theta, program.grad, config.lr,
                                        **config.optimizer_params)
        self.schedule = make_schedule(config.schedule, config.lr, **config.schedule_params)
        self.rng = np.random.default_rng(config.seed)
        self.step_count = 0
        self.epoch = 0
        self._epoch_losses: list[float] = []
        self._batches: list[np.ndarray] = []
        self._batch_pos = 0
        self._last_good = program.theta.copy()
        self._grad_finite = np.empty(program.grad.shape, dtype=bool)  # reused every step
        self._first_loss: float | None = None  # runaway detection (see _check_runaway)
        self._best_loss: float | None = None
        self._weight_limit = WEIGHT_LIMIT * max(1.0, float(np.abs(self.y).max(initial=0.0)))
        self._stepped = False  # whether `last_update` describes a step of this trainer
        self.history: list[EpochReport] = []
        self.step_losses: list[float] = []
        self._accuracy_rule = self._find_accuracy_rule()

    # -- set-up ------------------------------------------------------------------------
    def _check_data_fits(self) -> None:
        p = self.program
        for i in p.input_nodes:
            want = p.shapes[p.order[i]][1:]
            if tuple(self.x.shape[1:]) != tuple(want):
                raise DataError(
                    f"The dataset '{self.train_set.name}' has {self._fmt(self.x.shape[1:])} "
                    f"input values per sample but node '{p.order[i]}' expects "
                    f"{self._fmt(want)}. Set the Input's features/shape to match.")
        for i in p.target_nodes:
            want = p.shapes[p.order[i]][1:]
            if tuple(self.y.shape[1:]) != tuple(want):
                raise DataError(
                    f"The dataset '{self.train_set.name}' has {self._fmt(self.y.shape[1:])} "
                    f"target values per sample but node '{p.order[i]}' expects "
                    f"{self._fmt(want)}. Set the Target's features to match.")
        problem = output_width_problem(self.program, self.train_set)
        if problem:
            raise DataError(problem)

    @staticmethod
    def _fmt(shape: tuple) -> str:
        return "×".join(str(d) for d in shape) or "1"

    def _find_accuracy_rule(self) -> Callable[[np.ndarray, np.ndarray], float] | None:
        if getattr(self.train_set, "task", "regression") != "classification":
            return None
        p = self.program
        threshold = 0.5
        for i in p.loss_nodes:
            if p.op_ids[i] == "BCELoss" and p.params[p.order[i]].get("from_logits"):
                threshold = 0.0

        def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
            if pred.ndim == 3:  # a sequence: one class per position
                return float(np.mean(pred.argmax(axis=-1) == np.rint(y.reshape(pred.shape[:2]))))
            if pred.ndim == 2 and pred.shape[1] > 1:
                guess = pred.argmax(axis=1)
                truth = y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0]
            else:
                guess = (pred.reshape(len(pred), -1)[:, 0] > threshold).astype(np.int64)
                truth = y[:, 0]
            return float(np.mean(guess == np.rint(truth)))

        return accuracy

    # -- stepping ----------------------------------------------------------------------
    def _next_batch(self) -> np.ndarray | None:
        """Index array of the next batch, or None when the epoch is over."""
        if self._batch_pos >= len(self._batches):
            return None
        self._batch_pos += 1
        return self._batches[self._batch_pos - 1]

    @property
    def weights_before_step(self) -> np.ndarray:
        """The weights the last step started from (its forward and backward used them)."""
        return self._last_good

    @property
    def last_update(self) -> np.ndarray | None:
        """Δθ of the last step (the optimizer's reused buffer; None before the first step)."""
        return self.optimizer.last_update if self._stepped else None

    @property
    def last_batch(self) -> np.ndarray | None:
        """Sample indices of the batch the last step used (None before the first step)."""
        return self._batches[self._batch_pos - 1] if self._batch_pos else None

    def peek_next_batch(self) -> np.ndarray:
        """Sample indices of the batch the next step will use (starts a new epoch if due)."""
        if self._batch_pos >= len(self._batches):
            self._start_epoch()
            if not self._batches:
                raise DataError("The training set is empty.")
        return self._batches[self._batch_pos]

    def _start_epoch(self) -> None:
        from engine.data import batches

        bs = self.config.batch_size or None
        self._batches = list(batches(len(self.x), bs, self.rng, shuffle=True))
        self._batch_pos = 0
        self._epoch_losses = []

    def step(self) -> StepReport:
        """One optimizer step on the next batch.

        Raises:
            TrainingDiverged: the loss or a gradient became NaN/Inf; the weights are
                restored to the last values that gave a finite loss.
        """
        idx = self._next_batch()
        if idx is None:
            self._start_epoch()
            idx = self._next_batch()
            if idx is None:
                raise DataError("The training set is empty.")
        p = self.program
        p.set_training(True)
        full = len(idx) == len(self.x)
        xb = self.x if full else self.x[idx]
        yb = self.y if full else self.y[idx]
        loss = p.forward(xb, yb)
        if not math.isfinite(loss):
            self._diverged("loss", p.first_nonfinite_node())
        self._check_runaway(loss)
        np.copyto(self._last_good, p.theta)
        p.backward()
        cfg = self.config
        if cfg.l1 or cfg.l2:
            loss += regularization(p.theta, p.grad, cfg.l1, cfg.l2)
        if cfg.clip_norm:
            clip_grad_norm(p.grad, cfg.clip_norm)
        if not np.isfinite(p.grad, out=self._grad_finite).all():
            self._diverged("gradient", p.first_nonfinite_grad())
        self.optimizer.lr = self.schedule.lr_at(self.step_count, self.epoch)
        self.optimizer.step()
        self._stepped = True
        self._check_weights()
        self.step_count += 1
        self._epoch_losses.append(loss)
        self.step_losses.append(loss)
        report = StepReport(self.step_count, self.epoch, loss, self.optimizer.lr)
        if self._batch_pos >= len(self._batches):
            report.epoch_done = self._finish_epoch()
        return report

    def _finish_epoch(self) -> EpochReport:
        self.epoch += 1
        loss = float(np.mean(self._epoch_losses)) if self._epoch_losses else float("nan")
        report = EpochReport(self.epoch, loss)
        if self._accuracy_rule is not None:
            report.accuracy = self.evaluate(self.train_set)[1]
        if self.val_set is not None:
            report.val_loss, report.val_accuracy = self.evaluate(self.val_set)
        self.history.append(report)
        return report

    def _check_runaway(self, loss: float) -> None:
        """Stop when the loss runs away: at least RUNAWAY_RATIO times its best so far.

        The best is floored at RUNAWAY_FLOOR of the first loss, so a loss that merely
        bounces near zero (0.00001 → 0.05 on a hard batch) is not called a divergence.
        """
        if self._best_loss is None:
            past = [v for v in self.step_losses if math.isfinite(v)]
            if not past:
                self._first_loss = self._best_loss = loss
                return
            self._first_loss, self._best_loss = past[0], min(past)
        assert self._first_loss is not None
        if self._best_loss < 0 or self._first_loss < 0:  # a loss that can be negative
            return
        reference = max(self._best_loss, RUNAWAY_FLOOR * self._first_loss, 1e-8)
        if loss >= RUNAWAY_RATIO * reference:
            np.copyto(self.program.theta, self._last_good)
            p = self.program
            node = p.order[p.loss_nodes[0]] if p.loss_nodes else None
            raise TrainingDiverged(
                f"Training diverged at step {self.step_count + 1}: the loss"
                f"{f' {node!r}' if node else ''} jumped to {loss:.3g}, more than "
                f"{RUNAWAY_RATIO:,.0f} times its best so far ({self._best_loss:.3g}). The "
                f"last good weights were kept. Try a lower learning rate (now "
                f"{self.optimizer.lr:g}) or gradient clipping.", node=node)
        self._best_loss = min(self._best_loss, loss)

    def _check_weights(self) -> None:
        """Stop when a weight leaves any sane range (the step is undone)."""
        theta = self.program.theta
        if not len(theta):
            return
        limit = self._weight_limit
        # Two reads of θ and no temporary (|θ| cost a write and a third read of θ every step);
        # the culprit is located only on failure
        hi, lo = float(theta.max()), float(theta.min())
        if math.isfinite(hi) and math.isfinite(lo) and hi <= limit and lo >= -limit:
            return
        k = int(np.abs(theta).argmax())
        big = abs(float(theta[k]))
        np.copyto(theta, self._last_good)
        entry = next((e for e in self.program.entries if e.offset <= k < e.offset + e.size),
                     None)
        where = f" of node '{entry.node}' ({entry.name})" if entry is not None else ""
        raise TrainingDiverged(
            f"Training diverged at step {self.step_count + 1}: a weight{where} reached "
            f"{big:.3g}, beyond any sensible size ({self._weight_limit:.0e}). The weights "
            f"before that step were kept. Try a lower learning rate (now "
            f"{self.optimizer.lr:g}) or gradient clipping.",
            node=entry.node if entry is not None else None)

    def _diverged(self, what: str, node: str | None) -> None:
        np.copyto(self.program.theta, self._last_good)
        where = ""
        if node is not None:
            op = self.program.op_ids[self.program.index[node]]
            where = f" Node '{node}' ({op}) produced the first non-finite value."
        raise TrainingDiverged(
            f"Training diverged at step {self.step_count + 1}: the {what} became NaN or "
            f"infinite.{where} The last good weights were kept. Try a lower learning rate "
            f"(now {self.optimizer.lr:g}) or gradient clipping.", node=node)

    def run_epoch(self) -> EpochReport:
        """Steps until the current epoch ends; returns its report."""
        while True:
            report = self.step()
            if report.epoch_done is not None:
                return report.epoch_done

    def run(self, epochs: int | None = None,
            on_epoch: Callable[[EpochReport], None] | None = None) -> list[EpochReport]:
        """Train for `epochs` (default: the config's) and return the epoch reports."""
        reports = []
        for _ in range(self.config.epochs if epochs is None else epochs):
            report = self.run_epoch()
            reports.append(report)
            if on_epoch is not None:
                on_epoch(report)
        return reports

    def evaluate(self, dataset: Any) -> tuple[float, float | None]:
        """Loss and accuracy (None for regression) on a whole dataset, evaluation mode.

        The program's trace (values, gradients, kernel state) still describes the last
        step afterwards.
        """
        p = self.program
        with p.keep_trace():  # the trace keeps describing the last training step
            p.set_training(False)
            x = np.asarray(dataset.x, dtype=p.dtype)
            y = np.asarray(dataset.y, dtype=p.dtype)
            loss = p.forward(x, y)
            acc = None
            if self._accuracy_rule is not None:
                acc = self._accuracy_rule(p.values[p.output_nodes[0]], y)
        return loss, acc

    # -- inspection --------------------------------------------------------------------
    def edge_summaries(self) -> tuple[list[Summary | None], list[Summary | None]]:
        """Value and gradient summaries of every edge after the last step."""
        p = self.program
        values = [p.edge_value(k) for k in range(len(p.edges))]
        return summarize_many(values), summarize_many(list(p.edge_grads))

    def state(self) -> dict[str, Any]:
        """Counters, RNG state and the position inside the current epoch, so training can
        resume exactly (together with the optimizer state and `epoch_batches()`)."""
        return {"step": self.step_count, "epoch": self.epoch,
                "rng": self.rng.bit_generator.state, "batch_pos": self._batch_pos,
                "epoch_losses": [float(v) for v in self._epoch_losses]}

    def epoch_batches(self) -> list[np.ndarray]:
        """Copies of the index arrays of the current epoch's batches, in order."""
        return [b.copy() for b in self._batches]

    def load_state(self, state: dict[str, Any], batches: list[np.ndarray]) -> None:
        """Restore what `state()` and `epoch_batches()` returned (after loading weights)."""
        self.step_count = int(state["step"])
        self.epoch = int(state["epoch"])
        self.rng.bit_generator.state = state["rng"]
        self._batches = [np.asarray(b, dtype=np.int64) for b in batches]
        self._batch_pos = int(state.get("batch_pos", len(self._batches)))
        self._epoch_losses = [float(v) for v in state.get("epoch_losses", [])]
        np.copyto(self._last_good, self.program.theta)
