"""The command line: train/trace/gradcheck outputs, exit codes and clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "resources" / "examples"


def test_train_json_prints_one_object_per_epoch(capsys):
    assert main(["train", str(EXAMPLES / "xor_mlp.json"), "--epochs", "5", "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert all({"loss", "accuracy"} <= set(r) for r in rows)
    assert "5/5" in err  # the progress bar


def test_train_with_validation_split_reports_val_loss(capsys):
    assert main(["train", str(EXAMPLES / "sine_regression.json"), "--epochs", "2", "--json",
                 "--validation-split", "0.25", "--optimizer", "sgd", "--lr", "0.05"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr()[0].splitlines()]
    assert "val_loss" in rows[-1] and "accuracy" not in rows[-1]


def test_train_on_csv(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    lines = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}" for i in range(40)]
    csv.write_text("\n".join(lines) + "\n")
    assert main(["train", str(EXAMPLES / "xor_mlp.json"), "--csv", str(csv), "--target", "label",
                 "--epochs", "2", "--json"]) == 0
    assert len(capsys.readouterr()[0].splitlines()) == 2


def test_trace_lists_every_edge_and_parameter(capsys):
    assert main(["trace", str(EXAMPLES / "chain_rule.json"), "--dtype", "float64", "--json"]) == 0
    data = json.loads(capsys.readouterr()[0])
    assert len(data["edges"]) == 11
    assert {p["node"] for p in data["parameters"]} == {"a", "b", "c"}
    # Scalar edges carry their full gradient values.
    edge = next(e for e in data["edges"] if e["from"] == "a.out")
    assert edge["grad"]["values"] is not None
    # Every tensor also comes with a small histogram of its values.
    hist = edge["value"]["histogram"]
    assert sum(hist["counts"]) == 1 and len(hist["edges"]) == len(hist["counts"]) + 1
    assert data["dtype"] == "float64"


def test_gradcheck_passes_and_exit_status(capsys):
    assert main(["gradcheck", str(EXAMPLES / "residual_block.json"), "--batch-size", "8"]) == 0
    assert "matches" in capsys.readouterr()[0]
    # An impossible tolerance fails with status 1.
    assert main(["gradcheck", str(EXAMPLES / "xor_mlp.json"), "--tolerance", "0",
                 "--atol", "0"]) == 1


@pytest.mark.parametrize("args, words", [
    (["train", "missing.json"], "Cannot open"),
    (["train", str(EXAMPLES / "xor_mlp.json"), "--dataset", "nope"], "nope"),
    (["train", str(EXAMPLES / "xor_mlp.json"), "--lr", "-1"], "learning rate"),
    (["train", str(EXAMPLES / "xor_mlp.json"), "--dataset", "sine"], "expects 2"),
])
def test_bad_input_gives_a_clear_error(args, words, capsys):
    assert main(args) == 2
    err = capsys.readouterr()[1]
    assert err.startswith("error:") and words in err
    assert "Traceback" not in err


def test_compile_errors_are_listed(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "gradscape-graph", "version": 1, "nodes": [
        {"id": "x", "op": "Input"}, {"id": "d", "op": "Dense"}, {"id": "l", "op": "MSELoss"}],
        "edges": [{"from": "x.out", "to": "d.in"}]}))
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr()[1]
    assert "Input 'prediction' of node 'l'" in err and "Input 'target' of node 'l'" in err


def test_python_dash_m_engine_help():
    result = subprocess.run([sys.executable, "-m", "engine", "train", "--help"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--batch-size" in result.stdout


@pytest.mark.parametrize("command", [
    ["train", str(EXAMPLES / "xor_mlp.json"), "--epochs", "1", "--out"],
    ["export", str(EXAMPLES / "xor_mlp.json"), "--format", "onnx", "--out"],
])
def test_unwritable_output_gives_a_clear_error(command, tmp_path, capsys):
    target = tmp_path / "missing-folder" / "model.out"
    assert main([*command, str(target)]) == 2
    err = capsys.readouterr()[1]
    assert "Traceback" not in err
    assert f"error: cannot access {target}: No such file or directory." in err


def test_race_sweep_and_explain_from_the_command_line(capsys):
    xor, chain = str(EXAMPLES / "xor_mlp.json"), str(EXAMPLES / "chain_rule.json")
    assert main(["race", xor, "--epochs", "3", "--contender", "GD=sgd:2:0",
                 "--contender", "CE=sgd:2:0:BCELoss"]) == 0
    out = capsys.readouterr()[0]
    assert "whole training set (300 samples)" in out
    assert out.splitlines()[2].startswith("GD") and out.splitlines()[3].startswith("CE")
    assert main(["race", xor, "--contender", "oops"]) == 2
    assert "NAME=OPT:LR:BATCH" in capsys.readouterr()[1]
    assert main(["sweep", xor, "--steps", "5", "--count", "3"]) == 0
    out = capsys.readouterr()[0]
    assert out.count("  lr ") == 3
    assert main(["explain", chain, "a"]) == 0
    out = capsys.readouterr()[0]
    assert "[2(h − y)/N] · 2 [c] · 1 [Add]" in out and "∂g/∂f = 2f + b" in out
    assert "✓ equals" in out


def test_train_warns_when_relus_die(capsys):
    assert main(["train", str(EXAMPLES / "spirals_classifier.json"), "--dataset", "circles",
                 "--optimizer", "sgd", "--lr", "3", "--epochs", "12"]) == 0
    assert "warning: Most ReLU units are dead" in capsys.readouterr()[1]
