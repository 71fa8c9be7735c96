"""A big CSV file in the GUI: the Data dock shows its first rows and an even subsample in a
plot (read in a process of its own, each part labelled with how many rows it stands for);
the Predictions confusion matrix scores an even subsample and says so."""

from __future__ import annotations

import numpy as np
import pytest

from designer.data import csv_view
from tests.gui import open_example, window_fixture


@pytest.fixture
def window(qtbot, tmp_path):
    yield from window_fixture(qtbot, tmp_path, size=(1280, 800))


def write_rows(path, rows: int, bad_line: int | None = None):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 2)).round(4)
    lines = ["x1,x2,label"] + [f"{a},{b},{'pos' if a * b > 0 else 'neg'}" for a, b in x]
    if bad_line is not None:
        lines[bad_line - 1] = "0.5,oops,pos"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return x


def show_csv(qtbot, window, path):
    open_example(qtbot, window, "spirals_classifier.json")
    window.data_dock.show()
    window.data_dock.raise_()
    block = window.document.training()
    block.update(csv=str(path), validation_split=0.0)
    block.pop("dataset", None)
    window.controller.set_training(block)
    return window.data.csv_view


def test_data_dock_shows_first_rows_and_a_labelled_subsample(qtbot, window, tmp_path,
                                                             monkeypatch):
    monkeypatch.setattr(csv_view.CsvView, "points", 500)
    monkeypatch.setattr(csv_view.CsvView, "head_rows", 40)
    path = tmp_path / "big.csv"
    x = write_rows(path, 3000)
    view = show_csv(qtbot, window, path)
    assert not window.data.table_box.isVisibleTo(window.data)  # not the graph's own table
    qtbot.waitUntil(lambda: view.sample is not None, timeout=15000)
    s = view.sample
    assert (s.rows, s.columns, s.class_names) == (3000, ["x1", "x2", "label"], ["neg", "pos"])
    assert "3,000 rows × 3 columns" in view.summary.text()
    assert view.table_label.text() == "First 40 of 3,000 rows"
    assert view.model.rowCount() == 40
    assert view.model.headerData(2, csv_view.Qt.Orientation.Horizontal) == "label (target)"
    first = [view.model.data(view.model.index(0, j)) for j in range(3)]
    assert first == [f"{x[0, 0]:.6g}", f"{x[0, 1]:.6g}", "pos" if x[0, 0] * x[0, 1] > 0
                     else "neg"]
    assert view.plot_label.text() == "Showing 500 of 3,000 rows (evenly spaced)"
    drawn = [layer.getData()[0] for layer in view.layers]
    assert len(view.layers) == 2 and sum(len(d) for d in drawn) == 500
    # The plot holds the file's own values (not standardised): every drawn x1 is in the file.
    assert np.isin(np.concatenate(drawn), x[:, 0]).all()
    view.y_combo.setCurrentIndex(2)
    view.draw()
    assert view.plot.getPlotItem().getAxis("left").labelText == "label"


def test_data_dock_says_where_a_csv_file_is_broken(qtbot, window, tmp_path):
    path = tmp_path / "broken.csv"
    write_rows(path, 200, bad_line=150)
    view = show_csv(qtbot, window, path)
    qtbot.waitUntil(lambda: "Line 150, column 'x2' holds 'oops'" in view.summary.text(),
                    timeout=15000)
    assert view.sample is None and view.model.rowCount() == 0


def test_confusion_matrix_scores_an_even_subsample_and_says_so(qtbot, window, monkeypatch):
    from designer.lab import prediction_view as pv
    from engine.core.compiler import compile_graph
    from engine.core.spec import load_graph
    from engine.data import make_dataset
    from engine.training.trainer import TrainConfig, Trainer
    from tests.gui import EXAMPLES

    monkeypatch.setattr(pv, "MAX_SCORED", 1000)
    spec = load_graph(EXAMPLES / "spirals_classifier.json")
    trainer = Trainer(compile_graph(spec), make_dataset("moons", samples=4000),
                      TrainConfig(batch_size=64))
    res = pv.evaluate(trainer.program, trainer)
    assert res.confusion.sum() == 1000 and res.scored_total == 4000
    view = pv.PredictionView(window, window)  # (freed with the window, not leaked)
    view.show_prediction(res)
    assert "(1,000 of 4,000 rows, evenly spaced)" in view.cm_label.text()
    assert "(on 1,000 of 4,000 rows)" in view.title.text()
