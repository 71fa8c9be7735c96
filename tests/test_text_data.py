"""Text as next-character data, and the tiny GPT example learning it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli.main import main
from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec, load_graph
from engine.data import make_dataset
from engine.data.text import (
    decode,
    encode,
    fables_text,
    load_text_dataset,
    read_text,
    text_dataset,
    unigram_entropy,
    vocabulary,
)
from engine.errors import DataError
from engine.training.trainer import TrainConfig, Trainer

GPT = Path(__file__).resolve().parents[1] / "resources" / "examples" / "tiny_gpt.json"


def test_samples_are_blocks_and_targets_the_next_characters():
    text = "abracadabra, abracadabra!"
    ds = text_dataset(text, block_size=4, stride=3)
    vocab = vocabulary(text)
    assert ds.class_names == vocab and ds.num_classes == len(vocab)
    assert ds.x.shape == (len(range(0, len(text) - 4, 3)), 4) and ds.y.shape == ds.x.shape
    for k, start in enumerate(range(0, len(text) - 4, 3)):
        assert decode(ds.x[k], vocab) == text[start:start + 4]
        assert decode(ds.y[k], vocab) == text[start + 1:start + 5]
    assert ds.preprocessing["block_size"] == 4
    np.testing.assert_array_equal(encode("cab", vocab), [vocab.index(c) for c in "cab"])
    with pytest.raises(DataError, match="'z' is not in the model's vocabulary"):
        encode("zebra", vocab)


def test_unigram_entropy_is_the_entropy_of_the_character_frequencies():
    assert unigram_entropy("aaaa") == 0.0
    assert unigram_entropy("abab") == pytest.approx(np.log(2))
    assert unigram_entropy("aab") == pytest.approx(-(2 / 3) * np.log(2 / 3) - np.log(1 / 3) / 3)


def test_too_short_or_single_character_texts_are_refused():
    with pytest.raises(DataError, match="too few for one sample of 8"):
        text_dataset("short", block_size=8)
    with pytest.raises(DataError, match="single character"):
        text_dataset("aaaaaaaaaa", block_size=3)


def test_bad_utf8_names_the_line_and_column(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("first line\nsecond \xe9t\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 2, column 8 holds the byte 0xe9"):
        read_text(path)
    with pytest.raises(DataError, match="Cannot open"):
        read_text(tmp_path / "missing.txt")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_either_load_or_give_a_sentence(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "t.txt"
    path.write_bytes(data)
    try:
        text = read_text(path)
    except DataError as exc:
        assert "line" in str(exc) and "column" in str(exc)
        return
    assert isinstance(text, str)
    try:
        ds = text_dataset(text, block_size=2)
    except DataError as exc:
        assert str(exc).endswith(".")
        return
    assert ds.x.max() < ds.num_classes


def test_text_file_settings_are_checked(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello world, hello again\r\n", encoding="utf-8")
    ds = load_text_dataset(path, block_size=5)
    assert ds.name == "t" and "\r" not in ds.class_names
    with pytest.raises(DataError, match="no setting 'samples'"):
        load_text_dataset(path, samples=3)
    with pytest.raises(DataError, match="block_size"):
        load_text_dataset(path, block_size=0)


def test_bundled_fables():
    ds = make_dataset("fables", block_size=16)
    assert ds.x.shape[1] == 16 and len(ds) > 1000
    assert 40 <= ds.num_classes <= 90
    assert 2.5 < ds.preprocessing["unigram_entropy"] < 3.5
    start = "".join(decode(row, ds.class_names) for row in ds.x[:8])
    assert start == fables_text()[:128] and "THE FOX AND THE GRAPES" in start


def small_gpt(block: int = 12, d: int = 16) -> GraphSpec:
    """The tiny GPT example with smaller sizes (the same wiring), so a test trains it fast."""
    data = json.loads(GPT.read_text())
    for node in data["nodes"]:
        p = node.setdefault("params", {})
        if node["op"] == "Input":
            p["shape"] = [block]
        elif node["op"] == "Target":
            p["features"] = block
        elif node["id"] == "positions":
            p["shape"] = [block, d]
        elif node["op"] == "Embedding":
            p["dim"] = d
        elif node["op"] == "MultiHeadAttention":
            p["heads"] = 2
        elif node["op"] == "Dense" and node["id"].endswith("/mlp"):
            p["units"] = 2 * d
        elif node["op"] == "Dense" and node["id"].endswith("/proj"):
            p["units"] = d
    data["training"]["dataset_params"] = {"block_size": block}
    return GraphSpec.from_dict(data)


def test_the_gpt_example_learns_below_the_unigram_entropy():
    """Bounded steps: a model that ignores the context cannot get below the unigram entropy,
    so getting there shows the attention and the positions are used."""
    spec = small_gpt()
    cfg = TrainConfig.from_block(spec.training, lr=0.01)
    data = make_dataset("fables", **cfg.dataset_params)
    program = compile_graph(spec, seed=0)
    trainer = Trainer(program, data, cfg)
    baseline = data.preprocessing["unigram_entropy"]
    losses = [trainer.step().loss for _ in range(120)]
    assert losses[0] > baseline  # it starts with no knowledge (log 62 ≈ 4.1)
    assert np.mean(losses[-20:]) < baseline - 0.4, (baseline, losses[-20:])


def test_the_full_gpt_example_compiles_with_its_data():
    spec = load_graph(GPT)
    cfg = TrainConfig.from_block(spec.training)
    data = make_dataset(cfg.dataset, **cfg.dataset_params)
    program = compile_graph(spec)
    assert program.shapes["head"] == (None, cfg.dataset_params["block_size"], data.num_classes)
    Trainer(program, data, cfg)  # the data fit the graph


def test_cli_trains_on_a_text_file(tmp_path, capsys):
    text = tmp_path / "poem.txt"
    text.write_text("the cat sat on the mat. the dog sat on the log. " * 20, encoding="utf-8")
    graph = tmp_path / "g.json"
    spec = small_gpt(block=8, d=8).to_dict()
    for node in spec["nodes"]:
        if node["op"] in ("Embedding",):
            node["params"]["size"] = len(vocabulary(text.read_text()))
        if node["id"] == "head":
            node["params"]["units"] = len(vocabulary(text.read_text()))
    spec["training"]["epochs"] = 1
    graph.write_text(json.dumps(spec))
    assert main(["train", str(graph), "--text", str(text), "--block-size", "8"]) == 0
    assert "loss" in capsys.readouterr().err
