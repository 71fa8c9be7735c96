"""A run that stops learning gets a sentence: loss at chance level, most ReLUs dead."""

import math

import numpy as np
import pytest

from designer.training import session as states
from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.data import make_dataset
from engine.errors import DataError
from engine.training.health import (
    STUCK_WINDOW,
    chance_accuracy,
    chance_loss,
    diagnose_run,
)
from engine.training.trainer import TrainConfig, Trainer
from tests.gui import EXAMPLES, make_window, open_example


def test_chance_loss_is_the_best_constant_guess():
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    assert chance_loss("MSELoss", y) == pytest.approx(0.25)  # predict 0.5
    assert chance_loss("BCELoss", y) == pytest.approx(math.log(2))
    assert chance_loss("CrossEntropyLoss", np.array([0, 1, 2, 0, 1, 2])) == pytest.approx(
        math.log(3))
    assert chance_loss("MSELoss", y, reduction="sum") is None
    assert chance_accuracy(np.array([0, 0, 0, 1])) == 0.75
    one_hot = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert chance_loss("CrossEntropyLoss", one_hot) == pytest.approx(
        -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert chance_accuracy(one_hot) == 0.5


def test_chance_of_next_character_targets_is_the_unigram_entropy():
    # (samples, T) character ids, as a text data set's targets: the character frequencies
    # over all positions, not the rows read as one-hot vectors
    y = np.array([[0.0, 1.0, 1.0, 2.0], [1.0, 1.0, 3.0, 1.0]])
    freq = np.array([1, 5, 1, 1]) / 8
    assert chance_loss("CrossEntropyLoss", y) == pytest.approx(-(freq * np.log(freq)).sum())
    assert chance_accuracy(y) == pytest.approx(5 / 8)


def test_stuck_at_chance_and_dead_relus_are_named():
    flat = [0.6931] * STUCK_WINDOW
    messages = diagnose_run(flat, math.log(2), {"a1": 0.97, "a2": 0.3}, 0.5, 0.5, lr=100.0)
    text = " ".join(messages)
    assert "chance level" in text and "0.6931" in text
    assert "a1 (97% zero)" in text and "a2" not in text
    assert "now 100" in text and "most common class" in text
    learning = list(np.linspace(0.69, 0.2, STUCK_WINDOW))
    assert diagnose_run(learning, math.log(2), {"a1": 0.2}, 0.9, 0.5) == []
    assert diagnose_run(flat[:10], math.log(2)) == []  # too short to judge


def test_a_run_with_a_huge_learning_rate_ends_with_a_sentence(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    session = open_example(qtbot, win, "spirals_classifier.json", dataset="circles",
                           optimizer="sgd", lr=3.0, epochs=12, validation_split=0.0)
    session.play()
    qtbot.waitUntil(lambda: session.state in (states.FINISHED, states.DIVERGED,
                                              states.PAUSED), timeout=20000)
    qtbot.waitUntil(lambda: bool(win.health.messages), timeout=5000)
    assert win.health.banner.isVisible()
    text = win.health.banner.label.text()
    assert "chance level" in text or "dead" in text, text
    session.reset_weights()
    qtbot.waitUntil(lambda: not win.health.banner.isVisible(), timeout=5000)
    assert win.health.messages == []


def test_an_output_width_that_does_not_match_the_classes_is_refused_before_training():
    spec = load_graph(EXAMPLES / "spirals_classifier.json")  # logits: Dense 2
    program = compile_graph(spec, seed=0)
    blobs = make_dataset("blobs", seed=0, classes=3)
    with pytest.raises(DataError, match=r"Node 'logits' gives 2 outputs .* 3 classes"):
        Trainer(program, blobs, TrainConfig())
    Trainer(program, make_dataset("circles", seed=0), TrainConfig())  # 2 classes: fine


def test_the_training_panel_names_the_width_problem(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    win.open_path(EXAMPLES / "spirals_classifier.json", ask=False)
    problems = []
    win.training.session.problem.connect(problems.append)
    block = win.document.training()
    block.update(dataset="blobs", dataset_params={"classes": 4})
    win.controller.set_training(block)
    win.training.session.compile_now()
    qtbot.waitUntil(lambda: any("4 classes" in p for p in problems), timeout=5000)
