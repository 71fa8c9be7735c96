"""The graph file format: round trips, header checks, clear errors, atomic writes."""

import json
import os

import pytest

from engine.core.spec import GraphSpec, load_graph, save_graph
from engine.errors import FileFormatError

EXAMPLE = {
    "format": "gradscape-graph", "version": 1,
    "nodes": [
        {"id": "x", "op": "Input", "params": {"features": 2}},
        {"id": "h1", "op": "Dense", "params": {"units": 8}},
        {"id": "a1", "op": "Tanh"},
        {"id": "out", "op": "Dense", "params": {"units": 1}},
        {"id": "y", "op": "Target", "params": {"features": 1}},
        {"id": "loss", "op": "MSELoss"},
    ],
    "edges": [
        {"from": "x.out", "to": "h1.in"}, {"from": "h1.out", "to": "a1.in"},
        {"from": "a1.out", "to": "out.in"}, {"from": "out.out", "to": "loss.prediction"},
        {"from": "y.out", "to": "loss.target"},
    ],
    "layout": {"x": [0, 0], "h1": [200, 0]},
    "training": {"dataset": "xor", "optimizer": "adam", "lr": 0.01, "batch_size": 32,
                 "epochs": 200, "seed": 0},
}


def test_issue_example_round_trips(tmp_path):
    spec = GraphSpec.from_dict(EXAMPLE)
    assert [n.id for n in spec.nodes] == ["x", "h1", "a1", "out", "y", "loss"]
    assert spec.edges[3].dst_port == "prediction"
    path = tmp_path / "g.json"
    save_graph(spec, path)
    again = load_graph(path)
    assert again == spec
    assert json.loads(path.read_text())["layout"]["h1"] == [200.0, 0.0]
    # Deterministic output: saving twice gives identical bytes.
    text = path.read_text()
    save_graph(again, path)
    assert path.read_text() == text
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(version=99), "newer Gradscape"),
    (lambda d: d.update(format="something"), "not a Gradscape graph"),
    (lambda d: d.pop("version"), "version"),
    (lambda d: d["nodes"].append({"id": "x", "op": "Tanh"}), "share the id 'x'"),
    (lambda d: d["edges"].append({"from": "x", "to": "h1.in"}), "node.port"),
    (lambda d: d["nodes"][1].update(params=[1]), "params of node 'h1'"),
    (lambda d: d.update(layout={"x": [1]}), "layout of 'x'"),
    (lambda d: d["nodes"].append({"op": "Tanh"}), "node #7"),
])
def test_malformed_documents_give_a_clear_sentence(mutate, words):
    data = json.loads(json.dumps(EXAMPLE))
    mutate(data)
    with pytest.raises(FileFormatError, match=words):
        GraphSpec.from_dict(data)


def test_invalid_json_names_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "format": "gradscape-graph",\n  oops\n}')
    with pytest.raises(FileFormatError, match="line 3"):
        load_graph(path)


def test_binary_and_missing_files(tmp_path):
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FileFormatError, match="not a text file"):
        load_graph(path)
    with pytest.raises(FileFormatError, match="Cannot open"):
        load_graph(tmp_path / "nope.json")


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "g.json"
    spec = GraphSpec.from_dict(EXAMPLE)
    save_graph(spec, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("engine.core.spec.os.replace", boom)
    with pytest.raises(OSError):
        save_graph(GraphSpec(), path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_files_are_not_private(tmp_path):
    """An atomic save gets the permissions a plain write would (mkstemp makes 0600)."""
    path = tmp_path / "g.json"
    old = os.umask(0o022)
    try:
        save_graph(GraphSpec.from_dict(EXAMPLE), path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o664)  # overwriting keeps the file's own permissions
    save_graph(GraphSpec.from_dict(EXAMPLE), path)
    assert path.stat().st_mode & 0o777 == 0o664


def test_op_reference_is_current():
    from engine.ops.reference import DOC, render

    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m engine.ops.reference"


def test_op_order_does_not_depend_on_which_op_module_is_imported_first():
    import subprocess
    import sys

    code = ("import engine.ops.sequence, engine.ops.losses\n"
            "from engine.ops.reference import DOC, render\n"
            "assert DOC.read_text(encoding='utf-8') == render()\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_op_module_has_its_place_in_the_listed_order():
    from engine.core.registry import MODULE_ORDER, all_ops

    assert {type(op).__module__ for op in all_ops()} == {f"engine.ops.{m}" for m in MODULE_ORDER}
