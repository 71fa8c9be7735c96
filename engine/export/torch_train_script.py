"""__HEADER__"""

# This file is copied verbatim into every PyTorch export by Gradscape (engine/export/
# torch_training.py); the engine never imports it. Everything specific to the graph is read
# from gradscape.json next to it, so the same script serves every graph.

from __future__ import annotations

import argparse
import io
import json
import math
import os
import struct
import sys
import time
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from model import GradscapeModel, load_weights  # noqa: E402

SETTINGS_FILE = os.path.join(HERE, "gradscape.json")
TORCH_OPTIMIZERS = {"SGD": "SGD", "RMSProp": "RMSprop", "Adam": "Adam", "AdamW": "AdamW"}
# Gradscape's names of each optimizer's state arrays -> torch's per-parameter state keys.
STATE_NAMES = {
    "SGD": {"momentum_buffer": "momentum_buffer"},
    "RMSProp": {"square_avg": "square_avg", "grad_avg": "grad_avg",
                "momentum_buffer": "momentum_buffer"},
    "Adam": {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
    "AdamW": {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class SetupError(Exception):
    """A problem with the settings, the data or a checkpoint, said in one sentence."""


class Diverged(SetupError):
    """The loss became NaN or infinite; the weights are still those before that step."""


# -- data ---------------------------------------------------------------------------------

def load_embedded_data(settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """The exact arrays Gradscape trained on (written at export time), float64."""
    name = settings["data"].get("file")
    if not name:
        raise SetupError("This export holds no data (the data file could not be read when it "
                         "was exported); pass the training CSV with --csv FILE.")
    with np.load(os.path.join(HERE, name), allow_pickle=False) as arrays:
        return np.asarray(arrays["x"], np.float64), np.asarray(arrays["y"], np.float64)


def _number(text: str, decimal_comma: bool) -> float | None:
    try:
        value = float(text)
    except ValueError:
        if not decimal_comma or text.count(",") != 1:
            return None
        try:
            value = float(text.replace(",", "."))
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def read_csv(path: str, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a CSV with the training file's columns, prepared with the stored preprocessing
    (column choice, standardisation with the training file's mean and std, class names)."""
    import csv

    data = settings["data"]
    pp = data.get("preprocessing") or {}
    if pp.get("source") != "csv":
        raise SetupError("--csv needs a graph trained on a CSV file; this one was trained on "
                         f"the generated data set '{data.get('name')}'.")
    delimiter = pp.get("delimiter", ",")
    decimal_comma = bool(pp.get("decimal_comma", False))
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [[c.strip() for c in r] for r in csv.reader(fh, delimiter=delimiter)
                if r and any(c.strip() for c in r)]
    if pp.get("header", True):
        if not rows:
            raise SetupError(f"{path} is empty.")
        header, rows = rows[0], rows[1:]
        missing = [c for c in pp["feature_names"] + pp["target_names"] if c not in header]
        if missing:
            raise SetupError(f"{path} has no column named '{missing[0]}'; it needs the columns "
                             "of the training file.")
        f_idx = [header.index(c) for c in pp["feature_names"]]
        t_idx = [header.index(c) for c in pp["target_names"]]
    else:
        f_idx, t_idx = list(pp["feature_indices"]), list(pp["target_indices"])
    names = pp["feature_names"] + pp["target_names"]
    classes = list(data.get("class_names") or [])
    x = np.empty((len(rows), len(f_idx)))
    y = np.empty((len(rows), len(t_idx)))
    first = 2 if pp.get("header", True) else 1
    for i, row in enumerate(rows):
        for k, j in enumerate(f_idx + t_idx):
            cell = row[j] if j < len(row) else ""
            if k >= len(f_idx) and data["task"] == "classification":
                value = _class_index(cell, classes)
            else:
                value = _number(cell, decimal_comma)
            if value is None:
                raise SetupError(f"Line {first + i}, column '{names[k]}' of {path} holds "
                                 f"'{cell[:40]}', which is not a number (or not a known class).")
            (x if k < len(f_idx) else y)[i, k if k < len(f_idx) else k - len(f_idx)] = value
    if pp.get("standardize"):
        x = (x - np.asarray(pp["mean"])) / np.asarray(pp["std"])
    if "scale" in pp:
        x = x * float(pp["scale"])
    if pp.get("input_shape"):
        x = x.reshape((len(x), *[int(d) for d in pp["input_shape"]]))
    return x, y


def _class_index(cell: str, classes: list[str]) -> float | None:
    if cell in classes:
        return float(classes.index(cell))
    value = _number(cell, False)
    for k, name in enumerate(classes):
        if value is not None and _number(name, False) == value:
            return float(k)
    return None


def split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows): Gradscape's Dataset.split, draw for draw."""
    if not fraction:
        return np.arange(n), np.arange(0)
    n_val = min(max(round(n * fraction), 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_val:], perm[:n_val]


class EngineOrder:
    """The order in which Gradscape visits the samples: one numpy generator seeded with the
    training seed draws a permutation per epoch, cut into batches of `batch_size`.

    With several processes every one draws the same global batches and takes its share, so
    a run on N processes steps through the same batches as a run on one.
    """

    def __init__(self, n: int, batch_size: int | None, seed: int):
        self.n = n
        self.size = n if not batch_size or batch_size >= n else int(batch_size)
        self.rng = np.random.default_rng(seed)
        self.batches: list[np.ndarray] = []
        self.pos = 0

    def epoch_over(self) -> bool:
        return self.pos >= len(self.batches)

    def start_epoch(self) -> None:
        order = self.rng.permutation(self.n)
        self.batches = [order[s:s + self.size] for s in range(0, self.n, self.size)]
        self.pos = 0

    def next_batch(self) -> np.ndarray:
        if self.epoch_over():
            self.start_epoch()
        self.pos += 1
        return self.batches[self.pos - 1]

    def steps_per_epoch(self) -> int:
        return -(-self.n // self.size)

    def my_share(self, batch: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, float]:
        """This process's rows of a global batch and their fraction of it."""
        if world == 1:
            return batch, 1.0
        mine = np.array_split(batch, world)[rank]
        return mine, len(mine) / len(batch)

    def engine_batches(self) -> tuple[list[np.ndarray], int]:
        """The current epoch's batches and position, as Gradscape resumes them."""
        return self.batches, self.pos

    def state(self) -> dict | None:
        return None

    def load_state(self, state: dict) -> None:
        pass


class TorchOrder(EngineOrder):
    """torch's DistributedSampler instead of Gradscape's order (--sampler torch): each process
    shuffles with torch's generator (seed + epoch) and takes every N-th sample, padded so all
    get the same number; each process's batch is the global batch size / N. The usual
    PyTorch recipe, but the samples and batches differ from a Gradscape run."""

    def __init__(self, n: int, batch_size: int | None, seed: int, rank: int, world: int):
        from torch.utils.data.distributed import DistributedSampler

        super().__init__(n, batch_size, seed)
        self.sampler = DistributedSampler(range(n), num_replicas=world, rank=rank,
                                          shuffle=True, seed=seed)
        self.local = -(-self.size // world)
        self.epoch = 0
        self.mine: list[np.ndarray] = []

    def steps_per_epoch(self) -> int:
        return -(-len(self.sampler) // self.local)

    def epoch_over(self) -> bool:
        return self.pos >= len(self.mine)

    def start_epoch(self, skip: int = 0) -> None:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        order = np.fromiter(iter(self.sampler), dtype=np.int64)
        self.mine = [order[s:s + self.local] for s in range(0, len(order), self.local)]
        self.pos = skip

    def next_batch(self) -> np.ndarray:
        if self.epoch_over():
            self.start_epoch()
        self.pos += 1
        return self.mine[self.pos - 1]

    def my_share(self, batch: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, float]:
        return batch, 1.0 / world  # every process holds the same number of rows

    def engine_batches(self) -> tuple[list[np.ndarray], int]:
        return [], 0  # Gradscape starts its own next epoch

    def state(self) -> dict | None:
        return {"epoch": self.epoch, "epoch_step": self.pos}

    def load_state(self, state: dict) -> None:
        self.epoch = int(state.get("epoch", 0))
        if state.get("epoch_step"):
            self.epoch -= 1
            self.start_epoch(skip=int(state["epoch_step"]))


# -- optimizer and schedule ---------------------------------------------------------------

def make_optimizer(opt: dict, params: list[torch.nn.Parameter], lr: float):
    """The torch.optim optimizer equal to Gradscape's (same update rule, same numbers)."""
    h = opt["hyper"]
    cls = opt["class"]
    if cls == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=h["momentum"], dampening=h["dampening"],
                               nesterov=h["nesterov"], weight_decay=h["weight_decay"])
    if cls == "RMSProp":
        return torch.optim.RMSprop(params, lr=lr, alpha=h["alpha"], eps=h["eps"],
                                   weight_decay=h["weight_decay"], momentum=h["momentum"],
                                   centered=h["centered"])
    kind = torch.optim.Adam if cls == "Adam" else torch.optim.AdamW
    return kind(params, lr=lr, betas=(h["beta1"], h["beta2"]), eps=h["eps"],
                weight_decay=h["weight_decay"], amsgrad=h["amsgrad"])


def lr_at(cfg: dict, base_lr: float, epoch: int) -> float:
    """Gradscape's learning-rate schedules: a function of the epoch (counted from 0)."""
    p = cfg.get("schedule_params") or {}
    name = cfg.get("schedule", "constant")
    if name == "step":
        return base_lr * float(p.get("gamma", 0.1)) ** (epoch // int(p.get("step_size", 10)))
    if name == "exponential":
        return base_lr * float(p.get("gamma", 0.95)) ** epoch
    if name == "cosine":
        if epoch == 0:
            return base_lr
        t_max, eta_min = int(p.get("T_max", 50)), float(p.get("eta_min", 0.0))
        return eta_min + (base_lr - eta_min) * (1.0 + math.cos(math.pi * epoch / t_max)) / 2.0
    return base_lr


# -- loss and metrics ---------------------------------------------------------------------

def loss_term(spec: dict, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One loss node of the graph, as Gradscape computes it."""
    import torch.nn.functional as F

    op, red = spec["op"], spec["reduction"]
    if op == "MSELoss":
        return F.mse_loss(out, y, reduction=red)
    if op == "MAELoss":
        return F.l1_loss(out, y, reduction=red)
    if op == "HuberLoss":
        return F.huber_loss(out, y, reduction=red, delta=spec["delta"])
    if op == "BCELoss":
        if spec["from_logits"]:
            return F.binary_cross_entropy_with_logits(out, y, reduction=red)
        return F.binary_cross_entropy(out, y, reduction=red)
    if spec["index_target"]:
        return F.cross_entropy(out, y.reshape(-1).long(), reduction=red)
    return F.cross_entropy(out, y, reduction=red)


def as_tuple(outputs) -> tuple:
    return outputs if isinstance(outputs, tuple) else (outputs,)


def graph_loss(settings: dict, outputs, y: torch.Tensor, share: float = 1.0) -> torch.Tensor:
    """The sum of the graph's losses. `share` is this process's fraction of the global batch:
    mean losses are weighted by it so that adding the processes' losses gives the loss of
    the whole batch."""
    outputs = as_tuple(outputs)
    total = None
    for spec in settings["losses"]:
        term = loss_term(spec, outputs[spec["output"]], y)
        if share != 1.0 and spec["reduction"] == "mean":
            term = term * share
        total = term if total is None else total + term
    return total


def accuracy(rule: dict | None, pred: torch.Tensor, y: torch.Tensor) -> float | None:
    """Gradscape's accuracy: arg-max of several outputs, or one output against a threshold."""
    if rule is None:
        return None
    if pred.ndim == 2 and pred.shape[1] > 1:
        guess = pred.argmax(dim=1)
        truth = y.argmax(dim=1) if y.shape[1] > 1 else y[:, 0]
    else:
        guess = (pred.reshape(len(pred), -1)[:, 0] > rule["threshold"]).long()
        truth = y[:, 0]
    return float((guess == torch.round(truth)).double().mean())


# -- safetensors and the .gsmodel checkpoint ----------------------------------------------

_CODES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}
_NUMPY = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}


def safetensors_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    header, chunks, offset = {}, [], 0
    for name in sorted(arrays):
        arr = np.asarray(arrays[name])
        arr = arr.astype(arr.dtype.newbyteorder("<"))
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": _CODES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(body[begin:end], _NUMPY[info["dtype"]]).reshape(
            info["shape"]).copy()
    return out


def _clean(obj):
    """JSON-able: NaN and infinities become null, as in Gradscape's files."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _json(obj) -> bytes:
    return (json.dumps(_clean(obj), indent=1, ensure_ascii=False) + "\n").encode()


# -- the run ------------------------------------------------------------------------------

class Run:
    """Model, data, optimizer and counters of one training run (one process of it)."""

    def __init__(self, args: argparse.Namespace, settings: dict | None = None):
        if settings is None:
            with open(SETTINGS_FILE, encoding="utf-8") as fh:
                settings = json.load(fh)
        self.settings = settings
        cfg = dict(self.settings["config"])
        for key in ("epochs", "batch_size", "lr"):
            if getattr(args, key, None) is not None:
                cfg[key] = getattr(args, key)
        self.cfg = cfg
        self.args = args
        self.dtype = DTYPES[args.dtype or cfg["dtype"]]
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.device = torch.device(args.device or "cpu")
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)

        x, y = read_csv(args.csv, self.settings) if args.csv else \
            load_embedded_data(self.settings)
        train_idx, val_idx = split(len(x), float(cfg.get("validation_split") or 0.0),
                                   int(cfg["seed"]))
        self.x = torch.as_tensor(x[train_idx], dtype=self.dtype, device=self.device)
        self.y = torch.as_tensor(y[train_idx], dtype=self.dtype, device=self.device)
        self.x_val = torch.as_tensor(x[val_idx], dtype=self.dtype, device=self.device)
        self.y_val = torch.as_tensor(y[val_idx], dtype=self.dtype, device=self.device)
        if len(self.x) == 0:
            raise SetupError("The training set is empty.")

        torch.manual_seed(int(cfg["seed"]))  # Dropout masks (they differ from Gradscape's)
        self.model = GradscapeModel().to(self.dtype)
        load_weights(self.model, os.path.join(HERE, self.settings["weights"]))
        self.model.to(self.device)
        self.net = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            if self.device.type == "cuda":
                self.net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
                self.net = DistributedDataParallel(self.net, device_ids=[self.device.index])
            else:
                self.net = DistributedDataParallel(self.model)
        self.params = [self.model.get_parameter(p["torch"]) for p in self.settings["parameters"]]
        self.optimizer = make_optimizer(self.settings["optimizer"], self.params, cfg["lr"])
        size, seed = cfg.get("batch_size") or None, int(cfg["seed"])
        self.order = TorchOrder(len(self.x), size, seed, self.rank, self.world) \
            if getattr(args, "sampler", "gradscape") == "torch" \
            else EngineOrder(len(self.x), size, seed)
        self.step_count = 0
        self.epoch = 0
        self.epoch_losses: list[float] = []
        self.step_losses: list[float] = []
        self.history: list[dict] = []
        self.epoch_steps: list[int] = []
        self.lr = float(cfg["lr"])

    # -- stepping --------------------------------------------------------------------------
    def step(self) -> float:
        """One optimizer step on the next batch (every process its share); returns the loss."""
        batch, share = self.order.my_share(self.order.next_batch(), self.rank, self.world)
        if not len(batch):  # fewer samples than processes: take part with weight 0
            batch = self.order.batches[self.order.pos - 1][:1]
        self.model.train()
        if len(batch) == len(self.x):
            xb, yb = self.x, self.y  # Gradscape's full batch keeps the rows in order
        else:
            index = torch.as_tensor(batch, device=self.device)
            xb, yb = self.x[index], self.y[index]
        for p in self.params:
            p.grad = None
        loss = graph_loss(self.settings, self.net(xb), yb, share)
        if self.world > 1:
            # DistributedDataParallel averages the gradients; scale so the result is the
            # gradient of the whole batch's loss (sum losses count every process once).
            (loss * self.world).backward()
            value = loss.detach().to(torch.float64).reshape(1)
            torch.distributed.all_reduce(value)
            loss_value = float(value)
        else:
            loss.backward()
            loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise Diverged(f"Training diverged at step {self.step_count + 1}: the loss became "
                           "NaN or infinite. Try a lower learning rate or gradient clipping.")
        self._check_runaway(loss_value)
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        loss_value += self._regularize()
        self._clip()
        self.lr = lr_at(self.cfg, float(self.cfg["lr"]), self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        before = [q.detach().clone() for q in self.params]
        self.optimizer.step()
        self._check_weights(before)
        self.step_count += 1
        self.epoch_losses.append(loss_value)
        self.step_losses.append(loss_value)
        if self.order.epoch_over():
            self.finish_epoch()
        return loss_value

    # Gradscape's divergence rules (engine/training/trainer.py), so both stop at one step.
    RUNAWAY_RATIO, RUNAWAY_FLOOR, WEIGHT_LIMIT = 1e3, 0.1, 1e6

    def _check_runaway(self, loss: float) -> None:
        """Stop when the loss reaches 1,000 times its best so far (floored at a tenth of the
        first loss, so a loss bouncing near zero is not called a divergence)."""
        past = [v for v in self.step_losses if math.isfinite(v)]
        if not past or min(past) < 0 or past[0] < 0:
            return
        reference = max(min(past), self.RUNAWAY_FLOOR * past[0], 1e-8)
        if loss >= self.RUNAWAY_RATIO * reference:
            raise Diverged(f"Training diverged at step {self.step_count + 1}: the loss jumped "
                           f"to {loss:.3g}, more than 1,000 times its best so far "
                           f"({min(past):.3g}). Try a lower learning rate or gradient clipping.")

    def _check_weights(self, before: list) -> None:
        """Stop (and undo the step) when a weight leaves any sane range."""
        if getattr(self, "_weight_limit", None) is None:  # the largest target, once
            top = float(self.y.abs().max()) if self.y.numel() else 1.0
            self._weight_limit = self.WEIGHT_LIMIT * max(1.0, top)
        limit = self._weight_limit
        big = max((float(q.detach().abs().max()) for q in self.params if q.numel()),
                  default=0.0)
        if big <= limit and math.isfinite(big):
            return
        with torch.no_grad():
            for q, old in zip(self.params, before):
                q.copy_(old)
        raise Diverged(f"Training diverged at step {self.step_count + 1}: a weight reached "
                       f"{big:.3g}, beyond any sensible size ({limit:.0e}). The weights before "
                       "that step were kept. Try a lower learning rate or gradient clipping.")

    def _regularize(self) -> float:
        """Gradscape's L1/L2 penalty: l1·Σ|θ| + l2·Σθ², its gradient added to every weight."""
        l1, l2 = float(self.cfg.get("l1") or 0.0), float(self.cfg.get("l2") or 0.0)
        if not l1 and not l2:
            return 0.0
        penalty = 0.0
        with torch.no_grad():
            for p in self.params:
                if l2:
                    penalty += l2 * float((p * p).sum())
                    p.grad.add_(p, alpha=2.0 * l2)
                if l1:
                    penalty += l1 * float(p.abs().sum())
                    p.grad.add_(torch.sign(p), alpha=l1)
        return penalty

    def _clip(self) -> None:
        """Gradscape's clipping: scale all gradients so their joint 2-norm is at most c."""
        c = float(self.cfg.get("clip_norm") or 0.0)
        if not c:
            return
        with torch.no_grad():
            norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in self.params))
            coef = c / (norm + 1e-6)
            if math.isfinite(norm) and coef < 1.0:
                for p in self.params:
                    p.grad.mul_(coef)

    def finish_epoch(self) -> dict:
        self.epoch += 1
        report = {"epoch": self.epoch, "loss": float(np.mean(self.epoch_losses))}
        rule = self.settings.get("accuracy")
        if rule is not None:
            report["accuracy"] = self.evaluate(self.x, self.y)[1]
        if len(self.x_val):
            report["val_loss"], acc = self.evaluate(self.x_val, self.y_val)
            if acc is not None:
                report["val_accuracy"] = acc
        self.history.append(report)
        self.epoch_steps.append(self.step_count)
        self.epoch_losses = []
        return report

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
        """Loss and accuracy on a whole data set in evaluation mode (BatchNorm running stats,
        no Dropout), like Gradscape's epoch report."""
        self.model.eval()
        out = self.model(x)
        loss = float(graph_loss(self.settings, out, y))
        acc = accuracy(self.settings.get("accuracy"), as_tuple(out)[0], y)
        self.model.train()
        return loss, acc

    # -- checkpoints -------------------------------------------------------------------------
    def engine_state(self) -> dict[str, np.ndarray]:
        """Weights and buffers keyed like Gradscape's (node.name), in the training dtype."""
        state = self.model.state_dict()
        out = {}
        for entry in self.settings["parameters"] + self.settings["buffers"]:
            out[entry["engine"]] = state[entry["torch"]].detach().cpu().numpy()
        return out

    def optimizer_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Gradscape's optimizer.json and its flat state arrays, aligned with the weights."""
        opt = self.settings["optimizer"]
        names = STATE_NAMES[opt["class"]]
        arrays = {}
        step = 0
        has_buffer = False
        for ours, theirs in names.items():
            parts = []
            for p in self.params:
                state = self.optimizer.state.get(p, {})
                value = state.get(theirs)
                if value is None:
                    parts.append(np.zeros(p.numel(), dtype=self._np_dtype()))
                else:
                    has_buffer = has_buffer or theirs == "momentum_buffer"
                    parts.append(value.detach().cpu().numpy().reshape(-1))
                if "step" in state:
                    step = int(float(state["step"]))
            arrays[ours] = np.concatenate(parts) if parts else np.zeros(0, self._np_dtype())
        if opt["class"] == "SGD":
            step = self.step_count
        meta = {"optimizer": opt["name"], "class": opt["class"], "lr": self.lr, "step": step,
                "hyper": opt["hyper"]}
        if opt["class"] == "SGD":
            meta["has_momentum_buffer"] = has_buffer
        return meta, arrays

    def _np_dtype(self):
        return np.float64 if self.dtype == torch.float64 else np.float32

    def save(self, path: str) -> None:
        """Write a Gradscape model file: File → Open in Gradscape shows the weights, the loss
        history and the counters, and continues training from here; so does --resume."""
        s = self.settings
        cfg = dict(self.cfg, dtype="float64" if self.dtype == torch.float64 else "float32")
        opt_meta, opt_arrays = self.optimizer_state()
        batches, pos = self.order.engine_batches()
        trainer = {"step": self.step_count, "epoch": self.epoch,
                   "rng": self.order.rng.bit_generator.state, "batch_pos": pos,
                   "kernel_rngs": {}, "config": cfg}
        metrics = {"history": self.history, "num_parameters": sum(p.numel() for p in self.params),
                   "steps": self.step_count, "epochs": self.epoch,
                   "designer_epoch_steps": self.epoch_steps,
                   "trained_with": f"PyTorch {torch.__version__}, {self.world} process"
                                   f"{'es' if self.world > 1 else ''} on {self.device.type}"}
        if self.history:
            metrics["final"] = self.history[-1]
        if self.order.state() is not None:
            metrics["torch_sampler"] = self.order.state()
        members = {
            "manifest.json": _json({"format": "gradscape-model", "version": 1,
                                    "dtype": cfg["dtype"], "seed": int(s["seed"]),
                                    "gradscape_version": s["gradscape_version"],
                                    "training_state": True}),
            "graph.json": _json(s["graph"]),
            "weights.safetensors": safetensors_bytes(self.engine_state()),
            "optimizer.json": _json(opt_meta),
            "optimizer.safetensors": safetensors_bytes(opt_arrays),
            "trainer.json": _json(trainer),
            "trainer.safetensors": safetensors_bytes({
                "batches": (np.concatenate(batches) if batches else np.zeros(0)).astype(np.int64),
                "batch_sizes": np.asarray([len(b) for b in batches], dtype=np.int64),
                "epoch_losses": np.asarray(self.epoch_losses, dtype=np.float64),
                "step_losses": np.asarray(self.step_losses, dtype=np.float64)}),
            "preprocessing.json": _json(s["data"]["info"]),
            "metrics.json": _json(metrics),
        }
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
                info.compress_type = (zipfile.ZIP_STORED if name.endswith(".safetensors")
                                      else zipfile.ZIP_DEFLATED)
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def resume(self, path: str) -> None:
        """Continue from a checkpoint of this script, or from a .gsmodel saved by Gradscape."""
        with zipfile.ZipFile(path) as zf:
            def member(name: str) -> bytes:
                try:
                    return zf.read(name)
                except KeyError:
                    raise SetupError(f"{path} holds no training state ({name} is missing); "
                                     "save it from Gradscape with Train → Save Trained "
                                     "Model.") from None
            weights = read_safetensors(member("weights.safetensors"))
            opt_meta = json.loads(member("optimizer.json"))
            opt_arrays = read_safetensors(member("optimizer.safetensors"))
            trainer = json.loads(member("trainer.json"))
            arrays = read_safetensors(member("trainer.safetensors"))
            metrics = json.loads(member("metrics.json")) if "metrics.json" in zf.namelist() \
                else {}
        if opt_meta.get("class") != self.settings["optimizer"]["class"]:
            raise SetupError(f"{path} was trained with {opt_meta.get('class')}, this export "
                             f"with {self.settings['optimizer']['class']}.")
        state = self.model.state_dict()
        with torch.no_grad():
            for entry in self.settings["parameters"] + self.settings["buffers"]:
                if entry["engine"] not in weights:
                    raise SetupError(f"{path} lacks the weight {entry['engine']!r}; it belongs "
                                     "to another graph.")
                state[entry["torch"]].copy_(torch.as_tensor(weights[entry["engine"]]))
        self._load_optimizer(opt_meta, opt_arrays)
        sizes = arrays["batch_sizes"]
        flat = arrays["batches"]
        if len(flat) and int(flat.max()) >= len(self.x):
            raise SetupError(f"{path} was trained on more rows than the {len(self.x)} given; "
                             "pass the same data (--csv) to resume.")
        self.order.batches = np.split(flat, np.cumsum(sizes)[:-1]) if len(sizes) else []
        self.order.pos = int(trainer["batch_pos"])
        self.order.rng.bit_generator.state = trainer["rng"]
        self.step_count, self.epoch = int(trainer["step"]), int(trainer["epoch"])
        self.epoch_losses = arrays["epoch_losses"].tolist()
        self.step_losses = arrays["step_losses"].tolist()
        self.order.load_state(metrics.get("torch_sampler") or {})
        self.history = list(metrics.get("history", []))
        steps = metrics.get("designer_epoch_steps")
        self.epoch_steps = list(steps) if isinstance(steps, list) and \
            len(steps) == len(self.history) else []

    def _load_optimizer(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        cls = self.settings["optimizer"]["class"]
        step = int(meta.get("step", 0))
        offset = 0
        for p in self.params:
            n = p.numel()
            state = {}
            for ours, theirs in STATE_NAMES[cls].items():
                if ours not in arrays:
                    continue
                value = torch.as_tensor(arrays[ours][offset:offset + n]).reshape(p.shape)
                state[theirs] = value.to(self.device, self.dtype).clone()
            if cls == "SGD":
                used = self.settings["optimizer"]["hyper"]["momentum"] and \
                    meta.get("has_momentum_buffer", step > 0)
                state = {"momentum_buffer": state["momentum_buffer"] if used else None}
            else:
                if cls != "RMSProp" and not self.settings["optimizer"]["hyper"]["amsgrad"]:
                    state.pop("max_exp_avg_sq", None)
                state["step"] = torch.tensor(float(step), dtype=torch.float32)
            if step > 0:
                self.optimizer.state[p] = state
            offset += n


# -- command line -------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the Gradscape graph with PyTorch (one "
                                "process, a GPU, or torchrun with DistributedDataParallel).")
    p.add_argument("--device", help="cpu (default), cuda, cuda:1, mps …")
    p.add_argument("--epochs", type=int, help="total epochs to reach (default: the graph's)")
    p.add_argument("--steps", type=int, help="stop after this many optimizer steps in all")
    p.add_argument("--batch-size", type=int, dest="batch_size",
                   help="global batch size, shared by all processes (0 = full batch)")
    p.add_argument("--lr", type=float, help="base learning rate (default: the graph's)")
    p.add_argument("--dtype", choices=("float32", "float64"), help="default: the graph's")
    p.add_argument("--csv", metavar="FILE", help="train on this CSV (the training file's "
                   "columns) instead of the data embedded in the export")
    p.add_argument("--out", default="trained.gsmodel", metavar="MODEL",
                   help="checkpoint to write, a Gradscape model file (default trained.gsmodel)")
    p.add_argument("--resume", metavar="MODEL", help="continue from a checkpoint (of this "
                   "script, or a .gsmodel saved by Gradscape)")
    p.add_argument("--save-every", type=int, default=1, metavar="EPOCHS",
                   help="write the checkpoint every N epochs (default 1) and at the end")
    p.add_argument("--sampler", choices=("gradscape", "torch"), default="gradscape",
                   help="gradscape (default): Gradscape's sample order, every process a share "
                   "of each global batch; torch: torch's DistributedSampler")
    p.add_argument("--json", action="store_true", help="one JSON object per epoch on stdout")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1:
        import torch.distributed as dist

        cuda = (args.device or "cpu").startswith("cuda")
        dist.init_process_group("nccl" if cuda else "gloo")
    try:
        return _train(args)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot access {exc.filename or 'a file'}: {exc.strerror or exc}.",
              file=sys.stderr)
        return 2
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        if not args.resume:
            raise
        print(f"error: {args.resume} is not a checkpoint this script can read "
              f"({type(exc).__name__}: {exc}).", file=sys.stderr)
        return 2
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


def _train(args: argparse.Namespace) -> int:
    run = Run(args)
    if args.resume:
        run.resume(args.resume)
    lead = run.rank == 0
    epochs = int(run.cfg["epochs"])
    if lead:
        print(f"{run.settings['title']}: {len(run.x)} training rows, "
              f"{run.order.steps_per_epoch()} steps per epoch, {run.world} process"
              f"{'es' if run.world > 1 else ''} on {run.device}", file=sys.stderr)
    start = time.perf_counter()
    while run.epoch < epochs and (args.steps is None or run.step_count < args.steps):
        done_before = run.epoch
        try:
            run.step()
        except Diverged:
            if lead:  # keep the last good weights, as Gradscape does
                run.save(args.out)
                print(f"saved the weights before that step to {args.out}", file=sys.stderr)
            raise
        if run.epoch > done_before and lead:
            report = run.history[-1]
            if args.json:
                print(json.dumps(_clean(report)), flush=True)
            else:
                extra = "".join(f"  {k} {v:.4g}" for k, v in report.items()
                                if k not in ("epoch", "loss") and v is not None)
                print(f"epoch {report['epoch']}/{epochs}  loss {report['loss']:.4g}{extra}",
                      file=sys.stderr, flush=True)
            if args.save_every and run.epoch % args.save_every == 0:
                run.save(args.out)
    if lead:
        run.save(args.out)
        print(f"{run.step_count} steps, epoch {run.epoch}, {time.perf_counter() - start:.1f} s; "
              f"saved {args.out} (open it in Gradscape to inspect and continue)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
