"""Controller: edits through the undo stack, connect checks, clipboard, layout, files,
autosave and recovery (no widgets)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from designer.controller import PASTE_OFFSET, Controller
from designer.document.graph_document import GraphDocument
from engine.core import registry
from engine.core.spec import EdgeSpec
from engine.errors import FileFormatError

ROOT = Path(__file__).resolve().parents[1]


def wire(src: str, dst: str, port: str = "in") -> EdgeSpec:
    return EdgeSpec(src, "out", dst, port)


@pytest.fixture
def ctl(qapp, tmp_path):
    c = Controller(recovery_dir=tmp_path / "recovery")
    yield c
    c.discard_recovery()


def build_regression(c: Controller, units: int = 1) -> dict[str, str]:
    """Input(3) -> Dense(units) -> MSELoss.prediction, Target(1) -> MSELoss.target."""
    ids = {
        "x": c.add_node("Input", (0, 0)),
        "h": c.add_node("Dense", (100, 0)),
        "y": c.add_node("Target", (100, 100)),
        "loss": c.add_node("MSELoss", (200, 0)),
    }
    assert c.set_param(ids["x"], "features", 3) is None
    assert c.set_param(ids["h"], "units", units) is None
    assert c.connect(ids["x"], ids["h"], "in") is None
    assert c.connect(ids["h"], ids["loss"], "prediction") is None
    return ids


def snapshot(c: Controller) -> dict:
    return c.document.spec().to_dict()


# -- adding and params ---------------------------------------------------------------

def test_add_node_ids(ctl):
    assert ctl.add_node("Dense", (0, 0)) == "dense"
    assert ctl.add_node("Dense", (0, 0)) == "dense_2"
    assert ctl.add_node("MSELoss", (0, 0)) == "mseloss"
    node = ctl.document.node("dense")
    assert node.op == "Dense"
    assert node.params == registry.get("Dense").resolve_params({})
    assert ctl.undo_stack.text(0) == "Add Dense"
    assert ctl.document.position("dense") == (0.0, 0.0)


def test_add_every_registered_op(ctl):
    for op in registry.all_ops():
        node_id = ctl.add_node(op.id, (0, 0))
        assert node_id == node_id.lower() and ctl.document.node(node_id).op == op.id


def test_add_unknown_op(ctl, qtbot):
    with qtbot.waitSignal(ctl.message):
        assert ctl.add_node("NoSuchOp", (0, 0)) == ""
    assert ctl.undo_stack.count() == 0


def test_set_param_refused_leaves_document(ctl):
    h = ctl.add_node("Dense", (0, 0))
    before, count, rev = snapshot(ctl), ctl.undo_stack.count(), ctl.document.revision
    assert "at least 1" in ctl.set_param(h, "units", 0)
    assert "whole number" in ctl.set_param(h, "units", 2.5)
    assert "one of" in ctl.set_param(h, "init", "bogus")
    assert "no param" in ctl.set_param(h, "nope", 1)
    assert "no node" in ctl.set_param("ghost", "units", 1)
    assert snapshot(ctl) == before
    assert ctl.undo_stack.count() == count and ctl.document.revision == rev


def test_set_param_merges_and_skips_no_change(ctl):
    h = ctl.add_node("Dense", (0, 0))
    for units in range(9, 30):
        assert ctl.set_param(h, "units", units) is None
    assert ctl.undo_stack.count() == 2
    assert ctl.set_param(h, "units", 29) is None
    assert ctl.undo_stack.count() == 2
    ctl.undo_stack.undo()
    assert ctl.document.node(h).params["units"] == 8


def test_set_training(ctl):
    ctl.set_training({"lr": 0.5})
    ctl.set_training({"lr": 0.5})
    assert ctl.undo_stack.count() == 1
    ctl.undo_stack.undo()
    assert ctl.document.training() == {}


# -- connecting ----------------------------------------------------------------------

def test_can_connect_ok(ctl):
    ids = build_regression(ctl)
    assert ctl.can_connect(ids["y"], ids["loss"], "target") is None
    assert ctl.connect(ids["y"], ids["loss"], "target") is None
    assert ctl.document.analysis().ok, ctl.document.analysis().diagnostics


def test_can_connect_cycle(ctl):
    h1 = ctl.add_node("Dense", (0, 0))
    a1 = ctl.add_node("Tanh", (0, 0))
    h2 = ctl.add_node("Dense", (0, 0))
    assert ctl.connect(h1, a1, "in") is None
    assert ctl.connect(a1, h2, "in") is None
    assert ctl.can_connect(a1, h1, "in") == \
        "This wire would make a loop: dense already feeds tanh."
    assert "loop" in ctl.can_connect(h2, h1, "in")
    assert "loop" in ctl.can_connect(h1, h1, "in")
    count = ctl.undo_stack.count()
    assert ctl.connect(h2, h1, "in") is not None
    assert ctl.undo_stack.count() == count


def test_can_connect_shape_mismatch(ctl):
    ids = build_regression(ctl, units=2)
    reason = ctl.can_connect(ids["y"], ids["loss"], "target")
    assert reason is not None
    assert "(batch, 2)" in reason and "(batch, 1)" in reason
    assert ctl.connect(ids["y"], ids["loss"], "target") == reason
    assert ctl.document.incoming(ids["loss"], "target") is None


def test_can_connect_ports(ctl):
    h = ctl.add_node("Dense", (0, 0))
    x = ctl.add_node("Input", (0, 0))
    assert "no input 'bogus'" in ctl.can_connect(x, h, "bogus")
    assert "has no inputs" in ctl.can_connect(h, x, "in")
    assert "two outputs" in ctl.can_connect(x, h, "out")
    assert "two inputs" in ctl.can_connect(x, h, "in", src_port="in")
    assert "no node" in ctl.can_connect("ghost", h, "in")


def test_connect_replaces_old_wire_in_one_step(ctl):
    x1 = ctl.add_node("Input", (0, 0))
    x2 = ctl.add_node("Input", (0, 0))
    h = ctl.add_node("Dense", (0, 0))
    ctl.connect(x1, h, "in")
    before, count = snapshot(ctl), ctl.undo_stack.count()
    assert ctl.connect(x2, h, "in") is None
    assert ctl.undo_stack.count() == count + 1
    assert ctl.document.edges() == [wire(x2, h)]
    ctl.undo_stack.undo()
    assert snapshot(ctl) == before
    # Connecting the same wire again is a no-op, not a new step.
    assert ctl.connect(x1, h, "in") is None
    assert ctl.undo_stack.index() == count and ctl.undo_stack.canRedo()


def test_disconnect_and_remove(ctl):
    ids = build_regression(ctl)
    before = snapshot(ctl)
    ctl.disconnect(wire(ids["x"], ids["h"]))
    ctl.disconnect(wire("nope", ids["h"]))  # ignored
    ctl.remove([ids["h"]], [])
    ctl.remove([], [])  # nothing: no step
    assert [n.id for n in ctl.document.nodes()] == [ids["x"], ids["y"], ids["loss"]]
    assert ctl.document.edges() == []
    ctl.undo_stack.undo()
    ctl.undo_stack.undo()
    assert snapshot(ctl) == before


def test_move_nodes(ctl):
    a = ctl.add_node("Input", (0, 0))
    b = ctl.add_node("Dense", (5, 5))
    ctl.move_nodes({a: ((0, 0), (10, 10)), b: ((5, 5), (5, 5))})
    assert ctl.undo_stack.text(ctl.undo_stack.count() - 1) == "Move input"
    ctl.move_nodes({a: ((10, 10), (10, 10))})  # no-op: no step
    assert ctl.undo_stack.count() == 3
    ctl.undo_stack.undo()
    assert ctl.document.position(a) == (0.0, 0.0)


# -- renaming ------------------------------------------------------------------------

def test_rename_validation(ctl):
    ids = build_regression(ctl)
    h = ids["h"]
    assert "empty" in ctl.rename(h, "")
    assert "empty" in ctl.rename(h, "   ")
    assert "'.'" in ctl.rename(h, "a.b")
    assert "->" in ctl.rename(h, "a->b")
    assert "already" in ctl.rename(h, ids["x"])
    assert "no node" in ctl.rename("ghost", "z")
    assert ctl.rename(h, h) is None
    count = ctl.undo_stack.count()
    assert ctl.rename(h, " hidden ") is None
    assert ctl.undo_stack.count() == count + 1
    assert ctl.document.has_node("hidden")
    assert wire(ids["x"], "hidden") in ctl.document.edges()


# -- clipboard -----------------------------------------------------------------------

def test_copy_paste(ctl):
    ids = build_regression(ctl)
    text = ctl.copy_json([ids["x"], ids["h"]])
    data = json.loads(text)
    assert [n["id"] for n in data["nodes"]] == [ids["x"], ids["h"]]
    assert data["edges"] == [{"from": f"{ids['x']}.out", "to": f"{ids['h']}.in"}]

    new = ctl.paste_json(text)
    assert new == ["input_2", "dense_2"]
    assert ctl.undo_stack.text(ctl.undo_stack.count() - 1) == "Paste 2 nodes"
    assert wire("input_2", "dense_2") in ctl.document.edges()
    assert ctl.document.node("dense_2").params == ctl.document.node(ids["h"]).params
    for old, copy in zip([ids["x"], ids["h"]], new):
        ox, oy = ctl.document.position(old)
        assert ctl.document.position(copy) == (ox + PASTE_OFFSET, oy + PASTE_OFFSET)
    # A second paste of the same text cascades further.
    again = ctl.paste_json(text)
    assert ctl.document.position(again[0]) == (2 * PASTE_OFFSET, 2 * PASTE_OFFSET)


def test_paste_at_keeps_relative_layout(ctl):
    ids = build_regression(ctl)
    text = ctl.copy_json([ids["h"], ids["y"]])  # at (100, 0) and (100, 100)
    new = ctl.paste_json(text, at=(500, 500))
    assert ctl.document.position(new[0]) == (500.0, 500.0)
    assert ctl.document.position(new[1]) == (500.0, 600.0)


def test_paste_into_empty_document_keeps_ids_and_undoes(ctl):
    ids = build_regression(ctl)
    text = ctl.copy_json(list(ids.values()))
    other = Controller(recovery_dir=ctl.recovery_dir())
    assert other.paste_json(text) == list(ids.values())
    assert other.undo_stack.count() == 1
    other.undo_stack.undo()
    assert other.document.nodes() == []


def test_paste_invalid_text(ctl, qtbot):
    ctl.add_node("Input", (0, 0))
    before = snapshot(ctl)
    for bad in ("not json at all", '{"format": "something-else"}', "[]",
                '{"format": "gradscape-graph", "version": 1, "nodes": [], "edges": []}'):
        with qtbot.waitSignal(ctl.message) as blocker:
            assert ctl.paste_json(bad) == []
        assert blocker.args[0].startswith("Cannot paste")
    assert snapshot(ctl) == before and ctl.undo_stack.count() == 1


def test_paste_without_layout(ctl):
    text = json.dumps({"format": "gradscape-graph", "version": 1,
                       "nodes": [{"id": "a", "op": "Input"}, {"id": "b", "op": "Dense"}],
                       "edges": [{"from": "a.out", "to": "b.in"}]})
    assert ctl.paste_json(text, at=(0, 0)) == ["a", "b"]
    assert ctl.document.position("a")[0] < ctl.document.position("b")[0]


def test_duplicate(ctl):
    ids = build_regression(ctl)
    new = ctl.duplicate([ids["x"], ids["h"]])
    assert len(new) == 2 and all(ctl.document.has_node(i) for i in new)
    assert ctl.undo_stack.text(ctl.undo_stack.count() - 1) == "Duplicate 2 nodes"
    assert ctl.duplicate([]) == []


# -- layout --------------------------------------------------------------------------

def test_auto_layout_one_step_left_to_right(ctl):
    ids = build_regression(ctl)
    ctl.connect(ids["y"], ids["loss"], "target")
    before, count = snapshot(ctl), ctl.undo_stack.count()
    ctl.auto_layout()
    assert ctl.undo_stack.count() == count + 1
    assert ctl.undo_stack.text(count) == "Auto layout"
    doc = ctl.document
    for e in doc.edges():
        assert doc.position(e.src)[0] < doc.position(e.dst)[0]
    xs = sorted({doc.position(n.id)[0] for n in doc.nodes()})
    assert xs == [0.0, 220.0, 440.0]
    ctl.auto_layout()  # already laid out: no new step
    assert ctl.undo_stack.count() == count + 1
    ctl.undo_stack.undo()
    assert snapshot(ctl) == before


# -- a long random session -----------------------------------------------------------

def random_value(rng: random.Random, param):
    if param.kind == "int":
        low = int(param.min) if param.min is not None else 0
        return rng.randint(low, low + 6)
    if param.kind == "float":
        low = param.min if param.min is not None else 0.0
        return low + rng.random()
    if param.kind == "bool":
        return rng.random() < 0.5
    if param.kind == "choice":
        return rng.choice(param.choices)
    if param.kind == "shape":
        return [rng.randint(1, 4) for _ in range(rng.randint(0, 2))]
    if param.kind == "floats":
        return round(rng.uniform(-1, 1), 3)
    return param.default


def check_invariants(doc: GraphDocument) -> None:
    ids = [n.id for n in doc.nodes()]
    assert len(ids) == len(set(ids))
    edges = doc.edges()
    assert len(edges) == len(set(edges))
    ports = [(e.dst, e.dst_port) for e in edges]
    assert len(ports) == len(set(ports))
    for e in edges:
        assert doc.has_node(e.src) and doc.has_node(e.dst)
    assert set(doc.spec().layout) == set(ids)


def test_random_session_undo_redo_all(ctl):
    rng = random.Random(20240611)
    ops = [op.id for op in registry.all_ops()]
    doc = ctl.document
    empty = GraphDocument().spec().to_dict()
    kinds = ["add", "add", "remove", "connect", "connect", "connect", "disconnect", "move",
             "param", "param", "rename", "paste"]
    done = 0
    for step in range(200):
        kind = rng.choice(kinds)
        nodes = [n.id for n in doc.nodes()]
        if kind == "add" or len(nodes) < 2:
            ctl.add_node(rng.choice(ops), (rng.uniform(-500, 500), rng.uniform(-500, 500)))
        elif kind == "remove":
            extra = [rng.choice(doc.edges())] if doc.edges() and rng.random() < 0.5 else []
            ctl.remove(rng.sample(nodes, rng.randint(0, min(2, len(nodes)))), extra)
        elif kind == "connect":
            dst = rng.choice(nodes)
            op = registry.get(doc.node(dst).op)
            if op.inputs:
                ctl.connect(rng.choice(nodes), dst, rng.choice(op.inputs).name)
        elif kind == "disconnect" and doc.edges():
            ctl.disconnect(rng.choice(doc.edges()))
        elif kind == "move":
            moved = rng.sample(nodes, rng.randint(1, min(3, len(nodes))))
            ctl.move_nodes({n: (doc.position(n), (rng.uniform(-9, 9), rng.uniform(-9, 9)))
                            for n in moved})
        elif kind == "param":
            node = doc.node(rng.choice(nodes))
            op = registry.get(node.op)
            if op.params:
                param = rng.choice(op.params)
                ctl.set_param(node.id, param.name, random_value(rng, param))
        elif kind == "rename":
            ctl.rename(rng.choice(nodes), f"n{step}")
        elif kind == "paste":
            ctl.paste_json(ctl.copy_json(rng.sample(nodes, rng.randint(1, min(3, len(nodes))))),
                           at=(rng.uniform(0, 100), 0) if rng.random() < 0.5 else None)
        done += 1
        check_invariants(doc)
    assert done == 200
    final = snapshot(ctl)
    assert len(final["nodes"]) > 5 and len(final["edges"]) > 2
    count = ctl.undo_stack.count()
    assert count > 100
    while ctl.undo_stack.canUndo():
        ctl.undo_stack.undo()
        check_invariants(doc)
    assert snapshot(ctl) == empty
    while ctl.undo_stack.canRedo():
        ctl.undo_stack.redo()
    assert snapshot(ctl) == final


# -- files ---------------------------------------------------------------------------

def test_save_open_round_trip_and_modified(ctl, tmp_path, qtbot):
    assert not ctl.is_modified()
    with qtbot.waitSignal(ctl.modified_changed) as blocker:
        ids = build_regression(ctl)
    assert blocker.args == [True] and ctl.is_modified()
    ctl.set_training({"epochs": 3})
    path = tmp_path / "net.json"
    with qtbot.waitSignals([ctl.path_changed, ctl.modified_changed]):
        ctl.save_as(path)
    assert ctl.path == path and not ctl.is_modified()
    saved = snapshot(ctl)

    ctl.set_param(ids["h"], "units", 7)
    assert ctl.is_modified()
    ctl.save()
    assert not ctl.is_modified()
    saved = snapshot(ctl)

    other = Controller(recovery_dir=tmp_path / "r2")
    other.open(path)
    assert snapshot(other) == saved
    assert other.path == path and not other.is_modified()
    assert other.undo_stack.count() == 0


def test_save_without_path(ctl):
    with pytest.raises(ValueError):
        ctl.save()


def test_open_malformed_leaves_everything(ctl, tmp_path):
    build_regression(ctl)
    before, count, index = snapshot(ctl), ctl.undo_stack.count(), ctl.undo_stack.index()
    bad = tmp_path / "bad.json"
    for text in ("{ nope", '{"format": "gradscape-graph", "version": 999, "nodes": []}',
                 ('{"format": "gradscape-graph", "version": 1, "nodes": [], '
                  '"edges": [{"from": "a.out", "to": "b.in"}]}')):
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(FileFormatError):
            ctl.open(bad)
        assert snapshot(ctl) == before
        assert ctl.undo_stack.count() == count and ctl.undo_stack.index() == index
        assert ctl.path is None and ctl.is_modified()
    with pytest.raises(FileFormatError):
        ctl.open(tmp_path / "missing.json")


def test_open_without_layout_gets_auto_layout(ctl, tmp_path):
    path = tmp_path / "nolayout.json"
    path.write_text(json.dumps({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input"}, {"id": "h", "op": "Dense"},
                  {"id": "a", "op": "ReLU"}],
        "edges": [{"from": "x.out", "to": "h.in"}, {"from": "h.out", "to": "a.in"}],
        "layout": {"a": [999, 999]},
    }), encoding="utf-8")
    ctl.open(path)
    doc = ctl.document
    assert doc.position("x")[0] < doc.position("h")[0]
    assert doc.position("a") == (999.0, 999.0)
    assert not ctl.is_modified()


def test_open_clears_undo_and_new_and_revert(ctl, tmp_path):
    build_regression(ctl)
    path = tmp_path / "g.json"
    ctl.save_as(path)
    saved = snapshot(ctl)
    ctl.add_node("ReLU", (0, 0))
    ctl.revert()
    assert snapshot(ctl) == saved and not ctl.is_modified()
    assert ctl.undo_stack.count() == 0
    ctl.add_node("ReLU", (0, 0))
    ctl.new()
    assert ctl.document.nodes() == [] and ctl.path is None and not ctl.is_modified()
    ctl.revert()  # untitled: stays empty
    assert ctl.document.nodes() == []


# -- autosave and recovery -----------------------------------------------------------

def test_autosave_writes_only_when_modified(ctl):
    assert ctl.autosave() is None
    ctl.add_node("Input", (0, 0))
    path = ctl.autosave()
    assert path is not None and path.exists()
    assert json.loads(path.read_text(encoding="utf-8")) == snapshot(ctl)
    # Our own file is not a candidate, nor that of another live session.
    assert ctl.recovery_candidates() == []
    other = Controller(recovery_dir=ctl.recovery_dir())
    assert other.recovery_candidates() == []
    ctl.discard_recovery()
    assert not path.exists()


def test_recovery_of_leftover_file(ctl, qapp):
    folder = ctl.recovery_dir()
    folder.mkdir(parents=True)
    leftover = folder / "autosave-1-deadbeef.json"
    leftover.write_text(json.dumps({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input"}], "edges": [], "layout": {"x": [1, 2]},
    }), encoding="utf-8")
    assert ctl.recovery_candidates() == [leftover]
    ctl.recover(leftover)
    assert [n.id for n in ctl.document.nodes()] == ["x"]
    assert ctl.is_modified() and ctl.path is None
    assert not leftover.exists()


def test_recovery_after_crash(ctl):
    folder = ctl.recovery_dir()
    code = (
        "import os, sys\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "app = QCoreApplication([])\n"
        "from designer.controller import Controller\n"
        "c = Controller(recovery_dir=sys.argv[1])\n"
        "c.add_node('Dense', (0, 0))\n"
        "print(c.autosave())\n"
        "os._exit(3)\n"  # a crash: no clean exit, the lock stays behind
    )
    result = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    written = Path(result.stdout.strip())
    assert written.exists() and written.with_suffix(".lock").exists()
    assert ctl.recovery_candidates() == [written]


def test_discard_recovery_on_save(ctl, tmp_path):
    ctl.add_node("Input", (0, 0))
    path = ctl.autosave()
    assert path.exists()
    ctl.save_as(tmp_path / "g.json")
    assert not path.exists()


def test_autosave_timer(ctl):
    assert ctl.autosave_timer.interval() == 60_000
    ctl.start_autosave(10)
    assert ctl.autosave_timer.isActive()
    ctl.autosave_timer.stop()
