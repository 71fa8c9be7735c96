"""The PyTorch training folder: model.py, weights, train.py, the data and a README.

``export_training_folder`` writes everything a user needs to keep training the graph with
PyTorch on a bigger machine — one process, a GPU, or ``torchrun`` with
DistributedDataParallel — and to bring the result back: ``train.py`` writes real ``.gsmodel``
files, which File → Open reads like any model saved in Gradscape.

``train.py`` is the same script for every graph (``torch_train_script.py``, copied); what
belongs to the graph is in ``gradscape.json``: the training settings, the optimizer with its
resolved hyperparameters, the losses, the mapping between the engine's flat parameter order
and the module's state_dict keys, the data description, and the graph itself (which goes back
into the checkpoints). The data is embedded as the exact float64 arrays the engine trains on
(``data.npz``), so a run of train.py visits the same samples in the same order as Gradscape.
Torch is not needed to export.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.program import Program
from engine.core.spec import atomic_write_bytes
from engine.errors import GradscapeError
from engine.export._graph import ExportError, code_export_paths
from engine.export.torch_export import generate_torch

SCRIPT_TEMPLATE = Path(__file__).with_name("torch_train_script.py")
TRAIN_LOSSES = ("MSELoss", "MAELoss", "HuberLoss", "BCELoss", "CrossEntropyLoss")
TORCH_REQUIREMENT = "torch>=2.1 and numpy"


def torch_installed() -> bool:
    """Whether this Python can run the generated train.py (it needs torch)."""
    return importlib.util.find_spec("torch") is not None


def import_train_script(folder: str | os.PathLike[str]) -> Any:
    """The train.py of an exported folder as a module (needs torch), for driving a run from
    Python: ``run = module.Run(module.parse_args([]))``, then ``run.step()``, ``run.save()``.

    Its ``from model import …`` is resolved in that folder; sys.path is left as it was.
    """
    import sys

    folder = Path(folder)
    saved = list(sys.path)
    sys.modules.pop("model", None)
    name = f"gradscape_train_{abs(hash(str(folder.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, folder / "train.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
        sys.modules.pop("model", None)
    return module


def _losses(program: Program) -> list[dict[str, Any]]:
    """The loss nodes as train.py computes them, or ExportError naming the node it cannot."""
    outputs = list(program.output_nodes)
    losses = []
    for i in program.loss_nodes:
        node_id, op = program.order[i], program.op_ids[i]
        params = program.params[node_id]
        ports = program.input_ports[i]
        pred = program.srcs[i][ports.index("prediction")]
        target = program.srcs[i][ports.index("target")]
        if op not in TRAIN_LOSSES:
            raise ExportError(f"Node '{node_id}' ({op}) has no PyTorch translation in train.py; "
                              f"use one of {', '.join(TRAIN_LOSSES)}.")
        if program.ops[target].role != "target":
            raise ExportError(
                f"The target port of loss '{node_id}' is fed by '{program.order[target]}', not "
                "directly by a Target node; train.py feeds the targets to the losses as they "
                "are. Wire the Target straight into the loss.")
        target_shape = program.shapes[program.order[target]]
        pred_shape = program.shapes[program.order[pred]]
        losses.append({
            "node": node_id, "op": op, "output": outputs.index(pred),
            "reduction": params.get("reduction", "mean"),
            "delta": float(params.get("delta", 1.0)),
            "from_logits": bool(params.get("from_logits", False)),
            "index_target": op == "CrossEntropyLoss" and tuple(target_shape) != tuple(pred_shape),
        })
    if not losses:
        raise ExportError("The graph has no loss node, so there is nothing for train.py to "
                          "minimise; add a loss (e.g. MSELoss) fed by the prediction and a "
                          "Target.")
    return losses


def _accuracy_rule(program: Program, task: str | None) -> dict[str, float] | None:
    """Gradscape's accuracy rule (Trainer._find_accuracy_rule) as data."""
    if task != "classification":
        return None
    threshold = 0.5
    for i in program.loss_nodes:
        if program.op_ids[i] == "BCELoss" and program.params[program.order[i]].get("from_logits"):
            threshold = 0.0
    return {"threshold": threshold}


def _optimizer(cfg: Any) -> dict[str, Any]:
    """Name, class and every hyperparameter (defaults resolved) of the graph's optimizer."""
    from engine.training.optim import make_optimizer

    probe = np.zeros(1)
    opt = make_optimizer(cfg.optimizer, probe, np.zeros(1), cfg.lr, **cfg.optimizer_params)
    hyper = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in opt.hyper.items()}
    return {"name": cfg.optimizer, "class": type(opt).__name__, "hyper": hyper}


def training_settings(program: Program, cfg: Any, data: Any, key_map: dict[str, str],
                      weights_name: str, data_name: str | None) -> dict[str, Any]:
    """The content of gradscape.json (see the module docstring)."""
    from engine import __version__
    from engine.files.model_file import preprocessing_info

    missing = [e.key for e in program.entries if e.key not in key_map]
    if missing:
        node = missing[0].split(".", 1)[0]
        raise ExportError(f"Node '{node}' has learnable weights but is not on the way from the "
                          "Input to the prediction, so the PyTorch module has no place for "
                          "them; remove it or wire it into the prediction.")
    spec = program.spec
    block = dict(spec.training)
    return {
        "format": "gradscape-torch-training", "version": 1,
        "gradscape_version": __version__,
        "title": str(block.get("title") or "Gradscape graph"),
        "graph": json.loads(spec.to_json()),
        "seed": int(program.seed),
        "config": _json_safe(asdict(cfg)),
        "optimizer": _optimizer(cfg),
        "losses": _losses(program),
        "accuracy": _accuracy_rule(program, data.task if data is not None else None),
        "weights": weights_name,
        "parameters": [{"engine": e.key, "torch": key_map[e.key], "shape": list(e.shape)}
                       for e in program.entries],
        "buffers": [{"engine": k, "torch": key_map[k], "shape": list(v.shape)}
                    for k, v in program.buffers.items()],
        "data": {"file": data_name,
                 "name": data.name if data is not None else None,
                 "task": data.task if data is not None else None,
                 "class_names": list(data.class_names) if data is not None else [],
                 "preprocessing": data.preprocessing if data is not None else {},
                 "info": preprocessing_info(data) if data is not None else {},
                 "rows": len(data) if data is not None else 0},
    }


def _json_safe(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda v: v.item() if isinstance(v, np.generic)
                                 else str(v)))


def _readme(settings: dict[str, Any], has_data: bool) -> str:
    cfg = settings["config"]
    data = settings["data"]
    opt = settings["optimizer"]
    source = (f"the {data['rows']} rows of '{data['name']}' ({data['task']}), embedded in "
              "data.npz exactly as Gradscape prepared them" if has_data else
              "no embedded data: pass the training CSV with --csv FILE")
    batch = cfg.get("batch_size") or "full batch"
    hyper = ", ".join(f"{k} {v}" for k, v in opt["hyper"].items())
    schedule = cfg.get("schedule", "constant")
    if cfg.get("schedule_params"):
        schedule += " (" + ", ".join(f"{k} {v}" for k, v in cfg["schedule_params"].items()) + ")"
    val = cfg.get("validation_split") or 0
    clip = f"to norm {cfg['clip_norm']}" if cfg.get("clip_norm") else "off"
    return f"""# {settings['title']} — training with PyTorch

Exported by Gradscape {settings['gradscape_version']}. This folder trains the graph with
PyTorch exactly as Gradscape does (same initial weights, same samples in the same order, same
optimizer), on a CPU, a GPU or several processes, and writes Gradscape model files that
File → Open shows with their loss history and continues training from.

| file | what it is |
|---|---|
| `model.py` | the network as a plain `nn.Module` (`GradscapeModel`) and `load_weights` |
| `{settings['weights']}` | the exported weights (the starting point of train.py) |
| `train.py` | the training loop: `python train.py --help` |
| `gradscape.json` | the graph and its training settings, read by train.py |
| `data.npz` | {source} |

Training settings (from the graph's training block):

- optimizer {opt['class']} ({hyper}), learning rate {cfg['lr']}, {schedule} schedule
- batch {batch}, {cfg['epochs']} epochs, seed {cfg['seed']}, validation split {val}
- L1 {cfg.get('l1', 0.0)}, L2 {cfg.get('l2', 0.0)}, gradient clipping {clip}, {cfg['dtype']}

train.py starts from the weights in this folder with a fresh optimizer. To continue a run of
Gradscape exactly (optimizer state, counters, sample order), save it there with Train → Save
Trained Model… and start `python train.py --resume THAT.gsmodel`.

## Needs

Python 3.9+ with {TORCH_REQUIREMENT} (`pip install torch numpy`). Gradscape itself is not
needed.

## Run

```
python train.py                                  # CPU, one process
python train.py --device cuda                    # one GPU
torchrun --nproc-per-node 4 train.py --device cuda           # 4 GPUs (NCCL)
torchrun --nproc-per-node 2 train.py                         # 2 CPU processes (gloo)
torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
    --rdzv-endpoint HOST:29500 train.py --device cuda        # two machines
python train.py --resume trained.gsmodel --epochs 500        # continue a checkpoint
python train.py --csv bigger.csv                 # more rows with the training file's columns
```

The checkpoint (`--out`, default `trained.gsmodel`) is written after every epoch and at the
end. Open it in Gradscape (File → Open) to see the loss history, inspect per-edge gradients
on a batch and continue training there.

With several processes, every process draws the same global batch of `--batch-size` samples
and takes its share; the gradients are averaged by DistributedDataParallel so that a step is
the step of the whole batch, as on one process. BatchNorm then normalises each process's share
separately on CPU (SyncBatchNorm on CUDA), and Dropout draws its masks from torch's generator,
so graphs with those differ slightly from a Gradscape run.
"""


def _fitting_data(program: Program, cfg: Any, notes: list[str]) -> Any:
    """The full data set the training block names, or None (with a note) when it cannot be
    read or does not fit the graph's Input and Target."""
    from engine.training.trainer import Trainer, load_data

    try:
        data = load_data(cfg)
        Trainer(program, data, cfg)  # checks the shapes, changes nothing
    except GradscapeError as exc:
        notes.append(f"The training data is not embedded: {exc} Give train.py a CSV with "
                     "--csv FILE.")
        return None
    return data


def export_training_folder(program: Program, out: str | os.PathLike[str],
                           class_names: list[str] | None = None,
                           data: Any = None, notes: list[str] | None = None) -> list[Path]:
    """Write model.py, the weights, train.py, gradscape.json, data.npz and README.md into
    the folder `out`. `data` is the full Dataset (before the validation split); by default
    it is loaded as the graph's training block says. Returns the files written; `notes`
    receives a sentence when the data could not be embedded."""
    from engine.files.safetensors_io import dumps
    from engine.training.trainer import TrainConfig

    folder = Path(out)
    script, weights = code_export_paths(folder, "weights.safetensors")
    try:
        cfg = TrainConfig.from_block(program.spec.training)
    except GradscapeError as exc:
        raise ExportError(f"The graph's training settings cannot be exported: {exc}") from None
    cfg.dtype = str(np.dtype(program.dtype))
    cfg.seed = int(program.seed)
    if data is None:
        data = _fitting_data(program, cfg, notes if notes is not None else [])
    src, state, key_map = generate_torch(program, weights.name, class_names, keep_dtype=True)
    data_name = "data.npz" if data is not None else None
    settings = training_settings(program, cfg, data, key_map, weights.name, data_name)

    written = [script, weights]
    atomic_write_bytes(weights, dumps(state, {"format": "pt"}))
    atomic_write_bytes(script, src.encode("utf-8"))
    if data is not None:
        buf = io.BytesIO()
        np.savez(buf, x=np.asarray(data.x, np.float64), y=np.asarray(data.y, np.float64))
        atomic_write_bytes(folder / data_name, buf.getvalue())
        written.append(folder / data_name)
    title = settings["title"]
    header = (f"Train '{title}' with PyTorch, exactly as Gradscape trains it.\n\n"
              "    python train.py [--device cuda] [--epochs N] [--resume trained.gsmodel]\n"
              "    torchrun --nproc-per-node N train.py\n\n"
              f"Needs {TORCH_REQUIREMENT}; see README.md. Writes trained.gsmodel, which "
              "Gradscape opens.\n")
    body = SCRIPT_TEMPLATE.read_text(encoding="utf-8").replace("__HEADER__", header, 1)
    for name, text in (("train.py", body),
                       ("gradscape.json", json.dumps(settings, indent=1) + "\n"),
                       ("README.md", _readme(settings, data is not None))):
        atomic_write_bytes(folder / name, text.encode("utf-8"))
        written.append(folder / name)
    return written
