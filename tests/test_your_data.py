"""Your own numbers and your own data: raw CSV numbers, the data table in the graph file,
image folders and flat CSV rows for shaped Inputs (engine and command line)."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from designer.resources import resource_path
from engine.cli.main import main
from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.data.images import check_image_folder, load_image_folder, read_image
from engine.data.table import load_table, parse_pasted
from engine.errors import DataError
from engine.training.trainer import TrainConfig, Trainer, load_data

EXAMPLES = resource_path("examples")
CHAIN = EXAMPLES / "chain_rule.json"
XS, YS = [0.5, -1.0, 2.0], [1.0, 0.0, -0.5]  # the pen-and-paper samples


def hand_chain(samples, a=0.5, b=-1.0, c=2.0):
    """Loss and dL/da, dL/db, dL/dc of y^ = c*((a*x)^2 + b*(a*x)), MSE over `samples`,
    written out by hand with plain floats."""
    n = len(samples)
    loss = da = db = dc = 0.0
    for x, y in samples:
        f = a * x
        g = f * f + b * f
        yhat = c * g
        loss += (yhat - y) ** 2 / n
        dyhat = 2.0 * (yhat - y) / n
        dc += dyhat * g
        dg = dyhat * c
        db += dg * f
        df = dg * 2.0 * f + dg * b
        da += df * x
    return loss, da, db, dc


def rel_close(a, b, tol=1e-12):
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-300)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def trace_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["trace", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def param_grads(result: dict) -> dict[str, float]:
    return {p["node"]: float(np.ravel(p["grad"]["values"])[0]) for p in result["parameters"]}


# -- raw numbers ---------------------------------------------------------------------------
def test_trace_with_raw_csv_equals_the_hand_calculation(tmp_path, capsys):
    csv = write_csv(tmp_path / "pen.csv", "x,y\n0.5,1\n-1,0\n2,-0.5\n")
    full = trace_json(capsys, CHAIN, "--csv", csv, "--no-standardize", "--dtype", "float64",
                      "--batch-size", "0")
    loss, da, db, dc = hand_chain(list(zip(XS, YS)))
    grads = param_grads(full)
    assert full["batch_size"] == 3
    assert rel_close(full["loss"], loss)
    assert rel_close(grads["a"], da) and rel_close(grads["b"], db) and rel_close(grads["c"], dc)

    # batch size 1 (the example's setting): the first step uses the first row, x = 0.5
    one = trace_json(capsys, CHAIN, "--csv", csv, "--no-standardize", "--dtype", "float64")
    x_edge = next(e for e in one["edges"] if e["from"] == "x.out")
    assert x_edge["value"]["values"] == [[0.5]]
    loss, da, db, dc = hand_chain([(0.5, 1.0)])
    grads = param_grads(one)
    assert (one["loss"], grads["a"], grads["b"], grads["c"]) == (loss, da, db, dc)
    assert loss == 1.890625 and (da, db, dc) == (1.375, -1.375, 0.515625)

    # standardised the network sees other numbers, so the loss differs
    std = trace_json(capsys, CHAIN, "--csv", csv, "--standardize", "--dtype", "float64",
                     "--batch-size", "0")
    assert not rel_close(std["loss"], full["loss"], 1e-3)


def test_chain_example_carries_the_pen_and_paper_table_raw_in_float64():
    spec = load_graph(CHAIN)
    cfg = TrainConfig.from_block(spec.training)
    assert cfg.dataset == "table" and cfg.standardize is False and cfg.dtype == "float64"
    data = load_data(cfg)
    assert data.x[:, 0].tolist() == XS and data.y[:, 0].tolist() == YS
    assert data.task == "regression" and data.preprocessing["standardize"] is False
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    trainer = Trainer(program, data, cfg.__class__.from_block(spec.training, batch_size=0))
    report = trainer.step()
    loss, da, db, dc = hand_chain(list(zip(XS, YS)))
    assert rel_close(report.loss, loss)
    grads = {e.node: float(program.param_grad(e).ravel()[0]) for e in program.entries}
    assert rel_close(grads["a"], da) and rel_close(grads["b"], db) and rel_close(grads["c"], dc)


def test_predict_uses_the_training_scaling_unless_told_the_rows_are_ready(tmp_path, capsys):
    csv = write_csv(tmp_path / "lin.csv",
                    "x,y\n" + "".join(f"{v},{2 * v + 1}\n" for v in range(10, 30)))
    graph = EXAMPLES / "sine_regression.json"
    model = tmp_path / "m.gsmodel"
    assert main(["train", str(graph), "--csv", str(csv), "--epochs", "1",
                 "--out", str(model)]) == 0
    rows = write_csv(tmp_path / "new.csv", "x\n15\n")
    capsys.readouterr()
    assert main(["predict", str(model), "--csv", str(rows)]) == 0
    standardised = capsys.readouterr().out
    assert main(["predict", str(model), "--csv", str(rows), "--no-standardize"]) == 0
    raw = capsys.readouterr().out
    assert standardised != raw  # 15 fed as written is far outside the standardised range
    from engine.files.model_file import load_model

    pp = load_model(model).preprocessing["preprocessing"]
    assert pp["standardize"] is True and pp["mean"] == [19.5]

    raw_model = tmp_path / "raw.gsmodel"
    assert main(["train", str(graph), "--csv", str(csv), "--epochs", "1", "--no-standardize",
                 "--out", str(raw_model)]) == 0
    assert load_model(raw_model).preprocessing["preprocessing"]["standardize"] is False


# -- the data table ------------------------------------------------------------------------
def table(rows, columns=("x", "y"), **extra):
    return {"columns": list(columns), "rows": rows, **extra}


def test_table_loads_raw_or_standardised_with_classes():
    raw = load_table(table([[1, 2.5], [3, 4.5]]), standardize=False)
    assert raw.x.tolist() == [[1.0], [3.0]] and raw.y.tolist() == [[2.5], [4.5]]
    std = load_table(table([[1, 2.5], [3, 4.5]]))
    assert std.x.tolist() == [[-1.0], [1.0]] and std.preprocessing["mean"] == [2.0]
    cls = load_table(table([[0, 1, "red"], [1, 0, "blue"], [1, 1, "red"]],
                           ("a", "b", "colour")), standardize=False)
    assert cls.task == "classification" and cls.class_names == ["blue", "red"]
    assert cls.y[:, 0].tolist() == [1.0, 0.0, 1.0]
    two = load_table(table([[1, 2, 3], [4, 5, 6]], ("a", "b", "c"), targets=["b", "c"]))
    assert two.feature_names == ["a"] and two.target_names == ["b", "c"]


@pytest.mark.parametrize("block, words", [
    (table([[1, 2], [3]]), ["row 2", "1 values", "2 columns"]),
    (table([[1, 2], ["abc", 3]]), ["row 2", "column 'x'", "'abc'", "not a number"]),
    (table([[1, 2], [3, None]]), ["row 2", "column 'y'", "empty"]),
    (table([[1, 2], [3, "tall"]], task="regression"), ["row 2", "column 'y'", "'tall'"]),
    (table([]), ["empty", "add a row"]),
    (table([[1, 2]], targets=["z"]), ["no column named 'z'"]),
    (table([[1, 2]], ("x", "x")), ["two columns named 'x'"]),
    ({"columns": "x", "rows": []}, ["list of column names"]),
    ([1, 2], ["must be an object"]),
    (table([[1, 2]], task="guess"), ["task"]),
])
def test_table_errors_name_row_and_column(block, words):
    with pytest.raises(DataError) as err:
        load_table(block)
    text = str(err.value).lower()
    for w in words:
        assert w.lower() in text, (w, text)


cells = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                  st.integers(-10**6, 10**6), st.text(max_size=4), st.booleans())


@settings(max_examples=80, deadline=None)
@given(columns=st.lists(st.text(max_size=3), max_size=4),
       rows=st.lists(st.lists(cells, max_size=5), max_size=6),
       targets=st.one_of(st.none(), st.lists(st.text(max_size=3), max_size=2)),
       task=st.sampled_from(["auto", "classification", "regression", 3]),
       standardize=st.booleans())
def test_table_loader_fuzz_only_sentences_or_a_dataset(columns, rows, targets, task, standardize):
    block = {"columns": columns, "rows": rows, "task": task}
    if targets is not None:
        block["targets"] = targets
    try:
        data = load_table(block, standardize=standardize)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert len(data) == len(rows) and np.isfinite(data.x).all()
    if not standardize:  # the numbers are the table's, exactly
        f_idx = data.preprocessing["feature_indices"]
        assert data.x.tolist() == [[float(r[j]) for j in f_idx] for r in rows]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789.,;\t -abc\n\"", max_size=60))
def test_paste_parser_fuzz(text):
    try:
        header, rows = parse_pasted(text)
    except DataError as exc:
        assert "line" in str(exc).lower()
        return
    width = {len(r) for r in rows} | ({len(header)} if header else set())
    assert len(width) <= 1


def test_paste_parser_reads_spreadsheet_text():
    assert parse_pasted("x\ty\n0.5\t1\n-1\t0\n") == (["x", "y"], [[0.5, 1.0], [-1.0, 0.0]])
    assert parse_pasted("1,5\tred\n") == (None, [[1.5, "red"]])
    with pytest.raises(DataError, match="Line 2 has 1 values"):
        parse_pasted("1\t2\n3\n")


# -- images --------------------------------------------------------------------------------
def make_images(root: Path, classes=("circle", "square"), n=3) -> Path:
    """A few small generated images per class: RGB PNGs and grayscale JPEGs of other sizes."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            size = 12 + 4 * i
            arr = (rng.random((size, size, 3)) * 60 + 150 * k).astype(np.uint8)
            img = Image.fromarray(arr)
            if i % 2:
                img.convert("L").save(root / name / f"{i}.jpg", quality=95)
            else:
                img.save(root / name / f"{i}.png")
    return root


def test_image_folder_becomes_a_dataset_at_the_input_shape(tmp_path):
    root = make_images(tmp_path / "shapes")
    gray = load_image_folder(root, (1, 8, 8))
    assert gray.x.shape == (6, 1, 8, 8) and gray.class_names == ["circle", "square"]
    assert gray.y[:, 0].tolist() == [0, 0, 0, 1, 1, 1]
    assert 0.0 <= gray.x.min() and gray.x.max() <= 1.0
    assert gray.x[3:].mean() > gray.x[:3].mean() + 0.3  # the second class is brighter
    rgb = load_image_folder(root, (3, 4, 5))
    assert rgb.x.shape == (6, 3, 4, 5) and rgb.preprocessing["input_shape"] == [3, 4, 5]
    # the same pixels Pillow gives for one file, resized the same way
    one = np.asarray(Image.open(root / "circle" / "0.png").convert("RGB").resize(
        (5, 4), Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
    np.testing.assert_allclose(rgb.x[0], one.transpose(2, 0, 1))
    np.testing.assert_allclose(read_image(root / "circle" / "0.png", (3, 4, 5)), rgb.x[0])


def test_image_folder_trains_from_the_command_line_and_splits_lazily(tmp_path, capsys):
    root = make_images(tmp_path / "shapes", n=4)
    graph = tmp_path / "cnn.json"
    spec = json.loads((EXAMPLES / "digits_cnn.json").read_text())
    for node in spec["nodes"]:
        if node["op"] == "Input":
            node["params"] = {"shape": [1, 8, 8]}
        if node["op"] == "Dense" and node["params"].get("units") == 10:
            node["params"]["units"] = 2  # two classes
    spec["training"].update(images=str(root), validation_split=0.25, batch_size=4)
    graph.write_text(json.dumps(spec))
    loaded = load_graph(graph)
    cfg = TrainConfig.from_block(loaded.training)
    data = load_data(cfg)
    assert data.x.shape == (8, 0) and data.load_inputs is not None  # read when shape known
    train, val = data.split(0.25, cfg.seed)
    program = compile_graph(loaded, dtype=cfg.dtype, seed=cfg.seed)
    t = Trainer(program, train, cfg, val)
    assert t.x.shape == (6, 1, 8, 8) and t.val_set.x.shape == (2, 1, 8, 8)
    # each split row is the image of its own file
    files = [p for _, p in sorted((k, p) for k, p in enumerate(
        sorted((root / "circle").iterdir()) + sorted((root / "square").iterdir())))]
    np.testing.assert_allclose(train.x[0], read_image(files[train.rows[0]], (1, 8, 8)))
    model = tmp_path / "shapes.gsmodel"
    assert main(["train", str(graph), "--epochs", "2", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), "--images", str(root / "circle"),
                 str(root / "square" / "0.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "file,class,label,prob_circle,prob_square" and len(lines) == 6
    assert lines[1].startswith(str(root / "circle" / "0.png") + ",")
    assert main(["predict", str(model), "--images", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("make, words", [
    (lambda r: r / "missing", ["does not exist"]),
    (lambda r: r.with_suffix(".txt").write_text("x") and r.with_suffix(".txt"), ["is a file"]),
    (lambda r: r.mkdir() or r, ["no sub-folders"]),
    (lambda r: (r / "only").mkdir(parents=True) or r, ["one class folder"]),
    (lambda r: make_images(r) and (r / "empty").mkdir() or r, ["'r/empty'", "no PNG or JPEG"]),
])
def test_image_folder_errors_name_the_folder(tmp_path, make, words):
    root = make(tmp_path / "r")
    with pytest.raises(DataError) as err:
        check_image_folder(root)
    for w in words:
        assert w in str(err.value), str(err.value)


def test_unreadable_image_is_named(tmp_path):
    root = make_images(tmp_path / "r")
    (root / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=r"image 'square/broken.png' could not be read"):
        check_image_folder(root)
    with pytest.raises(DataError, match=r"square/broken.png"):
        load_image_folder(root, (1, 4, 4))
    good = make_images(tmp_path / "g")
    with pytest.raises(DataError, match=r"Input with a shape \[channels, height, width\]"):
        load_image_folder(good, (16,))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]),
                                st.sampled_from([".png", ".jpg", ".txt"]),
                                st.one_of(st.binary(max_size=40), st.just(b"GOOD"))),
                      max_size=6))
def test_image_folder_fuzz_only_sentences_or_a_dataset(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("fuzz")
    for i, (cls, suffix, payload) in enumerate(files):
        (root / cls).mkdir(exist_ok=True)
        path = root / cls / f"{i}{suffix}"
        if payload == b"GOOD":
            Image.new("RGB", (3 + i, 5), (i * 30, 0, 0)).save(
                path, format="PNG" if suffix != ".jpg" else "JPEG")
        else:
            path.write_bytes(payload)
    try:
        data = load_image_folder(root, (3, 4, 4))
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert data.x.shape[1:] == (3, 4, 4) and np.isfinite(data.x).all()


# -- shaped Inputs from flat CSV rows ------------------------------------------------------
def test_train_csv_accepts_flat_rows_for_a_shaped_input_and_predict_reshapes(tmp_path, capsys):
    from engine.data import make_dataset

    digits = make_dataset("digits")
    rows = np.concatenate([digits.x.reshape(len(digits), -1)[:60] * 16,
                           digits.y[:60]], axis=1)
    header = ",".join([f"p{i}" for i in range(64)] + ["digit"])
    csv = write_csv(tmp_path / "digits.csv", header + "\n" + "\n".join(
        ",".join(f"{v:g}" for v in r) for r in rows) + "\n")
    model = tmp_path / "d.gsmodel"
    assert main(["train", str(EXAMPLES / "digits_cnn.json"), "--csv", str(csv), "--epochs",
                 "1", "--out", str(model)]) == 0
    from engine.files.model_file import load_model

    pp = load_model(model).preprocessing["preprocessing"]
    assert pp["input_shape"] == [1, 8, 8]
    new = write_csv(tmp_path / "new.csv", header.rsplit(",", 1)[0] + "\n" + ",".join(
        f"{v:g}" for v in rows[0, :64]) + "\n")
    capsys.readouterr()
    assert main(["predict", str(model), "--csv", str(new)]) == 0
    assert capsys.readouterr().out.startswith("class,label,")


# -- table edits (the Data dock's operations, without Qt) ----------------------------------
@settings(max_examples=80, deadline=None)
@given(ops=st.lists(st.tuples(
    st.sampled_from(["paste", "add_row", "remove_row", "add_col", "remove_col", "rename"]),
    st.integers(0, 5), st.integers(0, 3),
    st.text(alphabet="01.-\tab\n,", max_size=20)), max_size=8))
def test_table_edits_keep_a_valid_table_or_refuse(ops):
    from designer.data import table_edits as edits
    from engine.data.table import check_table

    table = edits.table_of({})
    for op, r, c, text in ops:
        rows, cols = len(table["rows"]), len(table["columns"])
        try:
            if op == "paste":
                new = edits.paste(table, text, min(r, rows), min(c, cols - 1))
            elif op == "add_row":
                new = edits.insert_rows(table, min(r, rows), 1)
            elif op == "remove_row":
                new = edits.remove_rows(table, [r])
            elif op == "add_col":
                new = edits.add_column(table)
            elif op == "remove_col":
                new = edits.remove_columns(table, [min(c, cols - 1)])
            else:
                new = edits.rename_column(table, min(c, cols - 1), text)
        except DataError as exc:
            assert str(exc)
            continue
        check_table(new)  # never a broken table in the document
        assert set(new.get("targets", [])) <= set(new["columns"])
        table = new
