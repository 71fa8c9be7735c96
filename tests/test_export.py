"""Exports agree with the engine: ONNX (onnxruntime), generated PyTorch and NumPy code."""

import importlib.util
import itertools
import json
import subprocess
import sys
import uuid

import numpy as np
import pytest

from engine.cli.main import main
from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec
from engine.export import ExportError, export, onnx_export
from engine.files import safetensors_io as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

TOL = 1e-5


def close(got, want):
    """Same shape and every value within 1e-5 + 1e-5·|want|: float32 on both sides, summed
    in another order by each runtime's BLAS (the tiny GPT's logits, up to 11.7, differ by
    1.05e-5 on an AVX-512 machine)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=TOL, atol=TOL)


def graph(nodes, edges, **training):
    """A GraphSpec from (id, op, params) triples and "a->b.port" edge strings."""
    out = []
    for e in edges:
        src, dst = e.split("->")
        out.append({"from": f"{src}.out", "to": dst if "." in dst else f"{dst}.in"})
    return GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": i, "op": op, "params": p} for i, op, p in nodes],
        "edges": out, "training": {"seed": 1, **training}})


def chain(input_params, layers, loss="MSELoss", target=None):
    """Input -> layers in a line -> loss (the last layer's shape is the target's)."""
    nodes = [("x", "Input", input_params)] + list(layers)
    ids = [n[0] for n in nodes]
    edges = [f"{a}->{b}" for a, b in itertools.pairwise(ids)]
    if loss:
        nodes += [("y", "Target", {"features": target or 1}), ("loss", loss, {})]
        edges += [f"{ids[-1]}->loss.prediction", "y->loss.target"]
    return graph(nodes, edges)


ACTIVATIONS = [
    ("Tanh", {}), ("ReLU", {}), ("Sigmoid", {}), ("LeakyReLU", {"slope": 0.1}),
    ("ELU", {"alpha": 0.7}), ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("SiLU", {}),
    ("Softmax", {}), ("Softplus", {"beta": 2.0, "threshold": 3.0}), ("Identity", {}),
]


def zoo():
    g = {}
    g["mlp"] = chain({"features": 4}, [
        ("h1", "Dense", {"units": 16}), ("a1", "Tanh", {}), ("drop", "Dropout", {"p": 0.3}),
        ("h2", "Dense", {"units": 8, "bias": False}), ("a2", "ReLU", {}),
        ("logits", "Dense", {"units": 3})], loss="CrossEntropyLoss")
    g["cnn_bn_pool"] = chain({"shape": [2, 8, 8]}, [
        ("conv1", "Conv2D", {"filters": 4, "kernel": 3, "stride": 2}),  # asymmetric 'same'
        ("bn1", "BatchNorm", {}), ("r1", "ReLU", {}),
        ("conv2", "Conv2D", {"filters": 6, "kernel": 2, "padding": "same"}),
        ("pool", "MaxPool2D", {"size": 2}),
        ("conv3", "Conv2D", {"filters": 5, "kernel": 1, "padding": "valid", "bias": False}),
        ("avg", "AvgPool2D", {"size": 2, "stride": 1}), ("flat", "Flatten", {}),
        ("bn2", "BatchNorm", {"eps": 1e-3}), ("logits", "Dense", {"units": 4})],
        loss="CrossEntropyLoss")
    g["residual"] = graph(
        [("x", "Input", {"features": 5}), ("h1", "Dense", {"units": 5}), ("a1", "ReLU", {}),
         ("h2", "Dense", {"units": 5}), ("skip", "Add", {}), ("a2", "ReLU", {}),
         ("out", "Dense", {"units": 2}), ("y", "Target", {"features": 2}),
         ("loss", "MSELoss", {})],
        ["x->h1", "h1->a1", "a1->h2", "h2->skip.a", "x->skip.b", "skip->a2", "a2->out",
         "out->loss.prediction", "y->loss.target"])
    g["concat_branch"] = graph(
        [("x", "Input", {"features": 3}), ("left", "Dense", {"units": 4}),
         ("right", "Dense", {"units": 2}), ("rt", "Sigmoid", {}),
         ("cat", "Concat", {}), ("scale", "Parameter", {"value": 1.5}),
         ("mul", "Multiply", {}), ("c", "Constant", {"shape": [9], "value": 0.25}),
         ("sub", "Subtract", {}), ("out", "Dense", {"units": 1}),
         ("y", "Target", {"features": 1}), ("loss", "MSELoss", {})],
        ["x->left", "x->right", "right->rt", "left->cat.a", "rt->cat.b", "x->cat.c",
         "cat->mul.a", "scale->mul.b", "mul->sub.a", "c->sub.b", "sub->out",
         "out->loss.prediction", "y->loss.target"])
    g["maths"] = graph(
        [("x", "Input", {"features": 4}), ("h", "Dense", {"units": 6}), ("th", "Tanh", {}),
         ("e", "Exp", {}), ("sq", "Square", {}), ("div", "Divide", {}), ("lg", "Log", {}),
         ("pw", "Power", {"exponent": 2.0}), ("m", "Mean", {"axis": "features",
                                                           "keepdims": True}),
         ("s", "Sum", {"axis": "features", "keepdims": True}), ("add", "Add", {}),
         ("sub2", "Subtract", {}),
         ("r", "Reshape", {"shape": [2, 3]}), ("f", "Flatten", {}),
         ("bn", "BatchNorm", {}), ("o", "Dense", {"units": 2}),
         ("y", "Target", {"features": 2}), ("loss", "MSELoss", {})],
        ["x->h", "h->th", "th->e", "th->sq", "sq->div.a", "e->div.b", "e->lg", "lg->pw", "pw->m",
         "div->s", "pw->add.a", "m->add.b", "add->sub2.a",
         "s->sub2.b", "sub2->r", "r->f", "f->bn", "bn->o",
         "o->loss.prediction", "y->loss.target"])
    for k, (op, params) in enumerate(ACTIVATIONS):
        name = f"act_{op}_{k}"
        g[name] = chain({"features": 5}, [("h", "Dense", {"units": 6}), ("act", op, params),
                                          ("drop", "Dropout", {"p": 0.5}),
                                          ("o", "Dense", {"units": 2})], target=2)
    g["tiny_gpt"] = graph(
        [("x", "Input", {"shape": [6]}), ("emb", "Embedding", {"size": 11, "dim": 8}),
         ("pos", "Parameter", {"shape": [6, 8], "value": 0.1}), ("xp", "Add", {}),
         ("ln1", "LayerNorm", {}), ("att", "MultiHeadAttention", {"heads": 2}),
         ("r1", "Add", {}), ("ln2", "LayerNorm", {"affine": False}),
         ("fc", "Dense", {"units": 16}), ("act", "GELU", {}), ("proj", "Dense", {"units": 8}),
         ("r2", "Add", {}), ("att2", "MultiHeadAttention", {"heads": 1, "causal": False,
                                                            "bias": False}),
         ("head", "Dense", {"units": 11}), ("y", "Target", {"features": 6}),
         ("loss", "CrossEntropyLoss", {})],
        ["x->emb", "emb->xp.a", "pos->xp.b", "xp->ln1", "ln1->att", "xp->r1.a", "att->r1.b",
         "r1->ln2", "ln2->fc", "fc->act", "act->proj", "r1->r2.a", "proj->r2.b", "r2->att2",
         "att2->head", "head->loss.prediction", "y->loss.target"])
    g["attention_by_hand"] = graph(
        [("x", "Input", {"shape": [5, 3]}), ("q", "Dense", {"units": 4}),
         ("k", "Dense", {"units": 4}), ("v", "Dense", {"units": 4}),
         ("s", "MatMul", {"transpose_b": True}), ("a", "Softmax", {"causal": True}),
         ("av", "MatMul", {}), ("tr", "Transpose", {}), ("ls", "LogSoftmax", {"axis": 1}),
         ("w", "Parameter", {"shape": [2, 4], "value": 0.3}),
         ("mm", "MatMul", {"transpose_a": True, "transpose_b": True}),
         ("ab", "Abs", {}), ("sq", "Sqrt", {}), ("cl", "Clamp", {"min": -0.2, "max": 0.9}),
         ("sm", "Softmax", {"axis": 1}), ("o", "Flatten", {})],
        ["x->q", "x->k", "x->v", "q->s.a", "k->s.b", "s->a", "a->av.a", "v->av.b", "av->tr",
         "tr->ls", "ls->mm.a", "w->mm.b", "mm->ab", "ab->sq", "sq->cl", "cl->sm", "sm->o"])
    g["global_pool"] = chain({"shape": [2, 6, 5]}, [
        ("c", "Conv2D", {"filters": 3, "padding": "number", "pad": 2, "dilation": 2}),
        ("dw", "Conv2D", {"filters": 6, "groups": 3, "padding": "valid"}),
        ("mp", "MaxPool2D", {"size": 3, "stride": 1, "padding": 1}),
        ("ap", "AvgPool2D", {"size": 2, "padding": 1}),
        ("gap", "GlobalAvgPool2D", {}),
        ("o", "Dense", {"units": 2})], target=2)
    g["no_loss_identity"] = graph(
        [("my input", "Input", {"features": 3}), ("class", "Dense", {"units": 2}),
         ("2nd", "ReLU", {}), ("forward", "Dense", {"units": 2})],
        ["my input->class", "class->2nd", "2nd->forward"])
    return g


ZOO = zoo()


def _program(spec):
    p = compile_graph(spec, dtype="float32", seed=1, require_loss=False)
    rng = np.random.default_rng(7)
    p.theta[...] += rng.normal(0.0, 0.3, size=p.theta.shape).astype(np.float32)
    for k, buf in p.buffers.items():
        if k.endswith("running_var"):
            buf[...] = rng.uniform(0.5, 2.0, size=buf.shape)
        else:
            buf[...] = rng.normal(0.0, 0.5, size=buf.shape)
    return p


def _input(p, n=7):
    shape = p.shapes[p.order[p.input_nodes[0]]][1:]
    rng = np.random.default_rng(3)
    sizes = [p.params[p.order[i]]["size"] for i, op in enumerate(p.op_ids) if op == "Embedding"]
    if sizes:  # whole-number ids
        return rng.integers(0, min(sizes), size=(n, *shape)).astype(np.float32)
    return rng.normal(size=(n, *shape)).astype(np.float32)


def _import(path):
    spec = importlib.util.spec_from_file_location(f"gen_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each zoo graph exported to every format once: name -> (program, x, reference, dir)."""
    out = {}
    for name, spec in ZOO.items():
        d = tmp_path_factory.mktemp(name)
        p = _program(spec)
        x = _input(p)
        ref = p.predict(x).copy()
        export(p, "onnx", d / "m.onnx")
        export(p, "torch", d / "torch")
        export(p, "numpy", d / "np")
        export(p, "safetensors", d / "w.safetensors")
        out[name] = (p, x, ref, d)
    return out


@pytest.mark.parametrize("name", list(ZOO))
def test_onnxruntime_matches_the_engine(exported, name):
    p, x, _, d = exported[name]
    model = onnx.load(str(d / "m.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    sess = ort.InferenceSession(str(d / "m.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "input" and inp.shape[0] == "batch"
    assert [o.name for o in sess.get_outputs()] == ["output"]
    for xb in (x, x[:1]):  # dynamic batch
        got = sess.run(None, {"input": xb})[0]
        want = p.predict(xb)
        assert got.shape == want.shape
        close(got, want)


@pytest.mark.parametrize("name", list(ZOO))
def test_generated_torch_module_matches_the_engine(exported, name):
    _, x, ref, d = exported[name]
    mod = _import(d / "torch" / "model.py")
    net = mod.GradscapeModel()
    mod.load_weights(net)  # strict
    st_keys = set(st.load_file(d / "w.safetensors")[0])
    assert st_keys == set(net.state_dict())
    net.eval()
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    close(got, ref)


@pytest.mark.parametrize("name", list(ZOO))
def test_numpy_script_matches_the_engine(exported, name):
    _, x, ref, d = exported[name]
    mod = _import(d / "np" / "model.py")
    close(mod.predict(x), ref)


def test_numpy_script_runs_with_only_numpy(exported, tmp_path):
    _, x, ref, d = exported["cnn_bn_pool"]
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, x.reshape(len(x), -1), delimiter=",")
    code = ("import sys, builtins; real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    if name.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'engine'):\n"
            "        raise ImportError(name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            f"sys.argv = ['model.py', {str(rows)!r}]\n"
            f"exec(compile(open({str(d / 'np' / 'model.py')!r}).read(), 'model.py', 'exec'),"
            " {'__name__': '__main__', '__file__': " + repr(str(d / "np" / "model.py")) + "})\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, check=False)
    assert res.returncode == 0, res.stderr
    got = np.array([[float(v) for v in ln.split(",")] for ln in res.stdout.split()])
    close(got, ref)


def test_generated_code_is_readable_and_names_layers_after_nodes(exported):
    src = (exported["mlp"][3] / "torch" / "model.py").read_text()
    assert "self.h1 = nn.Linear(4, 16, bias=True)" in src
    assert "h1 = self.h1(x)" in src and "return logits" in src
    assert "def loss_fn(output, target)" in src
    weird = (exported["no_loss_identity"][3] / "torch" / "model.py").read_text()
    assert "self.class_ = nn.Linear" in weird and "node 'class'" in weird
    assert "self.forward_" in weird and "self.n_2nd" in weird


@pytest.mark.parametrize("name", ["mlp", "cnn_bn_pool", "tiny_gpt"])
def test_generated_torch_module_trains(exported, name):
    _, x, ref, d = exported[name]
    mod = _import(d / "torch" / "model.py")
    torch.manual_seed(0)
    net = mod.GradscapeModel()
    mod.load_weights(net)
    net.train()
    xb = torch.from_numpy(np.random.default_rng(0).normal(size=(32, *x.shape[1:]))
                          .astype(np.float32))
    n_classes = ref.shape[-1]
    if name == "tiny_gpt":  # ids in, the next id per position as the target
        xb = torch.from_numpy(np.random.default_rng(0).integers(0, 11, (32, 6)).astype(np.float32))
        yb = torch.roll(xb, -1, dims=1)
    else:
        yb = torch.from_numpy((np.arange(32) % n_classes).reshape(-1, 1).astype(np.float32))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = mod.loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] * 0.8


def test_opset_18_and_multiple_outputs(tmp_path):
    spec = graph(
        [("x", "Input", {"features": 3}), ("a", "Dense", {"units": 2}),
         ("b", "Dense", {"units": 4}), ("m", "Mean", {"axis": "all", "keepdims": True}),
         ("ya", "Target", {"features": 2}), ("yb", "Target", {"features": 4}),
         ("la", "MSELoss", {}), ("lb", "MSELoss", {})],
        ["x->a", "x->b", "b->m", "a->la.prediction", "ya->la.target", "b->lb.prediction",
         "yb->lb.target"])
    p = _program(spec)
    export(p, "onnx", tmp_path / "m.onnx", opset=18)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    assert [o.name for o in sess.get_outputs()] == ["output_a", "output_b"]
    x = _input(p)
    p.predict(x)
    got_a, got_b = sess.run(None, {"input": x})
    close(got_a, p.node_value("a"))
    close(got_b, p.node_value("b"))


def test_unexportable_nodes_are_refused_by_name(tmp_path, monkeypatch):
    spec = graph(
        [("x", "Input", {"features": 2}), ("h", "Dense", {"units": 1}),
         ("y", "Target", {"features": 1}), ("cheat", "Add", {}), ("loss", "MSELoss", {})],
        ["x->h", "h->cheat.a", "y->cheat.b", "cheat->loss.prediction", "y->loss.target"])
    for fmt in ("onnx", "torch", "numpy", "safetensors"):
        with pytest.raises(ExportError, match="'y' \\(Target\\)"):
            export(spec, fmt, tmp_path / f"m.{fmt}")
    monkeypatch.setattr(onnx_export, "INFERENCE_OPS", onnx_export.INFERENCE_OPS - {"GELU"})
    with pytest.raises(ExportError, match="Node 'act' \\(GELU\\) cannot be exported to ONNX"):
        export(ZOO["act_GELU_5"], "onnx", tmp_path / "g.onnx")
    no_input = graph([("t", "Parameter", {}), ("sq", "Square", {})], ["t->sq"])
    with pytest.raises(ExportError, match="no Input"):
        export(no_input, "onnx", tmp_path / "n.onnx")
    with pytest.raises(ExportError, match="Unknown export format"):
        export(ZOO["mlp"], "tflite", tmp_path / "x")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_and_predict(tmp_path, capsys):
    spec = json.loads(ZOO["mlp"].to_json())
    spec["nodes"][0]["params"] = {"features": 2}
    spec["training"] = {"dataset": "blobs", "dataset_params": {"classes": 3, "samples": 60},
                        "epochs": 2, "seed": 0, "batch_size": 16}
    gpath = tmp_path / "g.json"
    gpath.write_text(json.dumps(spec))
    model = tmp_path / "m.gsmodel"
    assert main(["train", str(gpath), "--out", str(model)]) == 0
    for fmt, out in (("onnx", "m.onnx"), ("torch", "pt"), ("safetensors", "w.safetensors"),
                     ("numpy", "np/model.py")):
        assert main(["export", str(model), "--format", fmt, "--out", str(tmp_path / out)]) == 0
    assert (tmp_path / "pt" / "model.py").exists() and (tmp_path / "np" / "model.npz").exists()
    assert main(["export", str(gpath), "--format", "onnx", "--out",
                 str(tmp_path / "fresh.onnx")]) == 0  # a plain graph: fresh weights
    rows = tmp_path / "rows.csv"
    rows.write_text("x1,x2\n0.5,1.0\n-2,3\n")
    capsys.readouterr()
    assert main(["predict", str(model), "--csv", str(rows)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "class,label,prob_0,prob_1,prob_2" and len(lines) == 3
    probs = np.array([[float(v) for v in ln.split(",")[2:]] for ln in lines[1:]])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert main(["predict", str(model), "--csv", str(rows), "--out",
                 str(tmp_path / "pred.csv")]) == 0
    assert (tmp_path / "pred.csv").read_text().splitlines() == lines
    bad = tmp_path / "bad.gsmodel"
    bad.write_bytes(b"PK\x03\x04 nonsense")
    assert main(["predict", str(bad), "--csv", str(rows)]) == 2
    assert "damaged" in capsys.readouterr().err
