"""Export a trained model (or a graph with fresh weights) to formats other tools read.

``export(model_or_graph, fmt, out)`` with fmt one of ``onnx``, ``torch``, ``safetensors``
and ``numpy``. The model may be a path to a ``.gsmodel``, an ``.onnx`` or a graph ``.json``, a
LoadedModel, a compiled Program or a GraphSpec. Each format module imports its optional
dependency (onnx) only when used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.export._graph import ExportError

__all__ = ["FORMATS", "ExportError", "export", "resolve_model"]

FORMATS = ("onnx", "torch", "safetensors", "numpy")


def resolve_model(model_or_graph: Any) -> tuple[Any, dict[str, Any]]:
    """(Program, info) from any accepted model form; info has class_names and preprocessing."""
    from engine.core.compiler import compile_graph
    from engine.core.program import Program
    from engine.core.spec import GraphSpec, load_graph
    from engine.files.model_file import LoadedModel, load_model

    obj = model_or_graph
    if isinstance(obj, (str, os.PathLike)):
        p = Path(obj)
        if p.suffix.lower() == ".json":
            obj = load_graph(p)
        elif p.suffix.lower() == ".onnx":
            from engine.files.onnx_import import import_onnx

            obj = import_onnx(p)
        else:
            obj = load_model(p)
    if isinstance(obj, LoadedModel):
        return obj.build_program(), {"class_names": obj.class_names,
                                     "preprocessing": obj.preprocessing.get("preprocessing", {})}
    if isinstance(obj, GraphSpec):
        training = obj.training or {}
        seed = training.get("seed", 0)
        dtype = training.get("dtype", "float32")
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
        dtype = dtype if dtype in ("float32", "float64") else "float32"
        return compile_graph(obj, dtype=dtype, seed=seed, require_loss=False), {}
    if isinstance(obj, Program):
        return obj, {}
    raise ExportError(f"Cannot export a {type(obj).__name__}; give a model file, a graph "
                      "file, a LoadedModel, a Program or a GraphSpec.")


def export(model_or_graph: Any, fmt: str, out: str | os.PathLike[str],
           **options: Any) -> list[Path]:
    """Write `model_or_graph` in format `fmt` to `out`; returns the files written.

    onnx and safetensors write one file; numpy writes a folder holding ``model.py`` and
    the weights; torch writes a training folder (model.py, weights, train.py, gradscape.json,
    data.npz, README.md; see ``torch_training``). When `out` ends in ``.py``, torch and numpy
    write that script and the weights beside it. Options: ``opset`` (onnx); ``notes`` (a
    list that receives sentences about what was left out, e.g. why there is no train.py).
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    program, info = resolve_model(model_or_graph)
    class_names = info.get("class_names") or []
    if fmt == "onnx":
        import json

        from engine.export.onnx_export import DEFAULT_OPSET, export_onnx

        meta = {"gradscape.class_names": json.dumps(class_names)} if class_names else {}
        if info.get("preprocessing"):
            meta["gradscape.preprocessing"] = json.dumps(info["preprocessing"])
        export_onnx(program, out, int(options.get("opset", DEFAULT_OPSET)), meta)
        return [Path(out)]
    if fmt == "torch":
        return _export_torch(program, out, class_names, options.get("notes"))
    if fmt == "safetensors":
        from engine.export.torch_export import torch_state_dict
        from engine.files.safetensors_io import save_file

        save_file(out, torch_state_dict(program), {"format": "pt"})
        return [Path(out)]
    from engine.export.numpy_export import export_numpy

    return export_numpy(program, out, class_names, info.get("preprocessing"))


def _export_torch(program: Any, out: str | os.PathLike[str], class_names: list[str],
                  notes: list[str] | None) -> list[Path]:
    """The training folder, or model.py + weights alone when out ends in .py or the graph
    cannot be trained by train.py (the reason goes to `notes`)."""
    from engine.export.torch_export import export_torch
    from engine.export.torch_training import (
        TORCH_REQUIREMENT,
        export_training_folder,
        torch_installed,
    )

    notes = notes if notes is not None else []
    if Path(out).suffix == ".py":
        return export_torch(program, out, class_names)
    try:
        files = export_training_folder(program, out, class_names, notes=notes)
    except ExportError as exc:
        files = export_torch(program, out, class_names)
        notes.append(f"No train.py: {exc}")
        return files
    if not torch_installed():
        notes.append(f"PyTorch is not installed here; train.py needs {TORCH_REQUIREMENT} "
                     "(pip install torch numpy).")
    return files
