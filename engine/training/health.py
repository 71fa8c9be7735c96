"""Has a run stopped learning? Plain sentences from numbers a run already has.

`chance_loss` is the loss of the best *constant* guess (predicting the class frequencies, or
the mean of the targets): a network whose loss sits there has learned nothing about its
inputs. `diagnose_run` compares the recent losses with it, looks at the dead fraction of the
ReLUs and says what it sees, in sentences a learner understands. Pure NumPy, no Qt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

STUCK_WINDOW = 50  # steps compared at the end of a run
STUCK_CHANGE = 0.05  # less relative change than this over the window counts as no progress
CHANCE_MARGIN = 0.05  # within 5 % of the chance loss counts as "at chance level"
DEAD_FRACTION = 0.9  # a ReLU with more than this fraction of zero outputs is mostly dead


def chance_loss(loss_op: str, y: np.ndarray, reduction: str = "mean",
                n_outputs: int | None = None) -> float | None:
    """The loss of the best constant prediction for targets `y`, or None when not known.

    MSE: the targets' variance; MAE: mean distance to the median; BCE: the entropy of the
    mean target; cross-entropy: the entropy of the class frequencies (class indices or
    one-hot rows). Only for reduction "mean" (a sum grows with the batch).
    """
    y = np.asarray(y, dtype=np.float64)
    if reduction != "mean" or y.size == 0:
        return None
    if loss_op == "MSELoss":
        return float(np.mean(np.var(y, axis=0)))
    if loss_op == "MAELoss":
        return float(np.mean(np.abs(y - np.median(y, axis=0))))
    if loss_op == "BCELoss":
        p = np.clip(np.mean(y, axis=0), 1e-12, 1 - 1e-12)
        return float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
    if loss_op == "CrossEntropyLoss":
        if _one_hot(y):
            freq = y.mean(axis=0)
        else:
            classes = y.reshape(-1).astype(np.int64)
            freq = np.bincount(classes, minlength=n_outputs or 0) / len(classes)
        freq = freq[freq > 0]
        return float(-(freq * np.log(freq)).sum())
    return None


def _one_hot(y: np.ndarray) -> bool:
    """Rows of 0s with a single 1 (one-hot classes), not rows of class indices (a sequence
    of next characters is (samples, T) indices)."""
    return bool(y.ndim == 2 and y.shape[1] > 1 and np.all((y == 0) | (y == 1))
                and np.all(y.sum(axis=1) == 1))


def diagnose_run(losses: Sequence[float], chance: float | None = None,
                 dead_relus: Mapping[str, float] | None = None,
                 accuracy: float | None = None, chance_accuracy: float | None = None,
                 lr: float | None = None) -> list[str]:
    """Sentences about a run that stopped learning; an empty list when nothing is wrong.

    Args:
        losses: the step losses so far, oldest first.
        chance: the loss of the best constant guess (see `chance_loss`).
        dead_relus: ReLU node id → fraction of its outputs that are zero.
        accuracy, chance_accuracy: the last accuracy and what always guessing the most
            common class scores.
        lr: the learning rate, named in the advice.
    """
    out: list[str] = []
    recent = np.asarray(list(losses)[-STUCK_WINDOW:], dtype=np.float64)
    stuck = False
    if len(recent) >= STUCK_WINDOW and np.isfinite(recent).all():
        # means of the first and last 40 % of the window: batch-to-batch noise averages out
        part = STUCK_WINDOW * 2 // 5
        first, last = float(recent[:part].mean()), float(recent[-part:].mean())
        stuck = abs(first - last) <= STUCK_CHANGE * max(abs(first), 1e-12)
        at_chance = chance is not None and chance > 0 and \
            abs(last - chance) <= CHANCE_MARGIN * chance
        if stuck and at_chance:
            out.append(f"The loss has stayed around {last:.4g} for the last {STUCK_WINDOW} steps, "
                       f"which is chance level ({chance:.4g} is what a constant guess scores): "
                       "the network has stopped learning anything about its inputs.")
        elif stuck and at_chance is False and chance is not None and last > chance:
            out.append(f"The loss has stayed around {last:.4g} for the last {STUCK_WINDOW} steps, "
                       f"worse than the best constant guess ({chance:.4g}): the network is "
                       "stuck.")
    if accuracy is not None and chance_accuracy is not None and stuck \
            and accuracy <= chance_accuracy + 0.02:
        out.append(f"Accuracy {accuracy:.0%} is no better than always answering the most "
                   f"common class ({chance_accuracy:.0%}).")
    dead = {k: v for k, v in (dead_relus or {}).items() if v > DEAD_FRACTION}
    if dead:
        names = ", ".join(f"{k} ({v:.0%} zero)" for k, v in sorted(dead.items()))
        rate = f" (now {lr:g})" if lr is not None and math.isfinite(lr) else ""
        out.append(f"Most ReLU units are dead: {names}. A dead unit outputs 0 for every "
                   "input, so no gradient flows back through it and it never recovers. "
                   f"Lower the learning rate{rate}, or use LeakyReLU, then Reset weights.")
    return out


def chance_accuracy(y: np.ndarray) -> float | None:
    """What always answering the most common class scores (class indices or one-hot)."""
    y = np.asarray(y)
    if y.size == 0:
        return None
    if _one_hot(y):
        classes = y.argmax(axis=1)
    else:
        flat = y.reshape(-1)
        if not np.all(flat == np.round(flat)):
            return None
        classes = flat.astype(np.int64) - int(flat.min())
    return float(np.bincount(classes).max() / len(classes))


def dead_relu_fractions(program) -> dict[str, float]:
    """ReLU node id → fraction of its outputs that are exactly zero in the last forward."""
    out = {}
    for i, op_id in enumerate(program.op_ids):
        value = program.values[i] if i < len(program.values) else None
        if op_id == "ReLU" and value is not None and np.size(value):
            out[program.order[i]] = float(np.mean(np.asarray(value) == 0))
    return out


def diagnose_trainer(program, trainer, accuracy: float | None = None) -> list[str]:
    """`diagnose_run` for a Trainer after some steps (the command line's `train`)."""
    loss_nodes = list(program.loss_nodes)
    chance = chance_acc = None
    if len(loss_nodes) == 1:
        i = loss_nodes[0]
        op_id = program.op_ids[i]
        reduction = program.params[program.order[i]].get("reduction", "mean")
        chance = chance_loss(op_id, trainer.y, reduction)
        if op_id in ("CrossEntropyLoss", "BCELoss"):
            chance_acc = chance_accuracy(trainer.y)
    return diagnose_run(trainer.step_losses, chance, dead_relu_fractions(program), accuracy,
                        chance_acc, float(trainer.optimizer.lr))
