"""Named hostile files, each fed to the loader the CLI and the GUI use: refused with a
sentence (or read, when the file is merely odd), in under 2 s and 500 MB.

Time is wall-clock on a possibly busy machine, so the bound is generous; memory is the
tracemalloc peak of a second run (numpy reports its buffers to tracemalloc).
"""

import json
import pickle
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.core.compiler import analyze, compile_graph
from engine.core.spec import load_graph
from engine.data import csv_preview, load_csv
from engine.errors import CompileError, GradscapeError
from engine.files import model_file as mf
from engine.files import safetensors_io as sf
from tests.hostile import csv_model, members, rezip

MAX_SECONDS = 2.0
MAX_BYTES = 500 * 2**20
GRAPH_HEAD = '{"format": "gradscape-graph", "version": 1, '


def _open_graph(path: Path) -> None:
    """Open as the editor does (the analysis badges nodes), then build as training does."""
    spec = load_graph(path)
    analysis = analyze(spec)
    if not analysis.ok:
        raise CompileError(analysis.diagnostics)
    compile_graph(spec)


def _read_csv(path: Path) -> None:
    csv_preview(path)
    load_csv(path)


def _safetensors(header: dict, body: bytes = b"", size: int | None = None) -> bytes:
    head = json.dumps(header).encode()
    return (len(head) if size is None else size).to_bytes(8, "little") + head + body


def _model_with(path: Path, **parts: bytes) -> bytes:
    changed = members(path)
    changed.update({k.replace("__", "."): v for k, v in parts.items()})
    return rezip(changed)


def _zip_bomb(model: Path) -> bytes:
    parts = members(model)
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, b"{" + b" " * 15_000_000 + b"}" if name == "metrics.json" else data)
    return buf.getvalue()


def _with_member_info(model: Path, name: str, data: bytes, mode: int) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for member, content in members(model).items():
            if member == name:
                continue
            zf.writestr(member, content)
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        zf.writestr(info, data)
    return buf.getvalue()


def _nan_weights(model: Path) -> bytes:
    weights, _ = sf.loads(members(model)["weights.safetensors"])
    weights = {k: np.full_like(v, np.nan) for k, v in weights.items()}
    return _model_with(model, weights__safetensors=sf.dumps(weights))


def _graph_nodes(n: int) -> str:
    return GRAPH_HEAD + '"nodes": [' + ",".join(
        f'{{"id":"n{i}","op":"ReLU"}}' for i in range(n)) + "]}"


# name, file suffix, builder(model path) -> bytes, loader, words in the refusal (None: reads)
CASES: list[tuple[str, str, Callable[[Path], bytes | str], Callable[[Path], object],
                  str | None]] = [
    ("graph nested 100,000 deep", ".json",
     lambda m: GRAPH_HEAD + '"training": ' + "[" * 100_000 + "]" * 100_000 + "}",
     _open_graph, "nests more than"),
    ("graph of 10^6 nodes", ".json", lambda m: _graph_nodes(1_000_000), _open_graph,
     "graph files are at most"),
    ("graph of 60,000 nodes under the size cap", ".json", lambda m: _graph_nodes(60_000),
     _open_graph, "at most 50,000 nodes"),
    ("graph with a huge declared shape", ".json",
     lambda m: GRAPH_HEAD + '"nodes": [{"id": "x", "op": "Input", "params": '
     '{"shape": [100000, 100000, 100000]}}, {"id": "d", "op": "Dense"}], '
     '"edges": [{"from": "x.out", "to": "d.in"}]}', _open_graph, "too many to fit in memory"),
    ("graph with NaN and Infinity literals", ".json",
     lambda m: GRAPH_HEAD + '"layout": {"x": [NaN, Infinity]}}', _open_graph, "NaN"),
    ("graph that is a pickle", ".json",
     lambda m: pickle.dumps({"format": "gradscape-graph"}), _open_graph, "not UTF-8"),
    ("model that is a pickle", ".gsmodel", lambda m: pickle.dumps([1, 2, 3]), mf.load_model,
     "not a zip archive"),
    ("model zip bomb", ".gsmodel", _zip_bomb, mf.load_model, "zip bomb"),
    ("model with a traversal member", ".gsmodel",
     lambda m: _model_with(m, **{"..__evil": b"x"}), mf.load_model, "path traversal"),
    ("model with a symlink member", ".gsmodel",
     lambda m: _with_member_info(m, "graph.json", b"/etc/passwd", 0o120777), mf.load_model,
     "is a link"),
    ("model with NaN weights", ".gsmodel", _nan_weights, mf.load_model, "NaN"),
    ("model whose graph declares huge weights", ".gsmodel",
     lambda m: _model_with(m, graph__json=json.dumps({
         "format": "gradscape-graph", "version": 1,
         "nodes": [{"id": "x", "op": "Input", "params": {"features": 1_000_000}},
                   {"id": "d", "op": "Dense", "params": {"units": 1_000_000}}],
         "edges": [{"from": "x.out", "to": "d.in"}]}).encode()), mf.load_model,
     "does not compile"),
    ("safetensors with an oversized header", ".safetensors",
     lambda m: _safetensors({}, size=2**40), sf.load_file, "header claims"),
    ("safetensors with offsets outside the file", ".safetensors",
     lambda m: _safetensors({"w": {"dtype": "F32", "shape": [4],
                                   "data_offsets": [2**40, 2**40 + 16]}}, bytes(16)),
     sf.load_file, "truncated"),
    ("safetensors with a dtype/shape mismatch", ".safetensors",
     lambda m: _safetensors({"w": {"dtype": "F64", "shape": [4],
                                   "data_offsets": [0, 16]}}, bytes(16)),
     sf.load_file, "needs 32 bytes"),
    ("safetensors declaring 2^62 values", ".safetensors",
     lambda m: _safetensors({"w": {"dtype": "F32", "shape": [2**31, 2**31],
                                   "data_offsets": [0, 16]}}, bytes(16)),
     sf.load_file, "more than"),
    ("safetensors that is a pickle", ".safetensors",
     lambda m: pickle.dumps(np.zeros(3)), sf.load_file, None),
    ("CSV of 10^6 columns", ".csv",
     lambda m: ",".join("1" for _ in range(1_000_000)) + "\n", _read_csv, "65,536 columns"),
    ("ragged CSV", ".csv", lambda m: "a,b,c\n1,2,3\n4,5\n6,7,8\n", _read_csv, "Line 3 has 2"),
    ("CSV with a BOM", ".csv", lambda m: "\ufeffa,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
     _read_csv, None),
    ("empty CSV", ".csv", lambda m: "", _read_csv, "empty"),
    ("CSV of blank lines", ".csv", lambda m: "\n\n \n", _read_csv, "empty"),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return csv_model(tmp_path_factory.mktemp("model"))[0]


@pytest.mark.parametrize("name, suffix, build, load, words", CASES,
                         ids=[c[0] for c in CASES])
def test_hostile_file(model, tmp_path, monkeypatch, name, suffix, build, load, words):
    monkeypatch.setattr(pickle, "loads", _forbidden)
    monkeypatch.setattr(pickle, "load", _forbidden)
    monkeypatch.setattr(np, "load", _forbidden)
    error, seconds, peak = measure(build, load, model, tmp_path / f"hostile{suffix}")
    if words is None:
        assert error is None or error.endswith("."), error
    else:
        assert error is not None and words in error, error
    assert seconds < MAX_SECONDS, f"{name}: {seconds:.2f} s"
    assert peak < MAX_BYTES, f"{name}: {peak / 2**20:.0f} MB"


def measure(build, load, model: Path, path: Path) -> tuple[str | None, float, int]:
    """Write the hostile file, load it: (refusal or None, seconds, tracemalloc peak bytes)."""
    content = build(model)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    del content
    start = time.perf_counter()
    error = _outcome(load, path)
    seconds = time.perf_counter() - start
    tracemalloc.start()  # a second run for memory: tracing slows every allocation
    try:
        _outcome(load, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error, seconds, peak


def _outcome(load: Callable[[Path], object], path: Path) -> str | None:
    """None if the file was read, else the refusal's sentence."""
    try:
        load(path)
    except GradscapeError as exc:
        return str(exc)
    return None


def _forbidden(*args, **kwargs):
    raise AssertionError("a loader tried to unpickle")
