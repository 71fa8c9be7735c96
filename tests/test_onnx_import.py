"""ONNX import: round trips of the example zoo, PyTorch models against ONNX Runtime and
a PyTorch training step, refusals of unsupported and hostile files."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.data.dataset import Dataset
from engine.errors import FileFormatError, GradscapeError
from engine.export import export, resolve_model
from engine.files.onnx_import import import_onnx, loads_onnx
from engine.files.onnx_ops import NodeIds
from engine.training.loss_head import add_loss
from engine.training.trainer import TrainConfig, Trainer

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "resources" / "examples").glob("*.json"))
ort = pytest.importorskip("onnxruntime")


def _structure(spec, program):
    """Ops, params (without the weight-init choice), wires and shapes, the Input renamed."""
    order = program.order
    inputs = {order[i] for i in program.input_nodes}
    keep = set()
    stack = list(program.output_nodes)
    while stack:  # the inference part only: exports leave out Targets and losses
        i = stack.pop()
        if i not in keep:
            keep.add(i)
            stack.extend(program.srcs[i])
    ids = {order[i] for i in keep}

    def name(node_id):
        return "<input>" if node_id in inputs else node_id

    nodes = {name(n.id): (n.op, {k: v for k, v in program.params[n.id].items()
                                 if k not in ("init", "padding", "value")},
                          program.shapes[n.id]) for n in spec.nodes if n.id in ids}
    edges = {(name(e.src), name(e.dst), e.dst_port) for e in spec.edges
             if e.src in ids and e.dst in ids}
    return nodes, edges


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_round_trip_is_equivalent_and_stable(path, tmp_path):
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    export(path, "onnx", first)
    model = import_onnx(first)
    original, _ = resolve_model(path)
    imported = model.build_program()
    assert _structure(model.spec, imported) == _structure(load_graph(path), original)
    shape = original.shapes[original.order[original.input_nodes[0]]]
    rng = np.random.default_rng(1)
    vocab = [int(original.params[n.id]["size"]) for n in load_graph(path).nodes
             if n.op == "Embedding"]
    if vocab:  # a sequence of ids: whole numbers the embedding table holds
        x = rng.integers(0, min(vocab), size=(7, *shape[1:])).astype(np.float64)
    else:
        x = rng.normal(size=(7, *shape[1:]))
    np.testing.assert_allclose(imported.predict(x), original.predict(x), rtol=0, atol=1e-6)
    export(model, "onnx", second)
    assert second.read_bytes() == first.read_bytes()
    assert set(model.spec.layout) == {n.id for n in model.spec.nodes}


def test_new_ops_round_trip_through_onnx(tmp_path):
    """Transpose, MatMul with transposes, Softmax over an axis and causal, LogSoftmax, Abs,
    Sqrt, Clamp, dilated grouped Conv2D, padded pools and GlobalAvgPool2D come back as
    themselves and predict the same."""
    from engine.core.spec import GraphSpec

    def chain(*nodes):
        return [{"from": f"{a}.out", "to": f"{b}.in"} for a, b in zip(nodes, nodes[1:])]

    seq = GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"shape": [4, 6]}},
                  {"id": "t", "op": "Transpose"},
                  {"id": "mm", "op": "MatMul", "params": {"transpose_a": True,
                                                          "transpose_b": True}},
                  {"id": "sm", "op": "Softmax", "params": {"causal": True}},
                  {"id": "sm1", "op": "Softmax", "params": {"axis": 1}},
                  {"id": "ls", "op": "LogSoftmax", "params": {"axis": 1}},
                  {"id": "ab", "op": "Abs"}, {"id": "sq", "op": "Sqrt"},
                  {"id": "cl", "op": "Clamp", "params": {"min": -0.5, "max": 2.0}}],
        "edges": [{"from": "x.out", "to": "t.in"}, {"from": "t.out", "to": "mm.a"},
                  {"from": "x.out", "to": "mm.b"}, *chain("mm", "sm", "sm1", "ls", "ab"),
                  *chain("ab", "sq", "cl")]})
    image = GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"shape": [4, 9, 9]}},
                  {"id": "c", "op": "Conv2D", "params": {"filters": 6, "kernel": 3,
                                                         "padding": "number", "pad": 2,
                                                         "dilation": 2, "groups": 2}},
                  {"id": "mp", "op": "MaxPool2D", "params": {"size": 3, "stride": 2,
                                                             "padding": 1}},
                  {"id": "ap", "op": "AvgPool2D", "params": {"size": 2, "padding": 1}},
                  {"id": "g", "op": "GlobalAvgPool2D"}],
        "edges": chain("x", "c", "mp", "ap", "g")})
    for name, spec, ops in (("seq", seq, {"t": "Transpose", "mm": "MatMul", "sm": "Softmax",
                                          "sm1": "Softmax", "ls": "LogSoftmax", "ab": "Abs",
                                          "sq": "Sqrt", "cl": "Clamp"}),
                            ("image", image, {"c": "Conv2D", "mp": "MaxPool2D",
                                              "ap": "AvgPool2D", "g": "GlobalAvgPool2D"})):
        first, second = tmp_path / f"{name}.onnx", tmp_path / f"{name}2.onnx"
        export(spec, "onnx", first)
        model = import_onnx(first)
        got = {n.id: n.op for n in model.spec.nodes if n.op != "Input"}
        assert {k: v for k, v in got.items() if k in ops} == ops
        original, _ = resolve_model(spec)
        imported = model.build_program()
        for nid in ops:
            want = {k: v for k, v in original.params[nid].items()
                    if k not in ("init", "padding")}  # 'same' or 'number' 2: the same here
            assert {k: imported.params[nid][k] for k in want} == want, nid
        shape = original.shapes[original.order[original.input_nodes[0]]]
        x = np.random.default_rng(2).normal(size=(3, *shape[1:]))
        for a, b in zip(np.atleast_1d(imported.predict(x)), np.atleast_1d(original.predict(x))):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        (want,) = ort.InferenceSession(str(first)).run(None, {"input": x.astype(np.float32)})
        np.testing.assert_allclose(imported.predict(x), want, rtol=0, atol=1e-5)
        export(model, "onnx", second)
        assert second.read_bytes() == first.read_bytes()


def test_constants_stay_constants_and_fused_ops_come_back(tmp_path):
    """Constant vs Parameter, SiLU, GELU and Softplus with beta survive a round trip."""
    from engine.core.spec import GraphSpec

    spec = GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 3}},
                  {"id": "c", "op": "Constant", "params": {"shape": [3], "value": [1, 2, 3]}},
                  {"id": "p", "op": "Parameter", "params": {"shape": [3], "value": 0.25}},
                  {"id": "m", "op": "Multiply"}, {"id": "s", "op": "Add"},
                  {"id": "silu", "op": "SiLU"},
                  {"id": "gelu", "op": "GELU"},
                  {"id": "soft", "op": "Softplus", "params": {"beta": 2.0, "threshold": 5.0}},
                  {"id": "cat", "op": "Concat"},
                  {"id": "mean", "op": "Mean", "params": {"axis": "features",
                                                          "keepdims": True}}],
        "edges": [{"from": "x.out", "to": "m.a"}, {"from": "c.out", "to": "m.b"},
                  {"from": "m.out", "to": "s.a"}, {"from": "p.out", "to": "s.b"},
                  {"from": "s.out", "to": "silu.in"}, {"from": "silu.out", "to": "gelu.in"},
                  {"from": "gelu.out", "to": "soft.in"}, {"from": "soft.out", "to": "cat.a"},
                  {"from": "s.out", "to": "cat.b"}, {"from": "cat.out", "to": "mean.in"}]})
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    export(spec, "onnx", first)
    model = import_onnx(first)
    ops = {n.id: n.op for n in model.spec.nodes}
    assert ops == {"input": "Input", "c": "Constant", "p": "Parameter", "m": "Multiply",
                   "s": "Add", "silu": "SiLU", "gelu": "GELU", "soft": "Softplus",
                   "cat": "Concat", "mean": "Mean"}
    assert model.spec.node("soft").params == {"beta": 2.0, "threshold": 5.0}
    assert "p.value" in model.state_dict and not any(k.startswith("c.") for k in
                                                     model.state_dict)
    export(model, "onnx", second)
    assert second.read_bytes() == first.read_bytes()
    x = np.random.default_rng(0).normal(size=(5, 3)) * 3
    want = compile_graph(spec, require_loss=False).predict(x)
    np.testing.assert_allclose(model.build_program().predict(x), want, atol=1e-6)


# -- PyTorch models ----------------------------------------------------------------------

torch = pytest.importorskip("torch")
nn = torch.nn


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 16)
        self.act = nn.Tanh()
        self.mid = nn.Linear(16, 8)
        self.leaky = nn.LeakyReLU(0.2)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.leaky(self.mid(self.act(self.hidden(x)))))


class _Viewed(nn.Module):
    """x.view(x.size(0), -1): shape arithmetic on the dynamic batch size."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(48, 3)

    def forward(self, x):
        y = self.conv(x)
        return self.fc(y.view(y.size(0), -1))


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, stride=1), nn.GELU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.SiLU(), nn.Linear(5, 3))

    def forward(self, x):
        return self.head(self.features(x))


def _torch_onnx(module, shape) -> bytes:
    module.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # do_constant_folding=False keeps BatchNorm a node of its own (folding merges it
        # into the convolution before it in evaluation mode)
        torch.onnx.export(module, (torch.zeros(2, *shape),), buf, dynamo=False,
                          input_names=["features"], output_names=["scores"],
                          dynamic_axes={"features": {0: "batch"}, "scores": {0: "batch"}},
                          do_constant_folding=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def torch_models():
    torch.manual_seed(0)
    cnn = _CNN()
    bn = cnn.features[1]
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    out = {}
    for name, module, shape in (("mlp", _MLP(), (4,)), ("cnn", cnn, (1, 8, 8)),
                                ("viewed", _Viewed(), (2, 4, 4))):
        out[name] = (module, shape, _torch_onnx(module, shape))
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn", "viewed"])
def test_torch_model_predicts_trains_and_exports_like_torch(name, torch_models, tmp_path):
    module, shape, data = torch_models[name]
    model = loads_onnx(data, f"{name}.onnx")
    ops = [n.op for n in model.spec.nodes]
    if name == "cnn":
        assert ops == ["Input", "Conv2D", "BatchNorm", "ReLU", "MaxPool2D", "Conv2D", "GELU",
                       "GlobalAvgPool2D", "Dense", "SiLU", "Dense"]
        assert [n.id for n in model.spec.nodes][1:3] == ["features_0", "features_1"]
    elif name == "viewed":
        assert [(n.id, n.op) for n in model.spec.nodes] == [
            ("features", "Input"), ("conv", "Conv2D"), ("reshape", "Reshape"), ("fc", "Dense")]
    else:
        assert [n.id for n in model.spec.nodes] == ["features", "hidden", "act", "mid", "leaky",
                                                    "out"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, *shape)).astype(np.float32)
    program = model.build_program()
    (want,) = ort.InferenceSession(data).run(None, {"features": x})
    np.testing.assert_allclose(program.predict(x), want, rtol=0, atol=1e-5)

    # one SGD step with cross-entropy, the same in PyTorch (training mode: BatchNorm uses
    # the batch statistics and updates its running ones)
    spec = add_loss(model.spec, "CrossEntropyLoss")
    trained = compile_graph(spec, require_loss=True)
    trained.load_state_dict(model.state_dict)
    y = rng.integers(0, 3, size=(6, 1)).astype(np.float64)
    data_set = Dataset("t", x.astype(np.float64), y, "classification", 3,
                       [f"f{i}" for i in range(int(np.prod(shape)))], ["y"])
    trainer = Trainer(trained, data_set, TrainConfig(optimizer="sgd", lr=0.1, batch_size=0))
    report = trainer.step()
    module.train()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(module(torch.from_numpy(x)),
                                       torch.from_numpy(y[:, 0]).long())
    opt.zero_grad()
    loss.backward()
    opt.step()
    module.eval()
    assert report.loss == pytest.approx(loss.item(), abs=1e-5)
    with torch.no_grad():
        after = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(trained.predict(x), after, rtol=0, atol=1e-5)

    # exported again, ONNX Runtime agrees with the trained program
    out = tmp_path / "again.onnx"
    export(trained, "onnx", out)
    (again,) = ort.InferenceSession(str(out)).run(None, {"input": x})
    np.testing.assert_allclose(again, after, rtol=0, atol=1e-5)


# -- refusals --------------------------------------------------------------------------

def _model(nodes, inits=(), inputs=None, outputs=None, opset=17) -> onnx.ModelProto:
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _weight(name, shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def test_unsupported_ops_are_listed_in_one_message_and_nothing_is_imported():
    nodes = [helper.make_node("Sin", ["x"], ["l1"], name="sin1"),
             helper.make_node("Relu", ["l1"], ["r"], name="relu"),
             helper.make_node("Sin", ["r"], ["l2"], name="sin2"),
             helper.make_node("Erf", ["l2"], ["e"], name="erf"),
             helper.make_node("Conv", ["e", "w"], ["y"], name="conv", group=2)]
    model = _model(nodes, [_weight("g", [4]), _weight("b", [4]), _weight("w", [2, 2, 1, 1])])
    with pytest.raises(FileFormatError) as err:
        loads_onnx(model.SerializeToString(), "net.onnx")
    text = str(err.value)
    assert text.startswith("net.onnx: Gradscape cannot express 3 nodes of this model")
    assert "Sin ×2 ('sin1'; 'sin2')" in text and "Erf ×1 ('erf')" in text
    assert "Nothing was imported" in text


def test_attributes_our_ops_lack_are_named_per_node():
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"], name="to_image"),
             helper.make_node("Conv", ["r", "w"], ["c"], name="uneven", pads=[0, 0, 1, 1]),
             helper.make_node("MaxPool", ["r"], ["d"], name="rounded", kernel_shape=[1, 1],
                              ceil_mode=1),
             helper.make_node("Add", ["c", "d"], ["y"], name="sum")]
    inits = [numpy_helper.from_array(np.array([0, 2, 1, 2], np.int64), "s"),
             _weight("w", [2, 2, 1, 1])]
    with pytest.raises(FileFormatError) as err:
        loads_onnx(_model(nodes, inits).SerializeToString(), "m.onnx")
    text = str(err.value)
    assert "Conv ×1 ('uneven': its padding [0, 0, 1, 1] differs between the sides)" in text
    assert "MaxPool ×1 ('rounded': it rounds the output size up (ceil_mode))" in text


def test_matmul_then_add_is_one_dense_layer():
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="/fc/MatMul"),
             helper.make_node("Add", ["m", "b"], ["y"], name="/fc/Add")]
    inits = [numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(np.array([1, 2, 3], np.float32), "b")]
    model = _model(nodes, inits)
    loaded = loads_onnx(model.SerializeToString())
    assert [(n.id, n.op, n.params) for n in loaded.spec.nodes] == [
        ("x", "Input", {"features": 4}), ("fc", "Dense", {"units": 3, "bias": True})]
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.build_program().predict(x), x @ w + [1, 2, 3], atol=1e-6)


def test_constants_are_folded_and_shape_arithmetic_keeps_the_batch():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Concat", ["n1", "rest"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"], name="/view/Reshape")]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axes"),
             numpy_helper.from_array(np.array([2, 2], np.int64), "rest")]
    fixed = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 4])]
    loaded = loads_onnx(_model(nodes, inits, inputs=fixed).SerializeToString())
    assert [(n.id, n.op, n.params) for n in loaded.spec.nodes][1:] == [
        ("view", "Reshape", {"shape": [2, 2]})]
    dynamic = loads_onnx(_model(nodes, inits).SerializeToString())  # batch "N"
    assert dynamic.spec.nodes[1].params == {"shape": [2, 2]}
    doubled = nodes[:2] + [helper.make_node("Mul", ["n", "two"], ["n2"], name="twice"),
                           helper.make_node("Unsqueeze", ["n2", "axes"], ["n1"])] + nodes[3:]
    with pytest.raises(FileFormatError, match="3 nodes.*Mul ×1 \\('twice': it computes "
                                              "with the batch size.*Unsqueeze ×1"):
        loads_onnx(_model(doubled, inits + [numpy_helper.from_array(
            np.array(2, np.int64), "two")]).SerializeToString())


def _refused(model, match, folder=None):
    data = model if isinstance(model, bytes) else model.SerializeToString()
    with pytest.raises(FileFormatError, match=match):
        loads_onnx(data, "bad.onnx", folder)


def test_hostile_files_are_refused_before_allocating(tmp_path):
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    _refused(b"\x08\x07garbage\xff\xff", "not an ONNX model")
    huge = _tensor("big", [100_000, 100_000])
    _refused(_model(relu, [huge]), r"the weight 'big' has shape \[100000, 100000\]")
    wide = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10**9])]
    _refused(_model(relu, inputs=wide), "larger than Gradscape takes")
    cycle = [helper.make_node("Relu", ["x2"], ["x1"], name="a"),
             helper.make_node("Relu", ["x1"], ["x2"], name="b"),
             helper.make_node("Add", ["x", "x2"], ["y"], name="c")]
    _refused(_model(cycle), "cycle")
    two = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in "xz"]
    _refused(_model([helper.make_node("Add", ["x", "z"], ["y"])], inputs=two),
             "has 2 inputs")
    ints = [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 4])]
    _refused(_model(relu, inputs=ints), "does not hold real numbers")
    blow_up = [helper.make_node("ConstantOfShape", ["dims"], ["c"]),
               helper.make_node("Add", ["x", "c"], ["y"])]
    dims = numpy_helper.from_array(np.array([10**6, 10**6], np.int64), "dims")
    _refused(_model(blow_up, [dims]), "ConstantOfShape ×1")


def _tensor(name, dims):
    """A float tensor header claiming `dims` and holding no data (make_tensor checks)."""
    t = TensorProto()
    t.name, t.data_type = name, TensorProto.FLOAT
    t.dims.extend(dims)
    return t


def _external(name, location, nbytes=64):
    t = _tensor(name, [nbytes // 4])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = k, v
    return t


def test_external_data_is_read_only_from_inside_the_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 64)
    add = [helper.make_node("Add", ["x", "w"], ["y"])]
    x16 = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])]
    _refused(_model(add, [_external("w", "../secret.bin")], inputs=x16),
             "outside the model's folder", folder)
    _refused(_model(add, [_external("w", str(tmp_path / "secret.bin"))], inputs=x16),
             "not a file name inside", folder)
    _refused(_model(add, [_external("w", "w.bin")], inputs=x16), "missing", folder)
    (folder / "w.bin").write_bytes(np.arange(16, dtype=np.float32).tobytes())
    _refused(_model(add, [_external("w", "w.bin", 128)], inputs=[
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 32])]),
        "does not hold", folder)
    _refused(_model(add, [_external("w", "w.bin")], inputs=x16), "not opened from a folder")
    path = folder / "m.onnx"
    path.write_bytes(_model(add, [_external("w", "w.bin")], inputs=x16).SerializeToString())
    loaded = import_onnx(path)
    np.testing.assert_array_equal(loaded.state_dict["w.value"], np.arange(16))


def test_readable_ids():
    ids = NodeIds()
    names = [ids.make("/features/features.0/Conv", "Conv"), ids.make("h1.out", "Gemm"),
             ids.make("/Relu", "Relu"), ids.make("/Relu_1", "Relu"), ids.make("", "Tanh"),
             ids.make("/0/Gemm", "Gemm"), ids.make("a->b.c", "Add")]
    assert names == ["features_0", "h1", "relu", "relu_2", "tanh", "gemm_0", "a_b_c"]


def test_add_loss_sizes_the_target():
    from engine.core.spec import GraphSpec

    g = GraphSpec.from_dict({"format": "gradscape-graph", "version": 1,
                             "nodes": [{"id": "x", "op": "Input", "params": {"features": 2}},
                                       {"id": "h", "op": "Dense", "params": {"units": 3}}],
                             "edges": [{"from": "x.out", "to": "h.in"}],
                             "layout": {"x": [0, 0], "h": [220, 0]}})
    ce = add_loss(g, "CrossEntropyLoss")
    assert ce.node("target").params == {"features": 1} and ce.layout["loss"] == [440.0, 0]
    assert add_loss(g, "MSELoss").node("target").params == {"features": 3}
    compile_graph(ce)
    with pytest.raises(GradscapeError, match="'x' is a Input node"):
        add_loss(g, "CrossEntropyLoss", "x")
    image = GraphSpec.from_dict({"format": "gradscape-graph", "version": 1, "nodes": [
        {"id": "x", "op": "Input", "params": {"shape": [1, 4, 4]}},
        {"id": "r", "op": "ReLU"}], "edges": [{"from": "x.out", "to": "r.in"}]})
    with pytest.raises(GradscapeError, match="Cross-entropy needs one score per class"):
        add_loss(image, "CrossEntropyLoss")
    assert add_loss(image, "MSELoss").node("target").params == {"features": 16}
    with pytest.raises(GradscapeError, match="not a loss"):
        add_loss(g, "Dense")


# -- command line ------------------------------------------------------------------------

def test_cli_trains_predicts_and_exports_an_onnx_model(tmp_path, capsys):
    from engine.cli.main import main

    model = tmp_path / "xor.onnx"
    export(EXAMPLES[-1], "onnx", model)  # xor_mlp
    assert main(["train", str(model), "--dataset", "xor", "--epochs", "2"]) == 2
    assert "predicts but has no loss" in capsys.readouterr().err
    out = tmp_path / "trained.gsmodel"
    assert main(["train", str(model), "--dataset", "xor", "--epochs", "3", "--loss",
                 "MSELoss", "--out", str(out)]) == 0
    from engine.files.model_file import load_model

    trained = load_model(out)
    assert {n.op for n in trained.spec.nodes} >= {"Target", "MSELoss", "Dense"}
    start = import_onnx(model).state_dict
    assert not np.allclose(trained.state_dict["h1.weight"], start["h1.weight"])

    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n0,1\n1,1\n")
    assert main(["predict", str(model), "--csv", str(rows)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    want = import_onnx(model).build_program().predict(np.array([[0, 1], [1, 1]], float))
    assert lines[0] == "output_0" and np.allclose([float(v) for v in lines[1:]], want[:, 0])

    assert main(["export", str(model), "--format", "numpy", "--out", str(tmp_path / "np")]) == 0
    assert (tmp_path / "np" / "model.py").exists()
    assert main(["trace", str(model), "--dataset", "xor", "--loss", "MSELoss",
                 "--loss-on", "nowhere"]) == 2
    assert "no node 'nowhere'" in capsys.readouterr().err


# -- fuzzing -----------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_VALID: bytes | None = None


def _valid_bytes() -> bytes:
    global _VALID
    if _VALID is None:
        program, _ = resolve_model(EXAMPLES[1])  # digits_cnn: Conv, BatchNorm, pooling
        from engine.export.onnx_export import build_onnx

        _VALID = build_onnx(program).SerializeToString()
    return _VALID


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_files_import_or_fail_with_a_sentence(data):
    raw = bytearray(_valid_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        loaded = loads_onnx(bytes(raw), "fuzz.onnx")
    except FileFormatError as exc:
        assert str(exc).startswith("fuzz.onnx")
        return
    try:
        loaded.build_program()
    except FileFormatError:
        pass


def test_a_torch_layer_norm_model_predicts_like_onnx_runtime():
    """nn.LayerNorm (opset 17's LayerNormalization) imports as our LayerNorm."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 3),
                           nn.LayerNorm(3, elementwise_affine=False)).eval()
    with torch.no_grad():
        module[1].weight.uniform_(0.5, 1.5)
        module[1].bias.uniform_(-0.5, 0.5)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(2, 4),), buf, dynamo=False, opset_version=17,
                          input_names=["features"], dynamic_axes={"features": {0: "batch"}})
    model = loads_onnx(buf.getvalue(), "ln.onnx")
    assert [n.op for n in model.spec.nodes] == ["Input", "Dense", "LayerNorm", "GELU", "Dense",
                                                "LayerNorm"]
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    (want,) = ort.InferenceSession(buf.getvalue()).run(None, {"features": x})
    np.testing.assert_allclose(model.build_program().predict(x), want, rtol=0, atol=1e-5)


def test_integer_token_inputs_are_refused_with_a_sentence():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 8)
            self.norm = nn.LayerNorm(8)

        def forward(self, tokens):
            return self.norm(self.embed(tokens))

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Block().eval(), (torch.zeros(2, 5, dtype=torch.long),), buf,
                          dynamo=False, input_names=["tokens"])
    with pytest.raises(FileFormatError) as err:
        loads_onnx(buf.getvalue(), "block.onnx")
    assert "the input 'tokens' does not hold real numbers" in str(err.value)


def test_deep_chains_are_laid_out_in_rows():
    from engine.core.layout import X_SPACING, layered_layout, wrap_rows
    from engine.core.spec import EdgeSpec

    ids = [f"n{i}" for i in range(14)]
    pos = layered_layout(ids, [EdgeSpec(a, "out", b, "in") for a, b in zip(ids, ids[1:])])
    rows = wrap_rows(pos, 6)
    assert rows["n5"][0] == 5 * X_SPACING and rows["n6"][0] == 0.0
    assert rows["n6"][1] > rows["n5"][1] and rows["n13"][1] > rows["n6"][1]
    assert len(set(rows.values())) == len(ids)
    assert wrap_rows({k: pos[k] for k in ids[:8]}, 6) == {k: pos[k] for k in ids[:8]}
