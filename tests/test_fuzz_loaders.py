"""Every loader fuzzed with hypothesis: the only allowed outcomes are success or a
GradscapeError whose message is a sentence. Never a traceback of another type.

To fuzz a new loader, add one line to LOADERS: a name, a function writing a valid seed
file, and the function that loads a path (as the CLI or the GUI would). Byte-level
mutations come for free; `structured` may add mutations that understand the format.
"""

import copy
import functools
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.compiler import analyze
from engine.core.spec import load_graph
from engine.data import csv_preview, load_csv
from engine.data.csv_import import apply_preprocessing
from engine.errors import GradscapeError
from engine.files import model_file as mf
from engine.files import safetensors_io as sf
from tests.gui import EXAMPLES
from tests.hostile import csv_model, members, rezip, write_csv

EXAMPLES_PER_LOADER = 1000
FUZZ = settings(max_examples=EXAMPLES_PER_LOADER, deadline=None, derandomize=True,
                database=None, suppress_health_check=list(HealthCheck))


# -- the loaders ----------------------------------------------------------------------------

@functools.cache
def _workdir() -> Path:
    shm = Path("/dev/shm")  # in memory where available: thousands of small writes
    return Path(tempfile.mkdtemp(prefix="gradscape-fuzz-",
                                 dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))


@functools.cache
def _model() -> tuple[Path, Path]:
    folder = _workdir() / "model"
    folder.mkdir(exist_ok=True)
    return csv_model(folder)


@functools.cache
def _model_bytes() -> bytes:
    return _model()[0].read_bytes()


def _load_graph(path: Path) -> None:
    analyze(load_graph(path))  # what opening a file does before drawing it


def _load_and_predict(path: Path) -> None:
    """What `predict` does: load, build, prepare rows with the saved preprocessing, run."""
    from engine.cli.model_commands import prediction_table

    model = mf.load_model(path)
    program = model.build_program()
    pp = dict(model.preprocessing.get("preprocessing") or {})
    x = apply_preprocessing(pp, _model()[1])
    want = program.shapes[program.order[program.input_nodes[0]]][1:]
    if x.shape[1:] == tuple(want):
        prediction_table(program, model, x)


def _load_csv(path: Path) -> None:
    csv_preview(path)
    load_csv(path)


@functools.cache
def _model_preprocessing() -> str:
    return json.dumps(mf.load_model(_model()[0]).preprocessing["preprocessing"])


def _apply_model_preprocessing(path: Path) -> None:
    """New rows for predict, read with a real model's preprocessing."""
    apply_preprocessing(json.loads(_model_preprocessing()), path)


def _load_text(path: Path) -> None:
    """What choosing a text file as training data does (short blocks, so tiny files work)."""
    from engine.data.text import load_text_dataset

    load_text_dataset(path, block_size=4)


def _load_image_folder(path: Path) -> None:
    """An image folder whose one image is the fuzzed file, read at a small grayscale size."""
    from engine.data.images import load_image_folder

    folder = path.with_suffix(".images")
    for name in ("cat", "dog"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / "cat" / "fuzzed.png").write_bytes(path.read_bytes())
    (folder / "dog" / "valid.png").write_bytes(_png_seed())
    load_image_folder(folder, shape=(1, 8, 8))


def _import_onnx(path: Path) -> None:
    """File → Open of an .onnx file: import, then build it as the canvas and predict do."""
    from engine.files.onnx_import import import_onnx

    import_onnx(path).build_program()


@dataclass(frozen=True)
class Loader:
    name: str
    seed: Callable[[], bytes]  # a valid file's bytes
    load: Callable[[Path], Any]
    structured: Callable[[bytes], st.SearchStrategy[bytes]] | None = None


# -- format-aware mutations -----------------------------------------------------------------

# Cheap to draw (hypothesis' recursive strategies would cost more than the loaders).
JSON_VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 2**63, 2**31, 1e308, -0.5, "", ".", "x.out",
                     "Dense", "float64", ",", "\t", "classification", "F32", [], {}, [1], ["a"],
                     [0, 0], [-1], {"a": 1}, [[1, 2]], {"": None}, [None], "é" * 3]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False),
).map(copy.deepcopy)  # a fresh copy: later mutations must not change the sampled constants
KEYS = st.sampled_from(["", "id", "op", "mean", "std", "x", "shape", "dtype", "params",
                        "__metadata__", "data_offsets", "task", "units", "version"])


def _slots(obj: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) inside `obj`, so each value is equally likely."""
    out, stack = [], [obj]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            out.append((node, key))
            if isinstance(node[key], (dict, list)):
                stack.append(node[key])
    return out


@st.composite
def mutated_json(draw, obj: Any) -> Any:
    """`obj` with one to three values, anywhere inside, replaced, deleted or added."""
    obj = copy.deepcopy(obj)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(obj) if isinstance(obj, (dict, list)) else []
        if not slots:
            if isinstance(obj, dict):
                obj[draw(KEYS)] = draw(JSON_VALUES)
            continue
        holder, key = slots[draw(st.integers(0, len(slots) - 1))]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            holder[key] = draw(JSON_VALUES)
        elif action == "delete":
            del holder[key]
        elif isinstance(holder, dict):
            holder[draw(KEYS)] = draw(JSON_VALUES)
        else:
            holder.insert(key, draw(JSON_VALUES))
    return obj


@st.composite
def mutated_bytes(draw, seed: bytes) -> bytes:
    """Byte-level damage: flips, cuts, insertions and duplicated spans."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "repeat":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 256))] * draw(st.integers(1, 8))
        else:
            del data[pos:]
    return bytes(data)


def _json_file(seed: bytes) -> st.SearchStrategy[bytes]:
    return mutated_json(json.loads(seed)).map(lambda o: json.dumps(o).encode())


def _model_members(seed: bytes) -> st.SearchStrategy[bytes]:
    """A model with one JSON member altered as a value tree, or one member's bytes damaged."""
    parts = members(_model()[0])

    @st.composite
    def strategy(draw) -> bytes:
        name = draw(st.sampled_from(sorted(parts)))
        changed = dict(parts)
        if name.endswith(".json") and draw(st.booleans()):
            changed[name] = json.dumps(draw(mutated_json(json.loads(parts[name])))).encode()
        elif name.endswith(".safetensors") and draw(st.booleans()):
            changed[name] = draw(_safetensors_header(parts[name]))
        else:
            changed[name] = draw(mutated_bytes(parts[name]))
        return rezip(changed)

    return strategy()


def _safetensors_header(seed: bytes) -> st.SearchStrategy[bytes]:
    n = int.from_bytes(seed[:8], "little")
    header, body = json.loads(seed[8:8 + n]), seed[8 + n:]

    @st.composite
    def strategy(draw) -> bytes:
        head = json.dumps(draw(mutated_json(header))).encode()
        size = len(head) if draw(st.integers(0, 9)) else draw(st.integers(0, 2**64 - 1))
        return size.to_bytes(8, "little") + head + body

    return strategy()


# CSV text is drawn as one byte string whose bytes pick tokens: one cheap draw per file.
CSV_TOKENS = ["1", "-2.5", "3,5", "1e308", "1e999", "nan", "inf", "", " ", "yes", "no",
              '"q,uoted"', '"', "x", "\ufeff", "0x1F", "١٢", "a", "b", "7"] + [
              ",", ",", ",", ";", "\t", "|"] * 2 + ["\n", "\n", "\r\n", "\r", "\n\n"] * 2


def _csv_text(seed: bytes) -> st.SearchStrategy[bytes]:
    table = st.binary(max_size=120).map(
        lambda b: "".join(CSV_TOKENS[v % len(CSV_TOKENS)] for v in b).encode())
    return st.one_of(table, mutated_bytes(seed))


@functools.cache
def _first_example() -> bytes:
    return (EXAMPLES / "spirals_classifier.json").read_bytes()


@functools.cache
def _safetensors_seed() -> bytes:
    return sf.dumps({"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                     "b": np.zeros(3), "i": np.arange(4, dtype=np.int64)})


@functools.cache
def _csv_seed() -> bytes:
    return write_csv(_workdir() / "seed.csv", rows=12).read_bytes()


@functools.cache
def _text_seed() -> bytes:
    return ("The fox saw the grapes high on the vine.\nÉté, naïve café: ünïcode too.\n"
            ).encode()


@functools.cache
def _png_seed() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).save(buf, "PNG")
    return buf.getvalue()


@functools.cache
def _onnx_seed() -> bytes:
    from engine.export import resolve_model
    from engine.export.onnx_export import build_onnx

    program, _ = resolve_model(EXAMPLES / "spirals_classifier.json")
    return build_onnx(program).SerializeToString()


ONNX_OPS = ["Gemm", "Relu", "Conv", "Add", "MatMul", "Reshape", "Softmax", "", "Nope"]


def _onnx_protobuf(seed: bytes) -> st.SearchStrategy[bytes]:
    """The model with one node's type, one attribute, or one weight's dims changed."""
    import onnx

    @st.composite
    def strategy(draw) -> bytes:
        model = onnx.load_from_string(seed)
        graph = model.graph
        what = draw(st.sampled_from(["op", "attribute", "dims", "input"]))
        node = graph.node[draw(st.integers(0, len(graph.node) - 1))]
        if what == "op":
            node.op_type = draw(st.sampled_from(ONNX_OPS))
        elif what == "attribute" and node.attribute:
            node.attribute[0].i = draw(st.integers(-2**40, 2**40))
        elif what == "dims" and graph.initializer:
            tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
            del tensor.dims[:]
            tensor.dims.extend(draw(st.lists(st.integers(-1, 2**31), max_size=4)))
        elif node.input:
            node.input[0] = draw(st.sampled_from(["", "missing", node.output[0]]))
        return model.SerializeToString()

    return strategy()


LOADERS = [
    Loader("graph JSON", _first_example, _load_graph, _json_file),
    Loader(".gsmodel + predict", lambda: _model_bytes(), _load_and_predict,
           _model_members),
    Loader("safetensors", _safetensors_seed, sf.load_file, _safetensors_header),
    Loader("CSV", _csv_seed, _load_csv, _csv_text),
    Loader("CSV rows to predict", _csv_seed, _apply_model_preprocessing, _csv_text),
    Loader("text data", _text_seed, _load_text),
    Loader("image folder", _png_seed, _load_image_folder),
    Loader("ONNX import", _onnx_seed, _import_onnx, _onnx_protobuf),
]


# -- the property ---------------------------------------------------------------------------

def assert_sentence(exc: GradscapeError) -> None:
    text = str(exc).strip()
    assert len(text) > 15 and text[-1] in ".)?!'\"", f"not a sentence: {text!r}"
    assert "Traceback" not in text and "RecursionError" not in text


def check_outcome(load: Callable[[Path], Any], data: bytes, path: Path) -> None:
    path.write_bytes(data)
    try:
        load(path)
    except GradscapeError as exc:
        assert_sentence(exc)


@pytest.mark.parametrize("loader", LOADERS, ids=[ld.name for ld in LOADERS])
@FUZZ
@given(data=st.data())
def test_loader_survives_fuzzing(loader, data):
    seed = loader.seed()
    use_structure = loader.structured is not None and data.draw(st.integers(0, 3)) > 0
    strategy = loader.structured(seed) if use_structure else mutated_bytes(seed)
    mutated = data.draw(strategy, label="file")
    path = _workdir() / f"fuzz-{os.getpid()}-{loader.name.replace(' ', '_')}"
    check_outcome(loader.load, mutated, path)


def test_seeds_load_cleanly():
    """The unmutated seeds must succeed, or the fuzzing above only tests error paths."""
    for loader in LOADERS:
        path = _workdir() / "seed-check"
        path.write_bytes(loader.seed())
        loader.load(path)


def test_every_model_member_is_a_zip_member():
    with zipfile.ZipFile(_model()[0]) as zf:
        assert set(zf.namelist()) == set(mf.MEMBERS)
