"""Format version 2 (groups, notes, waypoints), block commands, the block library and the
canvas-free parts of insert-on-wire, nudge, align and distribute."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from designer.controller import Controller
from designer.document.blocks import BlockLibrary, block_ports
from designer.document.layout import follow_ends
from engine.core.compiler import compile_graph
from engine.core.migrations import CURRENT
from engine.core.spec import EdgeSpec, GraphSpec, load_graph, save_graph
from engine.data import make_dataset
from engine.errors import FileFormatError
from engine.training.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
V1 = sorted((ROOT / "tests" / "fixtures" / "v1").glob("*.json"))
RESIDUAL_BLOCK = ROOT / "resources" / "blocks" / "residual.json"
RES_NODES = ["h2", "a2", "h3", "skip"]


@pytest.fixture
def ctl(qapp, tmp_path):
    c = Controller(recovery_dir=tmp_path / "recovery", blocks_dir=tmp_path / "blocks")
    c.open(ROOT / "tests" / "fixtures" / "v1" / "residual_block.json")
    return c


def state(c: Controller) -> str:
    return c.document.spec().to_json()


# -- format -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", V1, ids=lambda p: p.stem)
def test_every_v1_fixture_migrates_and_saves_as_v2(path, tmp_path):
    raw = json.loads(path.read_text())
    assert raw["version"] == 1
    spec = load_graph(path)
    assert [n.to_dict() for n in spec.nodes] == raw["nodes"]
    assert [e.to_dict() for e in spec.edges] == raw["edges"]
    assert spec.groups == () and spec.notes == () and spec.waypoints == {}
    out = tmp_path / path.name
    save_graph(spec, out)
    saved = json.loads(out.read_text())
    assert saved["version"] == CURRENT == 2
    assert {k: v for k, v in saved.items() if k != "version"} == {
        k: v for k, v in raw.items() if k != "version"}
    assert load_graph(out) == spec


def test_the_editor_opens_a_v1_file_and_saves_it_as_v2(ctl, tmp_path):
    out = tmp_path / "saved.json"
    ctl.save_as(out)
    saved = json.loads(out.read_text())
    raw = json.loads((ROOT / "tests" / "fixtures" / "v1" / "residual_block.json").read_text())
    assert saved["version"] == 2 and saved["nodes"] == raw["nodes"]
    assert saved["edges"] == raw["edges"] and saved["layout"] == raw["layout"]


def test_v1_keys_that_only_v2_defines_are_dropped_not_read():
    raw = json.loads(V1[0].read_text())
    raw["groups"] = [{"id": "g", "nodes": ["nope"]}]
    spec = GraphSpec.from_dict(raw, "old.json")
    assert spec.groups == ()


def test_a_newer_file_is_refused_by_name():
    raw = json.loads(V1[0].read_text())
    raw["version"] = CURRENT + 1
    with pytest.raises(FileFormatError, match=r"future\.json was written by a newer Gradscape"):
        GraphSpec.from_dict(raw, "future.json")


@pytest.mark.parametrize("patch, words", [
    ({"groups": [{"id": "g", "nodes": ["ghost"]}]}, "does not exist"),
    ({"groups": [{"id": "x", "nodes": ["h1"]}]}, "already used"),
    ({"groups": [{"id": "g", "nodes": ["h1"]}, {"id": "k", "nodes": ["h1"]}]}, "two groups"),
    ({"notes": [{"id": "n", "kind": "poster", "text": "", "rect": [0, 0, 1, 1]}]}, "kind"),
    ({"notes": [{"id": "n", "kind": "note", "text": "", "rect": [0, 0, -1, 1]}]}, "positive"),
    ({"waypoints": {"x.out->h1.in": [[1, "a"]]}}, "waypoint"),
])
def test_bad_v2_blocks_are_refused_with_a_sentence(patch, words):
    raw = json.loads(V1[-1].read_text())  # xor_mlp: x, h1, …
    raw.update(version=2, **patch)
    with pytest.raises(FileFormatError, match=words):
        GraphSpec.from_dict(raw, "bad.json")


def test_notes_frames_and_waypoints_round_trip(ctl, tmp_path):
    ctl.add_note("note", (10, 20, 180, 90), "Watch the gradient here")
    ctl.add_note("frame", (-40, -60, 900, 300), "Feature extractor")
    edge = EdgeSpec("x", "out", "h1", "in")
    ctl.set_waypoints(edge, [(100.0, 80.0), (140.0, 80.0)])
    ctl.group_nodes(RES_NODES, "Residual")
    path = tmp_path / "annotated.json"
    ctl.save_as(path)
    again = Controller(blocks_dir=tmp_path / "b")
    again.open(path)
    assert state(again) == state(ctl)
    spec = again.document.spec()
    assert [n.text for n in spec.notes] == ["Watch the gradient here", "Feature extractor"]
    assert spec.waypoints == {edge.key: [[100.0, 80.0], [140.0, 80.0]]}
    # The compiler sees none of it: same program as the graph without annotations.
    plain = GraphSpec(spec.nodes, spec.edges)
    assert compile_graph(spec).theta.shape == compile_graph(plain).theta.shape


# -- groups -------------------------------------------------------------------------------

def test_group_then_ungroup_is_the_identity(ctl):
    before = state(ctl)
    assert ctl.group_nodes(RES_NODES, "Residual") is None
    gid = ctl.last_group_id()
    group = ctl.document.group(gid)
    assert group.nodes == tuple(RES_NODES) and group.collapsed
    ports = block_ports(ctl.document, group)
    assert ports.inputs == (("h2", "in"), ("skip", "b")) and ports.outputs == ("skip",)
    ctl.set_block_open(gid, True)
    ctl.rename_block(gid, "Skip block")
    ctl.ungroup(gid)
    assert state(ctl) == before
    for _ in range(4):
        ctl.undo_stack.undo()
    assert state(ctl) == before


def test_grouping_refuses_nested_blocks_and_empty_selections(ctl):
    assert "Select" in ctl.group_nodes([])
    ctl.group_nodes(RES_NODES)
    assert "already in the block" in ctl.group_nodes(["h2", "a1"])


def test_removing_a_member_shrinks_its_block_and_undo_restores_it(ctl):
    before = state(ctl)
    ctl.group_nodes(["h2", "a2"])
    gid = ctl.last_group_id()
    ctl.remove(["a2"])
    assert ctl.document.group(gid).nodes == ("h2",)
    ctl.remove(["h2"])
    assert not ctl.document.has_group(gid)
    ctl.undo_stack.undo()
    ctl.undo_stack.undo()
    assert ctl.document.group(gid).nodes == ("h2", "a2")
    ctl.undo_stack.undo()
    assert state(ctl) == before


def test_renaming_a_member_keeps_it_in_its_block(ctl):
    ctl.group_nodes(RES_NODES)
    gid = ctl.last_group_id()
    assert "name of a block" in ctl.rename("x", gid)
    assert ctl.rename(ctl.document.group(gid).nodes[0], "first") is None
    assert "first" in ctl.document.group(gid).nodes


def test_moving_a_closed_block_moves_its_nodes(ctl):
    ctl.group_nodes(RES_NODES)
    gid = ctl.last_group_id()
    old = ctl.document.group(gid).position
    h2 = ctl.document.position("h2")
    ctl.move_nodes({}, {gid: (old, (old[0] + 50, old[1] - 10))})
    assert ctl.document.position("h2") == (h2[0] + 50, h2[1] - 10)
    ctl.undo_stack.undo()
    assert ctl.document.position("h2") == h2


def test_random_walk_of_200_block_edits_undoes_and_redoes_exactly(ctl):
    rng = random.Random(14)
    doc, stack = ctl.document, ctl.undo_stack
    states = {0: state(ctl)}
    for _ in range(200):
        move = rng.random()
        groups = doc.groups()
        free = [n.id for n in doc.nodes() if doc.group_of(n.id) is None]
        if move < 0.25 and free:
            ctl.group_nodes(rng.sample(free, rng.randint(1, min(4, len(free)))), "B")
        elif move < 0.4 and groups:
            ctl.ungroup(rng.choice(groups).id)
        elif move < 0.5 and groups:
            g = rng.choice(groups)
            ctl.set_block_open(g.id, g.collapsed)
        elif move < 0.6 and groups:
            g = rng.choice(groups)
            ctl.move_nodes({}, {g.id: (g.position, (g.position[0] + rng.randint(-50, 50),
                                                    g.position[1] + 7))})
        elif move < 0.65 and free:
            ctl.rename(rng.choice(free), f"n{rng.randint(0, 10**6)}")
        elif move < 0.75 and stack.canUndo():
            stack.undo()
            assert state(ctl) == states[stack.index()]
            continue
        elif move < 0.85 and stack.canRedo():
            stack.redo()
            assert state(ctl) == states[stack.index()]
            continue
        else:
            ctl.nudge([rng.choice(doc.nodes()).id], 10, 0, burst=rng.randint(0, 10**9))
        # A new edit drops the redo branch; record the state it made.
        states = {i: s for i, s in states.items() if i < stack.index()}
        states[stack.index()] = state(ctl)
    assert stack.count() > 40
    final = stack.index()
    while stack.canUndo():
        stack.undo()
        assert state(ctl) == states[stack.index()]
    while stack.index() < final:
        stack.redo()
        assert state(ctl) == states[stack.index()]


def _train(spec: GraphSpec, steps: int = 25) -> np.ndarray:
    cfg = TrainConfig.from_block(spec.training, epochs=1)
    program = compile_graph(spec, dtype="float64", seed=cfg.seed)
    data = make_dataset(cfg.dataset, seed=cfg.seed, **cfg.dataset_params)
    trainer = Trainer(program, data, cfg)
    for _ in range(steps):
        trainer.step()
    return program.theta.copy()


def test_a_grouped_graph_trains_to_the_same_weights_as_its_flat_form(ctl):
    flat = ctl.document.spec()
    ctl.group_nodes(RES_NODES, "Residual")
    grouped = ctl.document.spec()
    assert grouped.groups and not flat.groups
    reloaded = GraphSpec.from_json(grouped.to_json())
    np.testing.assert_array_equal(_train(reloaded), _train(flat))


# -- the block library --------------------------------------------------------------------

def test_shipped_blocks_are_a_folder_of_block_files(tmp_path):
    lib = BlockLibrary(tmp_path / "mine")
    entries = lib.entries()
    assert [e.title for e in entries if e.shipped] == ["Residual block", "Transformer"]
    assert entries[0].path == RESIDUAL_BLOCK


def test_save_block_to_the_library_then_drop_independent_copies(ctl, tmp_path):
    ctl.group_nodes(RES_NODES, "My skip")
    path = ctl.save_block(ctl.last_group_id())
    assert path.parent == tmp_path / "blocks"
    mine = [e for e in ctl.blocks.entries() if not e.shipped]
    assert [e.title for e in mine] == ["My skip"]
    spec = ctl.blocks.read(mine[0].path)
    a = ctl.insert_block(spec, (0, 400))
    b = ctl.insert_block(spec, (0, 700))
    assert a != b
    a_nodes, b_nodes = ctl.document.group(a).nodes, ctl.document.group(b).nodes
    assert a_nodes[0] == f"{a}/h2" and b_nodes[0] == f"{b}/h2"
    assert ctl.set_param(a_nodes[0], "units", 5) is None
    assert ctl.document.node(b_nodes[0]).params["units"] == 16
    ctl.undo_stack.undo()
    ctl.undo_stack.undo()
    assert not ctl.document.has_group(b) and not ctl.document.has_node(b_nodes[0])


def test_a_file_without_one_group_is_not_a_block(ctl, tmp_path):
    with pytest.raises(FileFormatError, match="not a block"):
        ctl.blocks.read(V1[0])
    assert ctl.insert_block(load_graph(V1[0]), (0, 0)) == ""


def test_the_shipped_transformer_block_drops_as_independent_copies_that_compile(ctl):
    entry = next(e for e in ctl.blocks.entries() if e.title == "Transformer")
    assert entry.shipped and entry.path == ROOT / "resources" / "blocks" / "transformer.json"
    spec = ctl.blocks.read(entry.path)
    assert [n.op for n in spec.nodes] == [
        "Identity", "LayerNorm", "MultiHeadAttention", "Add", "LayerNorm", "Dense", "GELU",
        "Dense", "Add"]
    ctl.new()
    x = ctl.add_node("Input", (0, 0))
    assert ctl.set_param(x, "shape", [8, 48]) is None
    a = ctl.insert_block(spec, (300, 0))
    b = ctl.insert_block(spec, (600, 0))
    assert ctl.connect(x, f"{a}/in", "in") is None
    assert ctl.connect(f"{a}/add2", f"{b}/in", "in") is None
    assert ctl.set_param(f"{a}/attn", "heads", 2) is None
    assert ctl.document.node(f"{b}/attn").params["heads"] == 4
    program = compile_graph(ctl.document.spec(), require_loss=False)
    assert program.shapes[f"{b}/add2"] == (None, 8, 48)


def test_the_gpt_example_is_two_shipped_transformer_blocks():
    spec = load_graph(ROOT / "resources" / "examples" / "tiny_gpt.json")
    block = load_graph(ROOT / "resources" / "blocks" / "transformer.json")
    assert [g.id for g in spec.groups] == ["block1", "block2"]
    params = {n.id: (n.op, n.params) for n in spec.nodes}
    for group in spec.groups:
        assert group.title == block.groups[0].title and group.collapsed
        assert [params[m] for m in group.nodes] == [(n.op, n.params) for n in block.nodes]


def test_the_residual_example_uses_the_shipped_block_and_trains():
    spec = load_graph(ROOT / "resources" / "examples" / "residual_block.json")
    block = load_graph(RESIDUAL_BLOCK)
    (group,) = spec.groups
    assert group.title == block.groups[0].title
    assert sorted(n.split("/")[-1] for n in group.nodes) == sorted(
        n.id for n in block.nodes)
    theta0 = compile_graph(spec).theta.copy()
    assert not np.array_equal(_train(spec, 10), theta0)


# -- wires --------------------------------------------------------------------------------

def test_insert_on_a_wire_connects_both_sides_as_one_step(ctl):
    before = state(ctl)
    node = ctl.add_node("Tanh", (0, 0))
    edge = EdgeSpec("h1", "out", "a1", "in")
    assert ctl.insert_on_wire(node, edge) is None
    doc = ctl.document
    assert not doc.has_edge(edge)
    assert doc.incoming(node, "in") == EdgeSpec("h1", "out", node, "in")
    assert doc.incoming("a1", "in") == EdgeSpec(node, "out", "a1", "in")
    ctl.undo_stack.undo()
    assert doc.has_edge(edge) and not doc.edges_of(node)
    ctl.undo_stack.undo()
    assert state(ctl) == before


def test_a_new_node_dropped_on_a_wire_is_one_undo_step(ctl):
    before = state(ctl)
    edge = EdgeSpec("h1", "out", "a1", "in")
    node, reason = ctl.add_node_on_wire("Sigmoid", (0, 0), edge)
    assert reason is None and ctl.document.incoming("a1", "in").src == node
    ctl.undo_stack.undo()
    assert state(ctl) == before
    node, reason = ctl.add_node_on_wire("Input", (0, 0), edge)
    assert "has no input" in reason and ctl.document.has_node(node)
    assert ctl.document.has_edge(edge)


def test_insert_on_a_wire_refuses_with_a_reason(ctl):
    edge = EdgeSpec("h1", "out", "a1", "in")
    src = ctl.add_node("Input", (0, 0))
    assert "has no input" in ctl.insert_on_wire(src, edge)
    dense = ctl.add_node("Dense", (0, 0))
    ctl.set_param(dense, "units", 3)  # a1 feeds a 16-unit Dense: a shape mismatch at skip
    assert ctl.insert_on_wire("a2", EdgeSpec("h1", "out", "a1", "in")).startswith(
        "The inputs of 'a2'")
    add = ctl.add_node("Add", (0, 0))
    assert ctl.connect("a3", add, "a") is None
    assert "loop" in ctl.insert_on_wire(add, EdgeSpec("h1", "out", "a1", "in"))
    count = ctl.undo_stack.count()
    reason = ctl.insert_on_wire(dense, EdgeSpec("h3", "out", "skip", "a"))
    assert reason and "Cannot insert" in reason and dense in reason
    assert ctl.undo_stack.count() == count


def test_waypoints_follow_a_rename_and_come_back_with_an_undone_delete(ctl):
    edge = EdgeSpec("x", "out", "h1", "in")
    ctl.set_waypoints(edge, [(50.0, 50.0)])
    ctl.rename("x", "inputs")
    moved = EdgeSpec("inputs", "out", "h1", "in")
    assert ctl.document.waypoints(moved) == [(50.0, 50.0)]
    ctl.disconnect(moved)
    assert moved.key not in ctl.document.spec().waypoints
    ctl.undo_stack.undo()
    assert ctl.document.waypoints(moved) == [(50.0, 50.0)]


def test_reroute_points_move_with_both_ends_by_the_same_step(ctl, tmp_path):
    edge = EdgeSpec("x", "out", "h1", "in")
    other = EdgeSpec("h2", "out", "a2", "in")
    ctl.set_waypoints(edge, [(100.0, 80.0), (140.0, 90.0)])
    ctl.set_waypoints(other, [(700.0, 10.0)])
    start = state(ctl)
    ctl.nudge(["x", "h1"], 30.0, -20.0, burst=1)
    ctl.nudge(["x", "h1"], 30.0, -20.0, burst=1)  # merged into the same step
    assert ctl.document.waypoints(edge) == [(160.0, 40.0), (200.0, 50.0)]
    assert ctl.document.waypoints(other) == [(700.0, 10.0)]  # its ends stayed
    moved = state(ctl)
    ctl.undo_stack.undo()
    assert state(ctl) == start
    ctl.undo_stack.redo()
    assert state(ctl) == moved
    path = tmp_path / "bent.json"
    ctl.save_as(path)
    again = Controller(blocks_dir=tmp_path / "b")
    again.open(path)
    assert again.document.waypoints(edge) == [(160.0, 40.0), (200.0, 50.0)]


def test_reroute_points_near_the_moved_end_follow_it_further(ctl):
    edge = EdgeSpec("x", "out", "h1", "in")
    ctl.set_waypoints(edge, [(60.0, 100.0), (180.0, 100.0)])
    old = ctl.document.position("h1")
    ctl.move_nodes({"h1": (old, (old[0], old[1] + 90.0))})
    (ax, ay), (bx, by) = ctl.document.waypoints(edge)
    assert (ax, bx) == (60.0, 180.0)  # a vertical move keeps them in their columns
    assert 100.0 < ay < by < 190.0
    ctl.undo_stack.undo()
    assert ctl.document.waypoints(edge) == [(60.0, 100.0), (180.0, 100.0)]


def test_moving_a_closed_block_carries_the_bends_inside_it(ctl):
    ctl.group_nodes(RES_NODES, "Residual")
    gid = ctl.last_group_id()
    inner = EdgeSpec("h2", "out", "a2", "in")
    ctl.set_waypoints(inner, [(500.0, 300.0)])
    ctl.nudge([], 40.0, 10.0, burst=2, group_ids=[gid])
    assert ctl.document.waypoints(inner) == [(540.0, 310.0)]


def test_follow_ends_is_exact_for_a_shared_step():
    points = [(0.1, 0.2), (1e6 + 0.3, -7.7)]
    assert follow_ends(points, (0.0, 0.0), (5.0, 5.0), (0.7, 0.1), (0.7, 0.1)) == [
        (0.1 + 0.7, 0.2 + 0.1), (1e6 + 0.3 + 0.7, -7.7 + 0.1)]
    assert follow_ends([(5.0, 0.0)], (0.0, 0.0), (10.0, 0.0), (0.0, 0.0), (0.0, 8.0)) == [
        (5.0, 4.0)]


def test_a_pasted_bent_wire_keeps_its_bends_and_a_pasted_note_its_text(ctl):
    edge = EdgeSpec("x", "out", "h1", "in")
    ctl.set_waypoints(edge, [(100.0, 80.0)])
    note = ctl.add_note("note", (0.0, 200.0, 150.0, 60.0), "inputs")
    before = state(ctl)
    text = ctl.copy_json(["x", "h1"], [note])
    x2, h2, note2 = ctl.paste_json(text, (1000.0, 1000.0))
    left = min(ctl.document.position("x")[0], ctl.document.position("h1")[0], 0.0)
    top = min(ctl.document.position("x")[1], ctl.document.position("h1")[1], 200.0)
    dx, dy = 1000.0 - left, 1000.0 - top
    assert ctl.document.waypoints(EdgeSpec(x2, "out", h2, "in")) == [(100.0 + dx, 80.0 + dy)]
    assert ctl.document.note(note2).rect == (dx, 200.0 + dy, 150.0, 60.0)
    assert ctl.document.note(note2).text == "inputs"
    ctl.undo_stack.undo()
    assert state(ctl) == before
    assert ctl.paste_json(ctl.copy_json([], [note])) == [f"{note}_2"]  # notes alone paste too


# -- nudge, align, distribute -------------------------------------------------------------

def test_a_burst_of_nudges_is_one_undo_step(ctl):
    start = ctl.document.position("h1")
    count = ctl.undo_stack.count()
    for _ in range(5):
        ctl.nudge(["h1"], 10, 0, burst=1)
    assert ctl.document.position("h1") == (start[0] + 50, start[1])
    assert ctl.undo_stack.count() == count + 1
    ctl.nudge(["h1"], 0, 10, burst=2)
    assert ctl.undo_stack.count() == count + 2
    ctl.undo_stack.undo()
    ctl.undo_stack.undo()
    assert ctl.document.position("h1") == start


def test_align_and_distribute(ctl):
    doc = ctl.document
    ids = ["h2", "a2", "h3"]
    sizes = {n: (152.0, 52.0) for n in ids}
    assert ctl.align(ids, "top", sizes) is None
    assert len({doc.position(n)[1] for n in ids}) == 1
    assert ctl.align(ids, "hcenter", sizes) is None
    assert len({doc.position(n)[0] for n in ids}) == 1
    for i, n in enumerate(ids):
        ctl.move_nodes({n: (doc.position(n), (i * i * 100.0, 0.0))})
    assert ctl.distribute(ids, "horizontal", sizes) is None
    xs = sorted(doc.position(n)[0] for n in ids)
    assert xs == [0.0, 200.0, 400.0]
    assert "three" in ctl.distribute(ids[:2], "vertical")
    assert "two" in ctl.align(ids[:1], "left")


# -- the engine works unchanged on grouped graphs ----------------------------------------------

def test_cli_trace_and_exports_work_on_a_grouped_graph(tmp_path, capsys):
    from engine.cli.main import main
    from engine.export import export

    path = ROOT / "resources" / "examples" / "residual_block.json"
    assert main(["trace", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr()[0])
    assert {"residual/dense1", "residual/dense2"} <= {p["node"] for p in data["parameters"]}
    assert any(e["from"] == "residual/add.out" for e in data["edges"])
    for fmt, out in (("onnx", tmp_path / "m.onnx"), ("torch", tmp_path / "torch"),
                     ("numpy", tmp_path / "np")):
        assert export(load_graph(path), fmt, out)


# -- fuzzing the version 2 blocks --------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-1e3, 1e3) | st.text(max_size=4)
    | st.sampled_from(["x", "h1", "note", "frame", "x.out->h1.in"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "title", "nodes", "collapsed", "position", "kind", "text",
                         "rect", "x.out->h1.in"]), inner, max_size=5),
    max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(groups=_json, notes=_json, waypoints=_json)
def test_any_groups_notes_or_waypoints_load_or_give_a_sentence(groups, notes, waypoints):
    raw = json.loads(V1[-1].read_text())
    raw.update(version=2, groups=groups, notes=notes, waypoints=waypoints)
    try:
        spec = GraphSpec.from_dict(raw, "fuzz.json")
    except FileFormatError as exc:
        assert "fuzz.json" in str(exc)
        return
    assert GraphSpec.from_json(spec.to_json()) == spec  # what loads, saves and loads again
