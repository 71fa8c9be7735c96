"""Saves killed with SIGKILL at random moments never leave the previous file unreadable.

A forked child saves the same file over and over, alternating two versions; the test kills
it after a random delay, then the file must load and be exactly one of the two versions.
Forking (not a fresh interpreter) keeps each round to milliseconds.
"""

import os
import random
import signal
import time

import numpy as np
import pytest

from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec, load_graph, save_graph
from engine.files import model_file as mf

KILLS = 50
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")


def _big_graph(tag: str, n: int = 400) -> GraphSpec:
    """A chain of n ReLU nodes (about 60 KB of JSON)."""
    nodes = [{"id": "x", "op": "Input", "params": {"features": 2}}]
    edges = []
    prev = "x"
    for i in range(n):
        nid = f"{tag}{i}"
        nodes.append({"id": nid, "op": "ReLU"})
        edges.append({"from": f"{prev}.out", "to": f"{nid}.in"})
        prev = nid
    layout = {n["id"]: [float(i), 0.0] for i, n in enumerate(nodes)}
    return GraphSpec.from_dict({"format": "gradscape-graph", "version": 1, "nodes": nodes,
                                "edges": edges, "layout": layout})


def _kill_while_saving(save_forever, rng: random.Random) -> None:
    """Fork a child that saves in a loop; SIGKILL it after a random delay."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.write(write_end, b"go")
            save_forever()
        finally:
            os._exit(0)
    os.close(write_end)
    os.read(read_end, 2)
    os.close(read_end)
    time.sleep(rng.uniform(0.0, 0.03))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_graph_save_killed_50_times(tmp_path):
    path = tmp_path / "graph.json"
    versions = [_big_graph("a"), _big_graph("b")]
    texts = {v.to_json() for v in versions}
    save_graph(versions[0], path)

    def save_forever():
        k = 0
        while True:
            save_graph(versions[k % 2], path)
            k += 1

    rng = random.Random(17)
    mid_save = 0
    for _ in range(KILLS):
        _kill_while_saving(save_forever, rng)
        load_graph(path)  # readable ...
        assert path.read_text(encoding="utf-8") in texts  # ... and one whole version
        leftovers = list(tmp_path.glob(".graph.json.*.tmp"))
        mid_save += bool(leftovers)
        assert len(leftovers) <= 1  # each save clears the temp files of killed saves
    assert mid_save > 0  # some kills did land inside a save
    save_graph(versions[0], path)
    assert list(tmp_path.glob(".graph.json.*.tmp")) == []


def test_model_save_killed_50_times(tmp_path):
    spec = GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 64}},
                  {"id": "d", "op": "Dense", "params": {"units": 512}}],
        "edges": [{"from": "x.out", "to": "d.in"}]})
    program = compile_graph(spec, require_loss=False)
    states = [program.theta.copy(), -program.theta]
    path = tmp_path / "model.gsmodel"
    mf.save_model(path, spec, program)

    def save_forever():
        k = 0
        while True:
            np.copyto(program.theta, states[k % 2])
            mf.save_model(path, spec, program)
            k += 1

    rng = random.Random(18)
    for _ in range(KILLS):
        _kill_while_saving(save_forever, rng)
        loaded = mf.load_model(path)
        weights = loaded.build_program().theta
        assert any(np.array_equal(weights, s) for s in states)
