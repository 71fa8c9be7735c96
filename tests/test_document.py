"""GraphDocument, its undo commands, serialization and the layered layout (no widgets)."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtGui import QUndoStack

from designer.document import commands as cmd
from designer.document.graph_document import GraphDocument
from designer.document.layout import X_SPACING, Y_SPACING, layered_layout
from designer.document.serialize import load_file, save_file, to_json
from engine.core.spec import EdgeSpec, GraphSpec, NodeSpec
from engine.errors import FileFormatError


def wire(src: str, dst: str, port: str = "in") -> EdgeSpec:
    return EdgeSpec(src, "out", dst, port)


@pytest.fixture
def doc(qapp):
    return GraphDocument()


@pytest.fixture
def stack(qapp):
    return QUndoStack()


@pytest.fixture
def mlp(doc, stack):
    """x -> h1 -> a1 -> h2 -> loss.prediction, y -> loss.target."""
    nodes = [
        NodeSpec("x", "Input", {"features": 3}),
        NodeSpec("h1", "Dense", {"units": 4}),
        NodeSpec("a1", "Tanh"),
        NodeSpec("h2", "Dense", {"units": 1}),
        NodeSpec("y", "Target", {"features": 1}),
        NodeSpec("loss", "MSELoss"),
    ]
    for i, n in enumerate(nodes):
        stack.push(cmd.AddNode(doc, n, (i * 100.0, 0.0)))
    for e in [wire("x", "h1"), wire("h1", "a1"), wire("a1", "h2"),
              wire("h2", "loss", "prediction"), wire("y", "loss", "target")]:
        stack.push(cmd.Connect(doc, e))
    stack.clear()
    return doc


def check_do_undo_redo(doc: GraphDocument, stack: QUndoStack, command) -> dict:
    before = doc.spec().to_dict()
    stack.push(command)
    after = doc.spec().to_dict()
    assert after != before
    stack.undo()
    assert doc.spec().to_dict() == before
    stack.redo()
    assert doc.spec().to_dict() == after
    return after


class Recorder:
    """Records (signal name, args, revision at emit time) for every document signal."""

    NAMES = ("node_added", "node_removed", "node_changed", "node_renamed", "node_moved",
             "edge_added", "edge_removed", "training_changed", "reset", "changed")

    def __init__(self, doc: GraphDocument):
        self.events: list[tuple[str, tuple, int]] = []
        for name in self.NAMES:
            getattr(doc, name).connect(
                lambda *args, _n=name: self.events.append((_n, args, doc.revision)))

    def names(self) -> list[str]:
        return [e[0] for e in self.events]


# -- reading -------------------------------------------------------------------------

def test_empty_document(doc):
    assert doc.nodes() == [] and doc.edges() == []
    assert doc.revision == 0
    assert doc.spec().to_dict() == GraphSpec().to_dict()


def test_reading_helpers(mlp):
    doc = mlp
    assert [n.id for n in doc.nodes()] == ["x", "h1", "a1", "h2", "y", "loss"]
    assert doc.node("h1").params == {"units": 4}
    assert doc.has_node("a1") and not doc.has_node("zz")
    assert doc.edges_of("h1") == [wire("x", "h1"), wire("h1", "a1")]
    assert doc.incoming("loss", "target") == wire("y", "loss", "target")
    assert doc.incoming("x", "in") is None
    assert doc.position("h1") == (100.0, 0.0)
    with pytest.raises(KeyError):
        doc.node("nope")


def test_unique_id(mlp):
    assert mlp.unique_id("dense") == "dense"
    assert mlp.unique_id("h1") == "h1_2"
    assert mlp.unique_id("x", taken={"x_2"}) == "x_3"
    assert mlp.unique_id("a.b") == "a_b"
    assert mlp.unique_id("   ") == "node"


def test_analysis_cached_per_revision(mlp):
    first = mlp.analysis()
    assert first.ok, first.diagnostics
    assert mlp.analysis() is first
    assert first.shapes["h1"] == (None, 4)
    mlp.set_params("h1", {"units": 5})
    second = mlp.analysis()
    assert second is not first and second.shapes["h1"] == (None, 5)


# -- signals -------------------------------------------------------------------------

def test_signals_after_change_with_revision(doc):
    rec = Recorder(doc)
    doc.insert_node(NodeSpec("a", "Input"), (1, 2))
    doc.insert_node(NodeSpec("b", "Dense"), (3, 4))
    doc.insert_edge(wire("a", "b"))
    doc.set_params("b", {"units": 3})
    doc.set_position("a", (5, 6))
    doc.rename_node("a", "c")
    doc.set_training({"lr": 0.1})
    doc.take_edge(wire("c", "b"))
    doc.take_node("b")
    doc.load(GraphSpec())
    assert rec.names() == [
        "node_added", "changed", "node_added", "changed", "edge_added", "changed",
        "node_changed", "changed", "node_moved", "changed", "node_renamed", "changed",
        "training_changed", "changed", "edge_removed", "changed", "node_removed", "changed",
        "reset", "changed",
    ]
    # Each specific signal and its `changed` see the same, already incremented revision.
    revisions = [e[2] for e in rec.events]
    assert revisions == [r for r in range(1, 11) for _ in range(2)]
    assert rec.events[0][1] == ("a",)
    assert rec.events[4][1] == (wire("a", "b"),)
    assert rec.events[10][1] == ("a", "c")


def test_signal_sees_new_state(doc):
    seen = []
    doc.node_added.connect(lambda i: seen.append(doc.position(i)))
    doc.node_renamed.connect(lambda old, new: seen.append(doc.has_node(new)))
    doc.insert_node(NodeSpec("a", "Input"), (7, 8))
    doc.rename_node("a", "b")
    assert seen == [(7.0, 8.0), True]


def test_take_node_with_edges_refused(mlp):
    with pytest.raises(ValueError):
        mlp.take_node("h1")


def test_insert_duplicates_refused(mlp):
    with pytest.raises(ValueError):
        mlp.insert_node(NodeSpec("x", "Input"), (0, 0))
    with pytest.raises(ValueError):
        mlp.insert_edge(wire("x", "h1"))
    with pytest.raises(KeyError):
        mlp.insert_edge(wire("x", "ghost"))


def test_params_are_copied(doc):
    params = {"shape": [1, 2]}
    doc.insert_node(NodeSpec("c", "Constant", params), (0, 0))
    params["shape"].append(3)
    assert doc.node("c").params == {"shape": [1, 2]}


# -- commands: do -> undo -> redo ----------------------------------------------------

def test_add_node(doc, stack):
    command = cmd.AddNode(doc, NodeSpec("d", "Dense", {"units": 2}), (10, 20))
    assert command.text() == "Add Dense"
    after = check_do_undo_redo(doc, stack, command)
    assert after["layout"] == {"d": [10.0, 20.0]}


def test_remove_node_restores_indices(mlp, stack):
    command = cmd.RemoveItems(mlp, ["a1"])
    assert command.text() == "Delete a1"
    after = check_do_undo_redo(mlp, stack, command)
    assert [n["id"] for n in after["nodes"]] == ["x", "h1", "h2", "y", "loss"]
    assert len(after["edges"]) == 3


def test_remove_several_nodes_and_extra_edges(mlp, stack):
    command = cmd.RemoveItems(mlp, ["h1", "loss"], [wire("a1", "h2")])
    assert command.text() == "Delete 2 nodes"
    after = check_do_undo_redo(mlp, stack, command)
    assert after["edges"] == []


def test_remove_edge_only(mlp, stack):
    command = cmd.RemoveItems(mlp, [], [wire("h1", "a1")])
    assert command.text() == "Delete wire h1 → a1"
    check_do_undo_redo(mlp, stack, command)


def test_move_nodes(mlp, stack):
    command = cmd.MoveNodes(mlp, {"x": ((0, 0), (5, 5)), "h1": ((100, 0), (50, 50)),
                                  "a1": ((200, 0), (1, 1))})
    assert command.text() == "Move 3 nodes"
    check_do_undo_redo(mlp, stack, command)
    assert mlp.position("h1") == (50.0, 50.0)
    assert cmd.MoveNodes(mlp, {"x": ((0, 0), (1, 1))}).text() == "Move x"


def test_connect(doc, stack):
    doc.insert_node(NodeSpec("h1", "Dense"), (0, 0))
    doc.insert_node(NodeSpec("a1", "ReLU"), (0, 0))
    command = cmd.Connect(doc, wire("h1", "a1"))
    assert command.text() == "Connect h1 → a1"
    check_do_undo_redo(doc, stack, command)


def test_connect_replaces_wire_in_one_step(mlp, stack):
    before = mlp.spec().to_dict()
    stack.push(cmd.Connect(mlp, wire("x", "a1")))
    assert stack.count() == 1
    assert mlp.incoming("a1", "in") == wire("x", "a1")
    assert wire("h1", "a1") not in mlp.edges()
    assert mlp.edges().index(wire("x", "a1")) == 1  # takes the old wire's place
    stack.undo()
    assert mlp.spec().to_dict() == before


def test_connect_named_port_text(mlp):
    assert cmd.Connect(mlp, wire("h2", "loss", "prediction")).text() == \
        "Connect h2 → loss.prediction"


def test_disconnect(mlp, stack):
    command = cmd.Disconnect(mlp, wire("a1", "h2"))
    assert command.text() == "Disconnect a1 → h2"
    check_do_undo_redo(mlp, stack, command)


def test_set_param(mlp, stack):
    after = check_do_undo_redo(mlp, stack, cmd.SetParam(mlp, "h1", "units", 9))
    assert after["nodes"][1]["params"] == {"units": 9}


def test_set_param_merges(mlp, stack):
    before = mlp.spec().to_dict()
    for units in (5, 6, 7, 8):
        stack.push(cmd.SetParam(mlp, "h1", "units", units))
    assert stack.count() == 1
    assert stack.text(0) == "Set h1.units = 8"
    assert mlp.node("h1").params["units"] == 8
    stack.undo()
    assert mlp.spec().to_dict() == before
    stack.redo()
    assert mlp.node("h1").params["units"] == 8


def test_set_param_no_merge_across_params_or_nodes(mlp, stack):
    stack.push(cmd.SetParam(mlp, "h1", "units", 5))
    stack.push(cmd.SetParam(mlp, "h1", "bias", False))
    stack.push(cmd.SetParam(mlp, "h2", "bias", False))
    stack.push(cmd.SetParam(mlp, "h2", "units", 2, merge=False))
    stack.push(cmd.SetParam(mlp, "h2", "units", 3, merge=False))
    assert stack.count() == 5


def test_rename(mlp, stack):
    command = cmd.RenameNode(mlp, "h1", "hidden")
    assert command.text() == "Rename h1 → hidden"
    after = check_do_undo_redo(mlp, stack, command)
    assert {"from": "x.out", "to": "hidden.in"} in after["edges"]
    assert {"from": "hidden.out", "to": "a1.in"} in after["edges"]
    assert "hidden" in after["layout"] and "h1" not in after["layout"]
    assert [n["id"] for n in after["nodes"]][1] == "hidden"


def test_paste_items(mlp, stack):
    command = cmd.PasteItems(
        mlp, [(NodeSpec("p1", "Dense"), (1, 1)), (NodeSpec("p2", "ReLU"), (2, 2))],
        [wire("p1", "p2")])
    assert command.text() == "Paste 2 nodes"
    after = check_do_undo_redo(mlp, stack, command)
    assert after["edges"][-1] == {"from": "p1.out", "to": "p2.in"}


def test_set_training(mlp, stack):
    rec = Recorder(mlp)
    check_do_undo_redo(mlp, stack, cmd.SetTraining(mlp, {"optimizer": "adam", "lr": 0.01}))
    assert "training_changed" in rec.names()
    assert mlp.training() == {"optimizer": "adam", "lr": 0.01}


def test_load_replaces_everything(mlp):
    rec = Recorder(mlp)
    spec = GraphSpec((NodeSpec("a", "Input"),), (), {}, {"epochs": 2})
    mlp.load(spec)
    assert rec.names() == ["reset", "changed"]
    assert [n.id for n in mlp.nodes()] == ["a"]
    assert mlp.position("a") == (0.0, 0.0)
    assert mlp.training() == {"epochs": 2}


# -- serialize -----------------------------------------------------------------------

def test_save_load_round_trip(mlp, tmp_path):
    path = tmp_path / "g.json"
    save_file(mlp, path)
    assert path.read_text(encoding="utf-8") == to_json(mlp)
    spec = load_file(path)
    other = GraphDocument()
    other.load(spec)
    assert other.spec().to_dict() == mlp.spec().to_dict()


def test_load_file_refuses_dangling_wire(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "gradscape-graph", "version": 1, '
                    '"nodes": [{"id": "a", "op": "Input"}], '
                    '"edges": [{"from": "a.out", "to": "b.in"}]}', encoding="utf-8")
    with pytest.raises(FileFormatError, match="does not exist"):
        load_file(path)


def test_load_file_malformed(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(FileFormatError):
        load_file(path)


# -- layout --------------------------------------------------------------------------

def test_layered_layout_left_to_right(mlp):
    pos = layered_layout([n.id for n in mlp.nodes()], mlp.edges())
    for e in mlp.edges():
        assert pos[e.src][0] < pos[e.dst][0]
    assert pos["x"][0] == 0.0 and pos["h1"][0] == X_SPACING
    # The target sits just left of the loss, not at the far left.
    assert pos["y"][0] == pos["loss"][0] - X_SPACING


def test_layered_layout_centres_layers():
    edges = [wire("a", "c"), wire("b", "c")]
    pos = layered_layout(["a", "b", "c"], edges, origin=(10, 50))
    assert pos["c"] == (10 + X_SPACING, 50.0)
    assert sorted([pos["a"][1], pos["b"][1]]) == [50 - Y_SPACING / 2, 50 + Y_SPACING / 2]


def test_layered_layout_deep_chain_and_cycle():
    ids = [f"n{i}" for i in range(5000)]
    edges = [wire(a, b) for a, b in itertools.pairwise(ids)]
    pos = layered_layout(ids, edges)
    assert pos["n4999"][0] == 4999 * X_SPACING
    cyc = layered_layout(["p", "q"], [wire("p", "q"), wire("q", "p")])
    assert set(cyc) == {"p", "q"}
