"""The GUI side of trained models: File → Export Model…, Save Trained Model, opening .gsmodel."""

import importlib.util
import io
import json
import sys
import zipfile

import numpy as np
import pytest

from designer.files.export_dialog import FORMAT_IDS, ExportDialog
from designer.resources import resource_path
from designer.training import session as states
from engine.core.compiler import compile_graph
from engine.files.model_file import load_model
from engine.files.safetensors_io import load_file as load_safetensors
from tests.gui import window_fixture

EXAMPLES = resource_path("examples")




@pytest.fixture
def window(qtbot, tmp_path):
    yield from window_fixture(qtbot, tmp_path, "one")


@pytest.fixture
def window2(qtbot, tmp_path):
    yield from window_fixture(qtbot, tmp_path, "two")


def train_xor(qtbot, win, steps):
    assert win.open_path(EXAMPLES / "xor_mlp.json", ask=False)
    session = win.training.session
    qtbot.waitUntil(lambda: session.state == states.READY, timeout=5000)
    for k in range(1, steps + 1):
        session.step()
        qtbot.waitUntil(lambda k=k: session.last_report is not None
                        and session.last_report.step == k, timeout=3000)
    return session


def on_worker(qtbot, session, fn):
    box = {}
    session.run_on_worker(fn, lambda r: box.setdefault("r", r),
                          lambda e: box.setdefault("e", e))
    qtbot.waitUntil(lambda: bool(box), timeout=3000)
    assert "e" not in box, box.get("e")
    return box["r"]


def live_weights(qtbot, session):
    return on_worker(qtbot, session,
                     lambda p, t: {k: v.copy() for k, v in p.state_dict().items()})


def engine_predict(win, weights, x):
    spec = win.document.spec()
    program = compile_graph(spec, dtype="float32", seed=0, require_loss=False)
    program.load_state_dict(weights)
    return program.predict(x)


def import_script(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def export_with_dialog(qtbot, win, fmt, path):
    dialog = ExportDialog(win.models)
    dialog.set_format(fmt)
    dialog.set_path(path)
    with qtbot.waitSignal(win.models.exported, timeout=10000) as blocker:
        assert dialog.start_export()
    return dialog, blocker.args[0]


def test_export_each_format_with_the_live_weights(qtbot, window, tmp_path):
    session = train_xor(qtbot, window, 25)
    weights = live_weights(qtbot, session)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.3, -2]], np.float32)
    expected = engine_predict(window, weights, x)
    outs = {"onnx": tmp_path / "xor.onnx", "torch": tmp_path / "xor_torch",
            "safetensors": tmp_path / "xor.safetensors", "numpy": tmp_path / "xor_np",
            "gsmodel": tmp_path / "xor.gsmodel"}
    assert set(outs) == set(FORMAT_IDS)
    results = {}
    for fmt, out in outs.items():
        dialog, results[fmt] = export_with_dialog(qtbot, window, fmt, out)
        assert dialog.result() == dialog.DialogCode.Accepted  # closed on success
    assert window.errors == []
    assert len(window.infos) == len(outs)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(outs["onnx"]))
    got = sess.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    msg = results["onnx"].message
    assert msg.startswith("Exported xor.onnx (") and ("kB)" in msg or "bytes)" in msg)
    assert "input 'input' (batch, 2), output 'output' (batch, 1)" in msg

    tensors, _meta = load_safetensors(outs["safetensors"])
    assert set(tensors) == set(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(tensors[key], value)

    torch_mod = import_script(outs["torch"] / "model.py", "gs_exported_torch")
    import torch

    model = torch_mod.load_weights(torch_mod.GradscapeModel()).eval()
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), expected, atol=1e-5)

    np_mod = import_script(outs["numpy"] / "model.py", "gs_exported_numpy")
    np.testing.assert_allclose(np_mod.predict(x), expected, atol=1e-5)

    loaded = load_model(outs["gsmodel"])
    assert loaded.trainer_state["step"] == 25
    for key, value in weights.items():
        np.testing.assert_array_equal(loaded.state_dict[key], value)
    assert "step 25" in results["gsmodel"].message


def test_export_dialog_defaults_and_explanations(qtbot, window):
    train_xor(qtbot, window, 1)
    dialog = ExportDialog(window.models)
    qtbot.addWidget(dialog)
    assert dialog.format() == "onnx" and dialog.path().name == "xor_mlp.onnx"
    names = {}
    for fmt in FORMAT_IDS:
        dialog.set_format(fmt)
        names[fmt] = dialog.path().name
    assert names == {"onnx": "xor_mlp.onnx", "torch": "xor_mlp_torch",
                     "safetensors": "xor_mlp.safetensors", "numpy": "xor_mlp_numpy",
                     "gsmodel": "xor_mlp.gsmodel"}
    assert "trained for 1 step (epoch" in dialog.state_label.text()
    assert window.actions["export"].shortcut().toString() == "Ctrl+E"
    file_menu = window.menuBar().actions()[0].menu()
    assert window.actions["export"] in file_menu.actions()
    assert window.actions["save_trained_model"] in window.training.menu.actions()


def test_export_failure_names_the_node_and_keeps_the_dialog_open(qtbot, window, tmp_path):
    graph = {
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 2}},
                  {"id": "h", "op": "Dense", "params": {"units": 1}},
                  {"id": "y", "op": "Target", "params": {"features": 1}},
                  {"id": "cheat", "op": "Add", "params": {}},
                  {"id": "loss", "op": "MSELoss", "params": {}}],
        "edges": [{"from": f"{a}.out", "to": b} for a, b in (
            ("x", "h.in"), ("h", "cheat.a"), ("y", "cheat.b"), ("cheat", "loss.prediction"),
            ("y", "loss.target"))]}
    src = tmp_path / "cheat.json"
    src.write_text(json.dumps(graph))
    assert window.open_path(src, ask=False), window.errors
    dialog = ExportDialog(window.models)
    qtbot.addWidget(dialog)
    dialog.set_path(tmp_path / "cheat.onnx")
    with qtbot.waitSignal(window.models.failed, timeout=10000):
        dialog.start_export()
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled(), timeout=3000)
    assert window.errors and "'y' (Target)" in window.errors[-1][1]
    assert "'y' (Target)" in dialog.status_label.text()
    assert "Could not export cheat.onnx" in window.statusBar().currentMessage()
    assert not (tmp_path / "cheat.onnx").exists()


def test_saved_model_reopens_with_weights_history_and_continues(qtbot, window, window2,
                                                                tmp_path):
    session = train_xor(qtbot, window, 30)
    path = tmp_path / "trained.gsmodel"
    with qtbot.waitSignal(window.models.saved, timeout=5000):
        window.models.save_model(path)
    weights = live_weights(qtbot, session)

    with qtbot.waitSignal(window2.models.restored, timeout=5000):
        assert window2.open_path(path, ask=False)
    s2 = window2.training.session
    qtbot.waitUntil(lambda: s2.last_report is not None, timeout=3000)
    assert window2.controller.path == path
    assert window2.document.spec().to_dict() == window.document.spec().to_dict()
    restored = live_weights(qtbot, s2)
    assert set(restored) == set(weights)
    for key in weights:
        np.testing.assert_array_equal(restored[key], weights[key])
    plot1, plot2 = window.training.run.history, window2.training.run.history
    assert len(plot2.losses) == 30
    np.testing.assert_array_equal(plot2.losses.view()[0], plot1.losses.view()[0])
    np.testing.assert_array_equal(plot2.losses.view()[1], plot1.losses.view()[1])
    assert s2.last_report.step == 30 and s2.state == states.PAUSED
    assert "step 30" in window2.training.panel.counter_label.text()
    assert str(path.resolve()) in window2.recent_files()

    # Step continues from step 30, exactly as the run that was never interrupted.
    session.step()
    s2.step()
    qtbot.waitUntil(lambda: session.last_report.step == 31 and s2.last_report.step == 31,
                    timeout=3000)
    assert s2.last_report.loss == session.last_report.loss
    assert len(plot2.losses) == 31 and plot2.losses.view()[0][-1] == 31


def test_save_of_a_model_document_rewrites_the_model(qtbot, window, window2, tmp_path):
    train_xor(qtbot, window, 5)
    path = tmp_path / "m.gsmodel"
    window.ask_save_path = lambda: str(path)
    assert window.file_save_as()
    assert window.controller.path == path and not window.controller.is_modified()
    assert load_model(path).trainer_state["step"] == 5
    session = window.training.session
    session.step()
    qtbot.waitUntil(lambda: session.last_report.step == 6, timeout=3000)
    assert window.file_save()  # Save of a .gsmodel document: the model with the new weights
    assert load_model(path).trainer_state["step"] == 6
    assert zipfile.is_zipfile(path)  # still a model, not graph JSON


def hostile_files(tmp_path):
    good = tmp_path / "good.gsmodel"
    spec_json = (EXAMPLES / "xor_mlp.json").read_text()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", '{"format": "gradscape-model", "version": 1}')
        zf.writestr("graph.json", spec_json)
        zf.writestr("../../evil.json", "{}")
    traversal = tmp_path / "traversal.gsmodel"
    traversal.write_bytes(buf.getvalue())
    return good, traversal


def test_corrupt_or_hostile_model_leaves_the_document_untouched(qtbot, window, tmp_path):
    train_xor(qtbot, window, 3)
    good, traversal = hostile_files(tmp_path)
    with qtbot.waitSignal(window.models.saved, timeout=5000):
        window.models.save_model(good)
    truncated = tmp_path / "truncated.gsmodel"
    truncated.write_bytes(good.read_bytes()[:300])
    before = window.document.spec().to_dict()
    path_before = window.controller.path
    step_before = window.training.session.last_report.step
    for bad, words in ((truncated, "truncated.gsmodel"), (traversal, "path traversal")):
        window.errors.clear()
        assert not window.open_path(bad, ask=False)
        assert len(window.errors) == 1
        title, text = window.errors[0]
        assert title == "Cannot open the file" and words in text
        assert window.document.spec().to_dict() == before
        assert window.controller.path == path_before
        assert str(bad.resolve()) not in window.recent_files()
    assert window.training.session.last_report.step == step_before
    assert not (tmp_path.parent / "evil.json").exists()


def test_save_after_an_edit_keeps_the_total_step_count_and_history(qtbot, window, window2,
                                                                   tmp_path):
    session = train_xor(qtbot, window, 4)
    block = window.document.training()
    block["lr"] = 0.02  # a new Trainer on the kept weights: the worker keeps counting
    window.controller.set_training(block)
    session.compile_now()
    qtbot.waitUntil(lambda: session.state == states.PAUSED, timeout=3000)
    session.step()
    qtbot.waitUntil(lambda: session.last_report.step == 5, timeout=3000)
    path = tmp_path / "edited.gsmodel"
    with qtbot.waitSignal(window.models.saved, timeout=5000):
        window.models.save_model(path)
    assert load_model(path).trainer_state["step"] == 5
    with qtbot.waitSignal(window2.models.restored, timeout=5000):
        assert window2.open_path(path, ask=False)
    history = window2.training.run.history
    np.testing.assert_array_equal(history.losses.view()[0], np.arange(1, 6))
    np.testing.assert_array_equal(history.losses.view()[1],
                                  window.training.run.history.losses.view()[1])


def test_training_panel_has_a_save_model_button(window):
    from PySide6.QtWidgets import QToolButton

    action = window.actions["save_trained_model"]
    buttons = [b for b in window.training.panel.findChildren(QToolButton)
               if b.defaultAction() is action]
    assert len(buttons) == 1 and buttons[0].text() == "Save Model…"
