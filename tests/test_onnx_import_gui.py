"""Opening an .onnx model in the designer: the graph, Add Loss, then the imported weights."""

import numpy as np
import pytest

from designer.resources import resource_path
from designer.training import session as states
from engine.export import export
from engine.files.onnx_import import import_onnx
from tests.gui import on_worker, window_fixture

pytest.importorskip("onnx")


@pytest.fixture
def window(qtbot, tmp_path):
    yield from window_fixture(qtbot, tmp_path, "onnx")


def test_open_onnx_add_loss_and_train_with_the_imported_weights(qtbot, window, tmp_path):
    path = tmp_path / "digits.onnx"
    export(resource_path("examples") / "digits_cnn.json", "onnx", path)
    imported = import_onnx(path)
    assert window.open_path(path, ask=False), window.errors
    doc = window.document
    assert [n.id for n in doc.nodes()] == [n.id for n in imported.spec.nodes]
    assert window.controller.path == path
    assert "Imported digits.onnx: 7 nodes" in window.statusBar().currentMessage()
    session = window.training.session
    assert session.state == states.INVALID  # no loss yet

    asked = []
    window.add_loss.ask = lambda nodes, default: asked.append((nodes, default)) or (
        "CrossEntropyLoss", default)
    block = dict(doc.training())
    block.update(dataset="digits", batch_size=16)
    window.controller.set_training(block)
    with qtbot.waitSignal(window.models.restored, timeout=10000):
        assert window.add_loss.run()
    assert asked[0][1] == "logits" and asked[0][0][0] == "logits"
    assert {n.op for n in doc.nodes()} >= {"Target", "CrossEntropyLoss"}
    weights = on_worker(qtbot, session, lambda p, t: {k: v.copy() for k, v in
                                                      p.state_dict().items()})
    assert set(weights) == set(imported.state_dict)
    for key, value in imported.state_dict.items():
        np.testing.assert_array_equal(weights[key], value)
    assert "Loaded the weights of digits.onnx into the graph (8 of 8 tensors)" in \
        window.statusBar().currentMessage()

    window.controller.undo_stack.undo()  # the loss goes in one undo step
    assert not any(n.op == "CrossEntropyLoss" for n in doc.nodes())

    saved = []
    window.ask_save_path = lambda: saved.append(True) or None
    assert not window.file_save()  # an import is saved under a new name, never over the .onnx
    assert saved


def test_an_import_saves_as_gsmodel_with_its_weights_before_training(qtbot, window,
                                                                     tmp_path):
    from engine.files.model_file import load_model

    path = tmp_path / "sine.onnx"
    export(resource_path("examples") / "sine_regression.json", "onnx", path)
    assert window.open_path(path, ask=False), window.errors
    out = tmp_path / "sine.gsmodel"
    window.ask_save_path = lambda: str(out)
    assert window.file_save(), window.errors
    assert window.controller.path == out
    saved = load_model(out)
    for key, value in import_onnx(path).state_dict.items():
        np.testing.assert_array_equal(saved.state_dict[key], value)
    assert "not trained yet" in window.statusBar().currentMessage()


def test_unsupported_onnx_leaves_the_document_alone(qtbot, window, tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Erf", ["x"], ["y"], name="erf1")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(helper.make_model(graph).SerializeToString())
    assert window.open_path(resource_path("examples") / "xor_mlp.json", ask=False)
    before = window.document.spec().to_dict()
    assert not window.open_path(bad, ask=False)
    assert window.errors and "Erf ×1 ('erf1')" in window.errors[-1][1]
    assert window.document.spec().to_dict() == before
