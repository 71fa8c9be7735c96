"""The training loop as a lesson: its stages, and where the initial weights come from.

`STAGES` names the cycle input → initialised weights → activations → loss → backward →
optimizer → repeat, each with a one-line explanation; `stage_of(phase)` maps a backprop
stepper phase (see `designer.lab.backprop_stepper`) to the stage to highlight.
`initial_weights(spec, seed)` compiles a fresh copy of the graph to get the weights training
started from (initialisation is seeded per node, so this equals the real start) together
with the distribution each layer drew from (`engine.ops.layers.describe_init`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec
from engine.ops.layers import describe_init

STAGES = (
    ("input", "Input", "a batch of examples x (and their targets y)"),
    ("weights", "Weights θ", "initialised once at random, then changed by every update"),
    ("forward", "Activations", "forward pass: each layer computes its output from x and θ"),
    ("loss", "Loss L", "one number: how wrong the predictions are on this batch"),
    ("backward", "Backward", "∂L/∂θ by the chain rule, from the loss back to every weight"),
    ("update", "Optimizer", "θ ← θ − α·∂L/∂θ: a small step downhill, then repeat"),
)

_PHASE_STAGES = {
    "idle": ("input", "weights"),
    "forward": ("forward",),
    "forward_done": ("forward", "loss"),
    "backward": ("backward",),
    "backward_done": ("backward",),
    "updating": ("update",),
    "updated": ("update",),
}


def stage_of(phase: str) -> tuple[str, ...]:
    """The stage keys to highlight for a stepper phase ("idle", "forward", …)."""
    return _PHASE_STAGES.get(phase, ())


@dataclass(frozen=True)
class InitialWeights:
    """One layer's starting weights and the distribution they were drawn from."""

    node: str
    init: str
    description: str
    values: np.ndarray  # flat copy


def initial_weights(spec: GraphSpec, seed: int, max_numbers: int = 100_000
                    ) -> list[InitialWeights]:
    """The initial weight tensors of every layer with an `init` parameter."""
    program = compile_graph(spec, seed=seed, require_loss=False)
    out = []
    for e in program.entries:
        params = program.params.get(e.node, {})
        if e.name != "weight" or "init" not in params:
            continue
        shape = tuple(e.shape)
        fan_out = shape[0] * (int(np.prod(shape[2:])) if len(shape) > 2 else 1)
        fan_in = int(np.prod(shape[1:]))
        values = program.param_value(e).reshape(-1)[:max_numbers].astype(np.float64)
        out.append(InitialWeights(e.node, params["init"],
                                  describe_init(params["init"], fan_in, fan_out), values))
    return out
