"""Every example file: save → open round-trips to an identical document, and to the same bytes."""

import json
from pathlib import Path

import pytest

from designer.controller import Controller
from engine.core.spec import load_graph, save_graph

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "resources" / "examples").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_save_open_round_trips_every_example(path, tmp_path, qapp):
    first = Controller(recovery_dir=tmp_path / "r1")
    first.open(path)
    saved = tmp_path / path.name
    first.save_as(saved)
    again = Controller(recovery_dir=tmp_path / "r2")
    again.open(saved)
    assert again.document.spec().to_dict() == first.document.spec().to_dict()
    assert again.document.spec().to_dict() == load_graph(path).to_dict()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_files_are_written_deterministically(path, tmp_path):
    out = tmp_path / path.name
    save_graph(load_graph(path), out)
    assert json.loads(out.read_text()) == json.loads(path.read_text())
    assert out.read_text() == path.read_text(), "re-save the example with engine.core.spec"
