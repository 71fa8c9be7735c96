"""Loss landscapes: the loss on a 2-D plane through weight space, and paths projected on it.

The plane is θ(α, β) = center + α·d₁ + β·d₂. The directions are either two single
numbers of the network (each a unit vector, so α and β are plain offsets of those
parameters) or two random directions, filter-normalised as in Li et al. 2018,
"Visualizing the Loss Landscape of Neural Nets":

* every tensor with 2 or more axes (Dense weight, Conv2D filters, …) is split into
  filters along its first axis (one output neuron / one convolution filter); each
  filter of the random direction is rescaled to the norm of the same filter of the
  weights, so α = 1 moves every filter by its own size;
* tensors with 0 or 1 axes (biases, BatchNorm γ/β, scalar Parameters) are set to zero
  (``bias_mode="zero"``, as the paper does) or, with ``bias_mode="normalise"``, scaled
  as one filter each. If zeroing would leave a direction with no non-zero entry at all
  (a graph made only of scalar Parameters) those tensors are normalised instead.

Losses are evaluated in evaluation mode on a private copy of the program, so the
program's weights, values, gradients and mode are never touched (training may keep
using it); the copy starts from the program's weights and buffers. Evaluation runs row
by row (`LandscapeScan.rows()`), so a worker thread can report progress and stop early.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from engine.core.compiler import compile_graph
from engine.core.program import Program
from engine.errors import GradscapeError

ParamRef = tuple[str, int]  # (ParamEntry key such as "a.value" or "h1.weight", flat index)
BIAS_MODES = ("zero", "normalise")


class LandscapeError(GradscapeError):
    """The landscape cannot be computed with these settings."""


@dataclass
class Landscape:
    """Losses on a grid of the plane center + α·d₁ + β·d₂.

    ``losses[i, j]`` is the loss at (alphas[j], betas[i]); rows not computed yet (or
    skipped by cancelling) hold NaN. ``center`` is the weight vector at α = β = 0 and
    ``center_loss`` its loss.
    """

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    center_loss: float
    center: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    labels: tuple[str, str]
    rows_done: int = 0
    cancelled: bool = False

    @property
    def complete(self) -> bool:
        return self.rows_done == len(self.betas)

    def project(self, path_thetas: np.ndarray | Sequence[np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
        """(alphas, betas) of weight vectors on this plane (least squares); see `project`."""
        return project(path_thetas, self.center, self.d1, self.d2)


def project(path_thetas: np.ndarray | Sequence[np.ndarray], center: np.ndarray,
            d1: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (α, β) minimising ‖θ − center − α·d₁ − β·d₂‖ for every θ.

    `path_thetas` is one flat weight vector or a sequence of them (e.g. snapshots of an
    optimizer's path). Solved through the 2×2 normal equations in float64, one vector
    at a time, so long paths of large networks need no big matrix. The center maps to
    exactly (0, 0).
    """
    thetas = np.asarray(path_thetas, dtype=np.float64)
    if thetas.ndim == 1:
        thetas = thetas[None, :]
    c = np.asarray(center, dtype=np.float64)
    d = np.stack([np.asarray(d1, dtype=np.float64), np.asarray(d2, dtype=np.float64)])
    if thetas.shape[1:] != c.shape:
        raise LandscapeError(f"The path has {thetas.shape[1]} numbers per point but the "
                             f"network has {c.size}.")
    gram = d @ d.T
    rhs = np.stack([d @ (t - c) for t in thetas], axis=1) if len(thetas) else np.zeros((2, 0))
    coords = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return coords[0], coords[1]


def random_directions(program: Program, seed: int = 0, bias_mode: str = "zero",
                      center: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two seeded, filter-normalised random directions (flat, the program's dtype)."""
    if bias_mode not in BIAS_MODES:
        raise LandscapeError(f"bias_mode must be one of {', '.join(BIAS_MODES)}, "
                             f"not {bias_mode!r}.")
    w = np.asarray(program.theta if center is None else center, dtype=np.float64)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        d = program.from_row_major(rng.standard_normal(w.size))  # each tensor row by row
        scaled = _filter_normalise(program, d, w, bias_mode)
        if bias_mode == "zero" and not np.any(scaled):
            scaled = _filter_normalise(program, d, w, "normalise")
        out.append(scaled.astype(program.dtype))
    return out[0], out[1]


def _filter_normalise(program: Program, d: np.ndarray, w: np.ndarray,
                      bias_mode: str) -> np.ndarray:
    out = np.zeros_like(d)
    for e in program.entries:
        if len(e.shape) >= 2:
            rows = e.shape[0]
            dd, ww = e.view(d).reshape(rows, -1), e.view(w).reshape(rows, -1)
        elif bias_mode == "normalise":
            dd, ww = e.view(d).reshape(1, -1), e.view(w).reshape(1, -1)
        else:
            continue
        dn = np.linalg.norm(dd, axis=1, keepdims=True)
        wn = np.linalg.norm(ww, axis=1, keepdims=True)
        e.view(out)[...] = (dd * (wn / (dn + 1e-10))).reshape(e.shape)
    return out


def parameter_direction(program: Program, ref: ParamRef) -> np.ndarray:
    """Unit vector of one number of a learnable tensor: ("c.value", 0), ("h1.weight", 3)."""
    key, index = ref
    for e in program.entries:
        if e.key == key:
            if not 0 <= int(index) < e.size:
                raise LandscapeError(f"'{key}' has {e.size} numbers; index {index} is outside.")
            d = np.zeros(program.theta.size, dtype=program.dtype)
            d[e.position(int(index))] = 1.0
            return d
    keys = ", ".join(e.key for e in program.entries)
    raise LandscapeError(f"There is no learnable tensor '{key}'; the network has: {keys}.")


def clone_program(program: Program) -> Program:
    """A fresh compile of the same graph holding a copy of the weights and buffers."""
    clone = compile_graph(program.spec, dtype=program.dtype, seed=program.seed,
                          require_loss=False)
    clone.load_state_dict(program.state_dict())
    return clone


def descent_step(program: Program, x: np.ndarray, y: np.ndarray, theta: np.ndarray,
                 lr: float) -> np.ndarray:
    """θ − α·∇L(θ), with the gradient of the loss on all of (x, y) in evaluation mode.

    `program` is used as scratch (a private copy, e.g. from `clone_program`): its weights
    are set to `theta` and its trace overwritten. The landscape view draws the −α∇L arrow
    from θ to this point.
    """
    program.set_training(False)
    np.copyto(program.theta, np.asarray(theta, dtype=program.dtype))
    program.forward(np.asarray(x, dtype=program.dtype), np.asarray(y, dtype=program.dtype))
    program.backward()
    return program.theta - float(lr) * program.grad


class LandscapeScan:
    """A landscape computed row by row.

    Args:
        program: the compiled graph (only read: a private copy is evaluated).
        x, y: the data to evaluate the loss on (e.g. the training set or one batch).
        directions: "random", or two ParamRefs such as (("a.value", 0), ("c.value", 0)),
            or two explicit flat direction vectors.
        center: the weight vector at α = β = 0 (default: the program's current theta).
        span: α and β run over [−span, span].
        resolution: grid points per axis (an odd number puts a point on the center).
        seed, bias_mode: for random directions (see the module docstring).
    """

    def __init__(self, program: Program, x: np.ndarray, y: np.ndarray,
                 directions: str | Sequence[ParamRef] | Sequence[np.ndarray] = "random",
                 center: np.ndarray | None = None, span: float = 1.0,
                 resolution: int = 41, seed: int = 0, bias_mode: str = "zero"):
        if not program.loss_nodes:
            raise LandscapeError("The graph has no loss node, so there is no landscape.")
        if not (isinstance(resolution, int) and resolution >= 2):
            raise LandscapeError(f"The resolution must be a whole number ≥ 2, not {resolution!r}.")
        if not (span > 0 and np.isfinite(span)):
            raise LandscapeError(f"The span must be a positive number, not {span!r}.")
        dtype = program.dtype
        c = np.array(program.theta if center is None else center, dtype=dtype)
        if c.shape != program.theta.shape:
            raise LandscapeError(f"The center has {c.size} numbers but the network has "
                                 f"{program.theta.size}.")
        d1, d2, labels = self._directions(program, directions, c, seed, bias_mode)
        grid = np.linspace(-1.0, 1.0, resolution) * float(span)
        if resolution % 2:
            grid[resolution // 2] = 0.0
        self._program = clone_program(program)
        self._program.set_training(False)
        self._x = np.asarray(x, dtype=dtype)
        self._y = np.asarray(y, dtype=dtype)
        self._tmp = np.zeros_like(c)
        self.landscape = Landscape(grid.copy(), grid.copy(),
                                   np.full((resolution, resolution), np.nan), float("nan"),
                                   c, d1, d2, labels)
        self.landscape.center_loss = self._loss_at(0.0, 0.0)

    @staticmethod
    def _directions(program: Program,
                    directions: str | Sequence[ParamRef] | Sequence[np.ndarray],
                    center: np.ndarray, seed: int,
                    bias_mode: str) -> tuple[np.ndarray, np.ndarray, tuple[str, str]]:
        if isinstance(directions, str):
            if directions != "random":
                raise LandscapeError(f"directions must be 'random' or two parameters, "
                                     f"not {directions!r}.")
            d1, d2 = random_directions(program, seed, bias_mode, center)
            return d1, d2, ("random direction 1", "random direction 2")
        if len(directions) != 2:
            raise LandscapeError("A landscape needs exactly two directions.")
        out, labels = [], []
        for k, d in enumerate(directions):
            if isinstance(d, np.ndarray):
                if d.shape != program.theta.shape:
                    raise LandscapeError(f"Direction {k + 1} has {d.size} numbers but the "
                                         f"network has {program.theta.size}.")
                out.append(d.astype(program.dtype))
                labels.append(f"direction {k + 1}")
            else:
                out.append(parameter_direction(program, d))
                labels.append(f"{d[0]}[{int(d[1])}]")
        return out[0], out[1], (labels[0], labels[1])

    def _loss_at(self, alpha: float, beta: float) -> float:
        p, c, tmp, ls = self._program, self.landscape.center, self._tmp, self.landscape
        with np.errstate(all="ignore"):
            np.multiply(ls.d1, alpha, out=tmp)
            np.add(c, tmp, out=p.theta)
            np.multiply(ls.d2, beta, out=tmp)
            p.theta += tmp
            return p.forward(self._x, self._y)

    def rows(self) -> Iterator[int]:
        """Compute the remaining rows one at a time, yielding each finished row's index."""
        ls = self.landscape
        while ls.rows_done < len(ls.betas):
            i = ls.rows_done
            b = float(ls.betas[i])
            ls.losses[i] = [self._loss_at(float(a), b) for a in ls.alphas]
            ls.rows_done += 1
            yield i

    def run(self, should_continue: Callable[[int, int], bool] | None = None) -> Landscape:
        """Compute every row; `should_continue(rows_done, rows_total)` returning False
        stops early (the result then has ``cancelled=True`` and NaN rows)."""
        ls = self.landscape
        for _ in self.rows():
            if should_continue is not None and not should_continue(ls.rows_done,
                                                                   len(ls.betas)):
                ls.cancelled = not ls.complete
                break
        return ls


def loss_landscape(program: Program, x: np.ndarray, y: np.ndarray,
                   directions: str | Sequence[ParamRef] | Sequence[np.ndarray] = "random",
                   center: np.ndarray | None = None, span: float = 1.0,
                   resolution: int = 41, seed: int = 0, bias_mode: str = "zero",
                   should_continue: Callable[[int, int], bool] | None = None) -> Landscape:
    """The loss on a resolution × resolution grid of a plane through weight space.

    See `LandscapeScan` for the arguments; the program itself is never modified.
    """
    scan = LandscapeScan(program, x, y, directions, center, span, resolution, seed, bias_mode)
    return scan.run(should_continue)
