"""The native model file (``.gsmodel``): one zip with everything to predict and to resume.

Members (flat names, no folders):

- ``manifest.json``: format name, version, dtype, seed.
- ``graph.json``: the graph file (nodes, edges, layout, training block).
- ``weights.safetensors``: every learnable tensor and buffer, keys ``node.name``.
- ``optimizer.json`` + ``optimizer.safetensors``: optimizer scalars and state arrays (flat,
  each tensor's numbers row by row in its shape, in the order of ``weights``' entries, as
  PyTorch keeps them; theta itself stores a Dense weight transposed).
- ``trainer.json`` + ``trainer.safetensors``: effective training settings, counters,
  RNG states, the current epoch's batch order, per-step losses.
- ``preprocessing.json``: data set name, task, class names, CSV column choice and
  standardisation statistics (what ``predict`` applies to new rows).
- ``metrics.json``: the loss history per epoch and summary numbers.

Loading never executes code (JSON and safetensors only, no pickle), checks sizes before
allocating, refuses odd member names, and reports every problem as a FileFormatError.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.core.spec import GraphSpec, atomic_write_bytes
from engine.errors import CompileError, FileFormatError, GradscapeError
from engine.files import safetensors_io as st
from engine.files.json_text import parse_json
from engine.files.sized_read import read_limited
from engine.ops.base import numel

FORMAT_NAME = "gradscape-model"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 2 * 1024**3
MAX_MEMBERS = 32
MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_TENSOR_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_RATIO = 200  # uncompressed / compressed, checked for members above RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
MAX_PARAMETERS = 200_000_000

MEMBERS = ("manifest.json", "graph.json", "weights.safetensors", "optimizer.json",
           "optimizer.safetensors", "trainer.json", "trainer.safetensors",
           "preprocessing.json", "metrics.json")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# -- saving -------------------------------------------------------------------------------

def _clean(obj: Any) -> Any:
    """JSON-able copy: numpy scalars to Python, NaN/Inf to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(_clean(obj), indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode()


def save_model(path: str | os.PathLike[str], spec: GraphSpec, program: Any,
               trainer: Any = None, data: Any = None,
               metrics: dict[str, Any] | None = None) -> None:
    """Write a .gsmodel file atomically.

    Args:
        spec: the graph (layout and training block included).
        program: the compiled Program whose weights are saved.
        trainer: optional Trainer; saves optimizer and trainer state so training resumes
            exactly, and the loss history.
        data: optional Dataset whose preprocessing (and class names) predict needs.
        metrics: extra JSON-able numbers to keep in metrics.json.
    """
    members: dict[str, bytes] = {}
    members["manifest.json"] = _json_bytes({
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "dtype": str(program.dtype),
        "seed": int(program.seed), "gradscape_version": _version(),
        "training_state": trainer is not None})
    members["graph.json"] = spec.to_json().encode("utf-8")
    members["weights.safetensors"] = st.dumps(program.state_dict())
    history: list[dict[str, Any]] = []
    if trainer is not None:
        opt = trainer.optimizer.state_dict()
        arrays = opt.pop("arrays", {})
        members["optimizer.json"] = _json_bytes(opt)
        # each tensor's numbers row by row, as PyTorch keeps them (a Dense weight is
        # transposed in theta: ParamEntry.view)
        members["optimizer.safetensors"] = st.dumps(
            {k: program.row_major(np.asarray(v)) for k, v in arrays.items()})
        state = trainer.state()
        epoch_losses = state.pop("epoch_losses", [])
        batches = trainer.epoch_batches()
        state["kernel_rngs"] = {
            program.order[i]: k.rng.bit_generator.state
            for i, k in enumerate(program.kernels) if hasattr(k, "rng")}
        state["config"] = asdict(trainer.config)
        members["trainer.json"] = _json_bytes(state)
        members["trainer.safetensors"] = st.dumps({
            "batches": np.concatenate(batches).astype(np.int64) if batches
            else np.zeros(0, np.int64),
            "batch_sizes": np.asarray([len(b) for b in batches], dtype=np.int64),
            "epoch_losses": np.asarray(epoch_losses, dtype=np.float64),
            "step_losses": np.asarray(trainer.step_losses, dtype=np.float64)})
        history = [r.to_dict() for r in trainer.history]
    if data is not None:
        members["preprocessing.json"] = _json_bytes(preprocessing_info(data))
    summary: dict[str, Any] = {"history": history, "num_parameters": program.num_parameters}
    if trainer is not None:
        summary.update(steps=trainer.step_count, epochs=trainer.epoch)
        if history:
            summary["final"] = history[-1]
    summary.update(metrics or {})
    members["metrics.json"] = _json_bytes(summary)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in MEMBERS:
            if name in members:
                info = zipfile.ZipInfo(name, _ZIP_DATE)
                info.compress_type = (zipfile.ZIP_STORED if name.endswith(".safetensors")
                                      else zipfile.ZIP_DEFLATED)
                info.external_attr = 0o644 << 16
                zf.writestr(info, members[name])
    atomic_write_bytes(path, buf.getvalue())


def preprocessing_info(data: Any) -> dict[str, Any]:
    """What preprocessing.json holds for a Dataset: names, task, classes, preprocessing."""
    return {"dataset": data.name, "task": data.task, "num_classes": data.num_classes,
            "class_names": list(data.class_names), "feature_names": list(data.feature_names),
            "target_names": list(data.target_names), "preprocessing": data.preprocessing}


def _version() -> str:
    from engine import __version__

    return __version__


# -- loading ------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    """What a .gsmodel holds. `build_program` and `build_trainer` bring it back to life."""

    spec: GraphSpec
    dtype: str
    seed: int
    state_dict: dict[str, np.ndarray]
    optimizer_state: dict[str, Any] | None = None
    trainer_state: dict[str, Any] | None = None  # trainer.json plus "batches" (arrays)
    config: dict[str, Any] | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    source: str = "the model"

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.preprocessing.get("class_names") or []]

    @property
    def task(self) -> str | None:
        return self.preprocessing.get("task")

    def build_program(self) -> Any:
        """The compiled graph with the saved weights and buffers."""
        from engine.core.compiler import compile_graph

        try:
            program = compile_graph(self.spec, dtype=self.dtype, seed=self.seed,
                                    require_loss=False)
            program.load_state_dict(self.state_dict, strict=True)
        except (CompileError, GradscapeError) as exc:
            raise FileFormatError(f"{self.source} does not fit together: {exc}") from None
        return program

    def build_trainer(self, data: Any = None, program: Any = None) -> Any:
        """A Trainer that continues exactly where the saved one stopped.

        `data` is the full Dataset (split again with the saved settings); by default it is
        loaded as the saved settings say (a built-in data set or the CSV file).
        """
        from engine.training.trainer import TrainConfig, Trainer, load_data

        if self.config is None or self.trainer_state is None or self.optimizer_state is None:
            raise FileFormatError(f"{self.source} holds no training state to resume from; "
                                  "it was saved without a trainer.")
        cfg = TrainConfig.from_block(self.config)
        if program is None:
            program = self.build_program()
        if data is None:
            data = load_data(cfg)
        if cfg.validation_split:
            train, val = data.split(cfg.validation_split, cfg.seed)
        else:
            train, val = data, None
        trainer = Trainer(program, train, cfg, val)
        self.restore_training(trainer)
        return trainer

    def restore_training(self, trainer: Any) -> None:
        """Put the saved optimizer state, counters, RNG states and history into `trainer`.

        `trainer` is a fresh Trainer built with the saved settings on a program holding the
        saved weights (what `build_trainer` makes; the designer's training worker builds its
        own and restores into it).
        """
        from engine.training.trainer import EpochReport

        if self.trainer_state is None or self.optimizer_state is None:
            raise FileFormatError(f"{self.source} holds no training state to resume from; "
                                  "it was saved without a trainer.")
        program = trainer.program
        train = trainer.train_set
        state = self.trainer_state
        batches = state["batches"]
        if any(len(b) and (b.min() < 0 or b.max() >= len(train)) for b in batches):
            raise FileFormatError(f"{self.source} was trained on a data set of another size "
                                  f"than the {len(train)} rows given; cannot resume.")
        try:
            # saved row by row in each tensor's shape (see save); a size that does not fit
            # passes through for the optimizer to refuse in words
            arrays = {k: np.asarray(v) for k, v in self.optimizer_state.get("arrays", {}).items()}
            trainer.optimizer.load_state_dict({**self.optimizer_state, "arrays": {
                k: program.from_row_major(v) if v.shape == program.theta.shape else v
                for k, v in arrays.items()}})
        except GradscapeError as exc:
            raise FileFormatError(f"{self.source}: {exc}") from None
        trainer.load_state(state, batches)
        for node_id, rng_state in state.get("kernel_rngs", {}).items():
            i = program.index.get(node_id)
            if i is not None and hasattr(program.kernels[i], "rng"):
                program.kernels[i].rng.bit_generator.state = rng_state
        known = set(EpochReport.__dataclass_fields__)
        trainer.history = [EpochReport(**{k: (float("nan") if v is None and k == "loss" else v)
                                          for k, v in h.items() if k in known})
                           for h in self.history]
        trainer.step_losses = list(self.step_losses)


def resume(model: str | os.PathLike[str] | LoadedModel, data: Any = None) -> tuple[Any, Any]:
    """(program, trainer) ready to continue training a saved model."""
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    program = loaded.build_program()
    return program, loaded.build_trainer(data, program)


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Read and check a .gsmodel. Raises FileFormatError (and nothing else) on any problem."""
    name, data = read_limited(path, MAX_FILE_BYTES, "model files")
    return loads_model(data, name)


def loads_model(data: bytes, name: str = "the model") -> LoadedModel:
    """Parse the bytes of a .gsmodel (see load_model)."""
    try:
        return _Reader(data, name).read()
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, struct.error) as exc:
        raise FileFormatError(f"{name} is not a readable Gradscape model (damaged zip: "
                              f"{exc}).") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError,
            NotImplementedError, RecursionError, GradscapeError) as exc:
        raise FileFormatError(f"{name} is damaged: {type(exc).__name__}: {exc}.") from None


def _check_member_name(n: str, name: str) -> None:
    if (not n or "\\" in n or "/" in n or "\x00" in n or ".." in n or ":" in n
            or n.startswith(("/", "."))):
        raise FileFormatError(f"{name} is hostile or damaged: it holds the member {n!r}, whose "
                              "name points outside the model (path traversal).")


class _Reader:
    def __init__(self, data: bytes, name: str):
        self.data, self.name = data, name

    def fail(self, text: str) -> FileFormatError:
        return FileFormatError(f"{self.name}: {text}")

    def read(self) -> LoadedModel:
        if not self.data.startswith(b"PK"):
            raise self.fail("this is not a Gradscape model file (not a zip archive).")
        zf = zipfile.ZipFile(io.BytesIO(self.data))
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise self.fail(f"it holds {len(infos)} members; a model holds at most "
                            f"{MAX_MEMBERS}.")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            n = info.filename
            _check_member_name(n, self.name)
            if n in self.infos:
                raise self.fail(f"the member {n!r} appears twice.")
            if (info.external_attr >> 16) & 0o170000 in (0o120000, 0o040000):
                raise self.fail(f"the member {n!r} is a link or a folder, not a file; a model "
                                "holds plain files only.")
            if info.flag_bits & 0x1:
                raise self.fail(f"the member {n!r} is encrypted.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.fail(f"the member {n!r} uses an unsupported compression method.")
            limit = MAX_JSON_BYTES if n.endswith(".json") else MAX_TENSOR_BYTES
            if info.file_size > limit:
                raise self.fail(f"the member {n!r} unpacks to {info.file_size:,} bytes, more "
                                f"than the {limit:,} allowed.")
            if (info.file_size > RATIO_FLOOR
                    and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
                raise self.fail(f"the member {n!r} would unpack {info.file_size:,} bytes from "
                                f"{info.compress_size:,} (a zip bomb?); refused.")
            total += info.file_size
            self.infos[n] = info
        if total > MAX_TOTAL_BYTES:
            raise self.fail(f"it unpacks to {total:,} bytes, more than the "
                            f"{MAX_TOTAL_BYTES:,} allowed.")
        self.zf = zf
        for required in ("manifest.json", "graph.json", "weights.safetensors"):
            if required not in self.infos:
                raise self.fail(f"the member {required!r} is missing; it is not a complete "
                                "Gradscape model.")
        manifest = self.json("manifest.json", dict)
        if manifest.get("format") != FORMAT_NAME:
            raise self.fail(f"the manifest names the format {manifest.get('format')!r}, not "
                            f"{FORMAT_NAME!r}.")
        version = manifest.get("version")
        if type(version) is not int or version < 1:
            raise self.fail(f"the manifest has an invalid version {version!r}.")
        if version > FORMAT_VERSION:
            raise self.fail(f"it was written by a newer Gradscape (model format version "
                            f"{version}; this one reads up to {FORMAT_VERSION}). Please update.")
        dtype = manifest.get("dtype", "float32")
        if dtype not in ("float32", "float64"):
            raise self.fail(f"the manifest has an unknown dtype {dtype!r}.")
        seed = manifest.get("seed", 0)
        if type(seed) is not int or seed < 0:
            raise self.fail(f"the manifest has an invalid seed {seed!r}.")
        try:
            text = self.member("graph.json").decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("graph.json is not UTF-8 text.") from None
        spec = GraphSpec.from_json(text, f"the graph in {self.name}")
        expected = self.expected_shapes(spec)
        n_params = sum(numel(s) for k, s in expected.items() if k in self.param_keys)

        weights = self.tensors("weights.safetensors", MAX_PARAMETERS)
        self.check_weights(weights, expected)
        model = LoadedModel(spec, dtype, seed, weights, source=self.name)
        if "preprocessing.json" in self.infos:
            model.preprocessing = self.json("preprocessing.json", dict)
            _check_preprocessing(model.preprocessing, self.fail)
        if "metrics.json" in self.infos:
            model.metrics = self.json("metrics.json", dict)
            hist = model.metrics.get("history", [])
            if not isinstance(hist, list) or not all(_is_epoch_entry(h) for h in hist):
                raise self.fail("metrics.json has a damaged 'history'.")
            model.history = hist
        if "trainer.json" in self.infos:
            self.read_training(model, n_params)
        return model

    # -- members --------------------------------------------------------------------------
    def member(self, n: str) -> bytes:
        info = self.infos[n]
        with self.zf.open(info) as fh:
            raw = fh.read(info.file_size + 1)
        if len(raw) != info.file_size:
            raise self.fail(f"the member {n!r} does not have the size its header declares.")
        return raw

    def json(self, n: str, kind: type) -> Any:
        obj = parse_json(self.member(n), f"{n} in {self.name}")
        if not isinstance(obj, kind):
            raise self.fail(f"{n} must hold a JSON {'object' if kind is dict else 'list'}.")
        return obj

    def tensors(self, n: str, max_values: int) -> dict[str, np.ndarray]:
        return st.loads(self.member(n), f"{n} in {self.name}", max_values)[0]

    # -- checks ---------------------------------------------------------------------------
    def expected_shapes(self, spec: GraphSpec) -> dict[str, tuple[int, ...]]:
        """Shape of every tensor the graph needs, without allocating any of them."""
        from engine.core import registry
        from engine.core.compiler import analyze

        analysis = analyze(spec, require_loss=False)
        if analysis.diagnostics:
            raise self.fail("its graph does not compile: " + " ".join(
                d.message for d in analysis.diagnostics[:5]))
        out: dict[str, tuple[int, ...]] = {}
        self.param_keys: set[str] = set()
        total = 0
        for node in spec.nodes:
            op = registry.get(node.op)
            ins = {port: analysis.shapes[e.src] for port, e in analysis.inputs[node.id].items()}
            params = analysis.params[node.id]
            for name, shape in op.param_shapes(params, ins).items():
                out[f"{node.id}.{name}"] = tuple(int(d) for d in shape)
                self.param_keys.add(f"{node.id}.{name}")
            for name, shape in op.buffer_shapes(params, ins).items():
                out[f"{node.id}.{name}"] = tuple(int(d) for d in shape)
        for shape in out.values():
            total += numel(shape)
        if total > MAX_PARAMETERS:
            raise self.fail(f"its graph needs {total:,} numbers of weights, more than the "
                            f"{MAX_PARAMETERS:,} Gradscape loads.")
        return out

    def check_weights(self, weights: dict[str, np.ndarray],
                      expected: dict[str, tuple[int, ...]]) -> None:
        for key, shape in expected.items():
            if key not in weights:
                raise self.fail(f"the weights lack {key!r}, which the graph needs.")
            if weights[key].shape != shape:
                raise self.fail(f"the weight {key!r} has shape {weights[key].shape}, but the "
                                f"graph needs {shape}.")
            if weights[key].dtype.kind != "f":
                raise self.fail(f"the weight {key!r} is not a floating-point tensor.")
            bad = int(np.count_nonzero(~np.isfinite(weights[key])))
            if bad:
                raise self.fail(f"the weight {key!r} holds {bad:,} NaN or infinite values, so "
                                "every prediction would be NaN; the file is damaged, or was "
                                "written after training diverged. Retrain or use a backup.")
        extra = [k for k in weights if k not in expected]
        if extra:
            raise self.fail(f"the weight {extra[0]!r} belongs to no node of the graph.")

    def read_training(self, model: LoadedModel, n_params: int) -> None:
        for required in ("optimizer.json", "optimizer.safetensors", "trainer.safetensors"):
            if required not in self.infos:
                raise self.fail(f"it has trainer.json but lacks {required!r}.")
        state = self.json("trainer.json", dict)
        for key in ("step", "epoch", "batch_pos"):
            if type(state.get(key)) is not int or state[key] < 0:
                raise self.fail(f"trainer.json has an invalid {key!r}.")
        config = state.pop("config", None)
        if not isinstance(config, dict):
            raise self.fail("trainer.json lacks the training settings ('config').")
        _check_rng(state.get("rng"), self.fail, "the shuffling generator")
        rngs = state.get("kernel_rngs", {})
        if not isinstance(rngs, dict):
            raise self.fail("trainer.json has invalid 'kernel_rngs'.")
        for node_id, rng in rngs.items():
            _check_rng(rng, self.fail, f"the generator of node {node_id!r}")
        arrays = self.tensors("trainer.safetensors", MAX_PARAMETERS)
        need = {"batches": "i", "batch_sizes": "i", "epoch_losses": "f", "step_losses": "f"}
        for key, kind in need.items():
            arr = arrays.get(key)
            if arr is None or arr.ndim != 1 or arr.dtype.kind != kind:
                raise self.fail(f"trainer.safetensors lacks a valid {key!r} vector.")
        sizes = arrays["batch_sizes"]
        if (sizes < 0).any() or int(sizes.sum()) != len(arrays["batches"]):
            raise self.fail("trainer.safetensors has batch sizes that do not add up.")
        if state["batch_pos"] > len(sizes):
            raise self.fail("trainer.json points past the last batch of the epoch.")
        state["batches"] = np.split(arrays["batches"], np.cumsum(sizes)[:-1]) if len(sizes) \
            else []
        state["epoch_losses"] = arrays["epoch_losses"].tolist()
        opt = self.json("optimizer.json", dict)
        opt_arrays = self.tensors("optimizer.safetensors", MAX_PARAMETERS)
        for key, arr in opt_arrays.items():
            if arr.shape != (n_params,) or arr.dtype.kind != "f":
                raise self.fail(f"the optimizer state {key!r} has shape {arr.shape}, but the "
                                f"network has {n_params} parameters.")
        opt["arrays"] = opt_arrays
        model.optimizer_state = opt
        model.trainer_state = state
        model.config = config
        model.step_losses = arrays["step_losses"].tolist()


def _is_epoch_entry(entry: Any) -> bool:
    """An entry of the loss history: what EpochReport.to_dict wrote (NaN saved as null)."""
    if not isinstance(entry, dict) or type(entry.get("epoch")) is not int:
        return False
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               for k, v in entry.items() if k != "epoch")


def _is_text_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_int_list(v: Any) -> bool:
    return isinstance(v, list) and all(type(x) is int and x >= 0 for x in v)


def _is_finite_list(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)


def _is_finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# What `predict` reads from preprocessing.json, each with a test and the words for a failure.
# Keys not listed here are kept as they are (newer data sources may add their own).
_TOP_FIELDS: dict[str, tuple[Any, str]] = {
    "dataset": (lambda v: isinstance(v, str), "a name"),
    "task": (lambda v: v in (None, "classification", "regression"),
             "'classification', 'regression' or null"),
    "num_classes": (lambda v: type(v) is int and v >= 0, "a whole number ≥ 0"),
    "class_names": (_is_text_list, "a list of texts"),
    "feature_names": (_is_text_list, "a list of texts"),
    "target_names": (_is_text_list, "a list of texts"),
    "preprocessing": (lambda v: isinstance(v, dict), "an object"),
}
_STEP_FIELDS: dict[str, tuple[Any, str]] = {
    "delimiter": (lambda v: v in (",", ";", "\t"), "a comma, semicolon or tab"),
    "decimal_comma": (lambda v: isinstance(v, bool), "true or false"),
    "header": (lambda v: isinstance(v, bool), "true or false"),
    "standardize": (lambda v: isinstance(v, bool), "true or false"),
    "columns": (_is_text_list, "a list of texts"),
    "feature_names": (_is_text_list, "a list of texts"),
    "target_names": (_is_text_list, "a list of texts"),
    "class_names": (_is_text_list, "a list of texts"),
    "feature_indices": (_is_int_list, "a list of column numbers"),
    "target_indices": (_is_int_list, "a list of column numbers"),
    "mean": (_is_finite_list, "a list of finite numbers"),
    "std": (lambda v: _is_finite_list(v) and all(x > 0 for x in v),
            "a list of positive numbers"),
    "scale": (_is_finite, "a finite number"),
    "input_shape": (lambda v: _is_int_list(v) and 0 < len(v) <= 8 and all(v)
                    and math.prod(v) <= MAX_PARAMETERS, "a list of whole numbers ≥ 1"),
}


def _check_preprocessing(pp: dict[str, Any], fail: Any) -> None:
    """Refuse a preprocessing.json that `predict` could not apply (each field's type, and
    that the statistics, names and column numbers agree with each other)."""
    def check(obj: dict[str, Any], fields: dict[str, tuple[Any, str]], where: str) -> None:
        for key, (ok, words) in fields.items():
            if key in obj and not ok(obj[key]):
                raise fail(f"preprocessing.json is damaged: {where}{key!r} must be {words}, "
                           f"not {_short(obj[key])}.")

    check(pp, _TOP_FIELDS, "")
    step = pp.get("preprocessing") or {}
    check(step, _STEP_FIELDS, "the step ")
    names = step.get("feature_names")
    for key in ("mean", "std"):
        if names and key in step and len(step[key]) != len(names):
            raise fail(f"preprocessing.json is damaged: the step {key!r} has "
                       f"{len(step[key])} values for {len(names)} features.")
    if step.get("standardize") and ("mean" in step) != ("std" in step):
        raise fail("preprocessing.json is damaged: standardising needs both 'mean' and 'std'.")
    columns = step.get("columns")
    for key in ("feature_indices", "target_indices"):
        if columns is not None and any(j >= len(columns) for j in step.get(key, [])):
            raise fail(f"preprocessing.json is damaged: the step {key!r} points past the "
                       f"{len(columns)} columns.")
    if names and "feature_indices" in step and len(step["feature_indices"]) != len(names):
        raise fail("preprocessing.json is damaged: 'feature_indices' and 'feature_names' "
                   "differ in length.")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_rng(state: Any, fail: Any, what: str) -> None:
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise fail(f"the saved state of {what} is damaged.")
    try:
        np.random.PCG64().state = state
    except (ValueError, TypeError, KeyError, OverflowError):
        raise fail(f"the saved state of {what} is damaged.") from None
