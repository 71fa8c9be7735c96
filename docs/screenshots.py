"""Regenerate every screenshot used by README.md and docs/ (so they never go stale).

    python docs/screenshots.py            # all of them, into docs/images/
    python docs/screenshots.py hero lab-race   # only these (names without .png)
    python docs/screenshots.py --list

Each picture is one run of the app's own command line (`python -m designer FILE --train N
--screenshot PNG …`, see docs/cli.md), offscreen unless QT_QPA_PLATFORM says otherwise, with
fresh window settings. To add a picture, add a `Shot` to SHOTS. A shot that needs a menu
action the app does not have (a feature not built yet) is skipped with a note, not failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the shots that write their file use the engine
IMAGES = ROOT / "docs" / "images"
EXAMPLES = ROOT / "resources" / "examples"
SIZE = "1280x800"  # every picture: the window a laptop or a projector shows


@dataclass
class Shot:
    """One picture: NAME.png, of EXAMPLE, after the app options ARGS."""

    name: str
    example: str
    args: list[str] = field(default_factory=list)
    what: str = ""  # where it is used / what it shows
    make: Callable[[Path], Path] | None = None  # writes the file to open (instead of EXAMPLE)

    def command(self, out: Path, source: Path | None = None) -> list[str]:
        size = [] if "--size" in self.args else ["--size", SIZE]
        path = source or EXAMPLES / self.example
        return [sys.executable, "-m", "designer", str(path), *size,
                *self.args, "--screenshot", str(out)]


def torch_cnn_onnx(folder: Path) -> Path:
    """A small digits CNN written by torch.onnx.export, as a practitioner would bring one."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 32), nn.SiLU(), nn.Linear(32, 10)).eval()
    path = folder / "digits_torch.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=False)
    return path


def torch_cnn_with_loss(folder: Path) -> Path:
    """The imported CNN with a cross-entropy loss added and the digits data set chosen."""
    from engine.core.spec import GraphSpec
    from engine.files.model_file import save_model
    from engine.files.onnx_import import import_onnx
    from engine.training.loss_head import add_loss

    model = import_onnx(torch_cnn_onnx(folder))
    spec = add_loss(model.spec, "CrossEntropyLoss")
    spec = GraphSpec(spec.nodes, spec.edges, spec.layout,
                     {**spec.training, "dataset": "digits", "batch_size": 32, "lr": 0.003})
    model.spec = spec
    path = folder / "digits_torch.gsmodel"
    save_model(path, spec, model.build_program())
    return path


def image_folder_graph(scratch: Path) -> Path:
    """The digits CNN set to train on a generated folder of images (two classes)."""
    import json

    import numpy as np
    from PIL import Image, ImageDraw

    folder = scratch / "shapes"
    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(24):
            img = Image.new("L", (32, 32), 0)
            draw = ImageDraw.Draw(img)
            c, r = rng.integers(11, 21, size=2), int(rng.integers(5, 10))
            box = [int(c[0] - r), int(c[1] - r), int(c[0] + r), int(c[1] + r)]
            (draw.ellipse if name == "circle" else draw.rectangle)(box, fill=255)
            img.save(folder / name / f"{i:02d}.png")
    spec = json.loads((EXAMPLES / "digits_cnn.json").read_text(encoding="utf-8"))
    for node in spec["nodes"]:
        if node["op"] == "Input":
            node["params"] = {"shape": [1, 8, 8]}
        if node["op"] == "Dense" and node["params"].get("units") == 10:
            node["params"]["units"] = 2
    spec["training"].update(images=str(folder), title="Shapes from an image folder")
    graph = scratch / "shapes.json"
    graph.write_text(json.dumps(spec), encoding="utf-8")
    return graph


def annotated_xor_graph(scratch: Path) -> Path:
    """The XOR example as a teacher annotates it: a frame, a sticky note, a bent wire."""
    import json

    spec = json.loads((EXAMPLES / "xor_mlp.json").read_text(encoding="utf-8"))
    spec["notes"] = [
        {"id": "frame", "kind": "frame", "text": "Input and hidden layer: the plane is bent here",
         "rect": [-20.0, -60.0, 632.0, 130.0]},
        {"id": "note", "kind": "note", "rect": [620.0, 110.0, 230.0, 100.0],
         "text": "Each wire shows mean |∂L/∂wire| of the last step: how much the loss "
                 "cares about what the wire carries."}]
    spec["waypoints"] = {"y.out->loss.target": [[400.0, 330.0]]}
    graph = scratch / "xor_annotated.json"
    graph.write_text(json.dumps(spec), encoding="utf-8")
    return graph


def big_csv_graph(scratch: Path) -> Path:
    """The spirals classifier set to train on a CSV file of 10^6 rows (the bench's file)."""
    import json

    from bench.large_inputs import _csv_rows

    spec = json.loads((EXAMPLES / "spirals_classifier.json").read_text(encoding="utf-8"))
    spec["training"].pop("dataset", None)
    spec["training"].update(csv=str(_csv_rows(scratch, 1_000_000)), validation_split=0.0,
                            title="A CSV file of a million rows")
    graph = scratch / "big_csv.json"
    graph.write_text(json.dumps(spec), encoding="utf-8")
    return graph


# The Data dock (raised over the Training tab), the canvas and the Predictions dock.
DATA_VIEW = ["--zoom", "fit", "--size", "1400x800", "--raise", "data",
             "--hide", "palette,inspector,history,chain rule,optimizer state,backprop,weights"]

SHOTS = [
    Shot("hero", "spirals_classifier.json",
         ["--train", "1500", "--zoom", "fit", "--size", "1600x900",
          "--hide", "palette,inspector,history,chain rule,optimizer state,backprop,predictions,"
          "weights,data"],
         "README: the two-spirals classifier after 1500 steps, gradient-coloured wires"),
    Shot("editor", "xor_mlp.json",
         ["--select", "h1", "--zoom", "fit", "--size", "1700x850",
          "--hide", "training,backprop,predictions,weights,data"],
         "user guide: palette, canvas, inspector with a Dense layer selected"),
    Shot("training", "xor_mlp.json",
         ["--train", "300", "--select", "h1->a1", "--zoom", "fit", "--size", "1700x1000",
          "--hide", "backprop,predictions,weights,data"],
         "user guide: training dock, loss plot, overlay legend, wire detail panel"),
    Shot("chain-rule", "chain_rule.json",
         ["--train", "1", "--zoom", "fit", "--size", "1300x640",
          "--hide", "palette,inspector,history,chain rule,optimizer state,training,backprop,"
          "predictions,weights,data"],
         "concepts: the pen-and-paper chain with every wire's gradient"),
    Shot("xor-start", "xor_mlp.json",
         ["--train", "1", "--zoom", "fit", "--size", "1300x560",
          "--hide", "palette,inspector,history,chain rule,optimizer state,training,backprop,"
          "predictions,weights,data"],
         "concepts: XOR after one step (gradients large near the loss)"),
    Shot("presentation", "chain_rule.json",
         ["--train", "1", "--presentation"],
         "concepts: View → Presentation Mode (F11), large type and thick wires"),
    Shot("presentation-lesson", "xor_mlp.json",
         ["--open", "learn_chain_rule", "--train", "50", "--select", "h1->a1",
          "--presentation"],
         "concepts: presentation mode keeps the raised lesson panel, in large type"),
    Shot("default-layout", "padded_cnn.json", ["--train", "50"],
         "user guide: the default layout at 1280×800, a twelve-node CNN whole and legible"),
    Shot("training-loop", "xor_mlp.json",
         ["--open", "learn_training_loop", "--train", "1"],
         "concepts: Learn → The Training Loop beside the graph, with the initial weights"),
    Shot("stuck-run", "spirals_classifier.json",
         ["--set", "dataset=circles", "--set", "optimizer=sgd", "--set", "lr=3",
          "--set", "validation_split=0", "--train", "120"],
         "concepts: a run with a learning rate of 3 stops learning and says so"),
    Shot("data-table", "chain_rule.json", ["--train", "1", *DATA_VIEW],
         "your data: the chain example's table in the Data dock, raw numbers"),
    Shot("data-draw", "drawn_points.json", ["--train", "300", *DATA_VIEW],
         "your data: points drawn on the Predictions plane, kept in the table"),
    Shot("data-images", "digits_cnn.json", ["--train", "20", "--wait", "2500", *DATA_VIEW],
         "your data: an image folder with the preview grid", make=image_folder_graph),
    Shot("data-csv", "spirals_classifier.json", DATA_VIEW,
         "your data: a 10^6-row CSV in the Data dock, first rows and a subsampled plot",
         make=big_csv_graph),
    Shot("blocks-closed", "residual_block.json",
         ["--train", "200", "--zoom", "fit", "--size", "1500x700",
          "--hide", "palette,inspector,history,chain rule,optimizer state,training,backprop,"
          "predictions,weights"],
         "user guide: a closed block (the residual example), gradients on its outer wires, "
         "a sticky note"),
    Shot("blocks-open", "residual_block.json",
         ["--select", "residual", "--open", "open_block", "--train", "200", "--zoom", "fit",
          "--size", "1500x700",
          "--hide", "palette,inspector,history,chain rule,optimizer state,training,backprop,"
          "predictions,weights"],
         "user guide: the same block opened in place, gradients on its inner wires"),
    Shot("notes", "xor_mlp.json",
         ["--train", "300", "--zoom", "fit", "--size", "1400x760",
          "--hide", "palette,inspector,history,chain rule,optimizer state,training,backprop,"
          "predictions,weights"],
         "user guide: a comment frame, a sticky note and a bent wire on a training graph",
         make=annotated_xor_graph),
    Shot("minimap", "residual_block.json",
         ["--zoom", "130", "--size", "1300x800", "--hide", "training,backprop,predictions,"
          "weights"],
         "user guide: the minimap of a graph larger than the view, the palette's blocks"),
    # Shots of dialogs and panels opened by a menu action (skipped while the action is missing).
    Shot("export-dialog", "xor_mlp.json", ["--train", "300", "--action", "export"],
         "user guide: File → Export Model…"),
    Shot("onnx-import", "", ["--zoom", "fit", "--size", "1500x800",
                             "--hide", "training,backprop,predictions,weights"],
         "import/export: a PyTorch CNN opened from .onnx", make=torch_cnn_onnx),
    Shot("onnx-finetune", "", ["--train", "200", "--zoom", "fit", "--size", "1600x950",
                               "--hide", "palette,backprop,weights,history,chain rule,"
                               "optimizer state"],
         "import/export: the imported CNN with a loss, trained 200 steps on digits",
         make=torch_cnn_with_loss),
    Shot("lab-chain-rule", "chain_rule.json",
         ["--train", "1", "--select", "a", "--open", "learn_chain_rule"],
         "learning lab: chain-rule inspector docked beside the graph"),
    Shot("lab-neurons", "xor_mlp.json",
         ["--train", "300", "--select", "h1", "--action", "learn_neurons",
          "--hide", "palette,history,predictions,weights,backprop,training,data"],
         "learning lab: a Dense layer expanded into its neurons"),
    Shot("lab-gradcheck", "xor_mlp.json",
         ["--train", "50", "--action", "learn_gradcheck", "--wait", "4000"],
         "learning lab: gradient check table"),
    Shot("lab-optimizer-state", "xor_mlp.json",
         ["--select", "out", "--open", "learn_optimizer", "--train", "100",
          "--hide", "data"],
         "learning lab: optimizer state of one parameter"),
    Shot("lab-landscape", "chain_rule.json",
         ["--train", "30", "--action", "learn_landscape", "--click", "Compute",
          "--wait", "6000"],
         "learning lab: loss landscape with a dot per step and the −α∇L arrow"),
    Shot("lab-race", "xor_mlp.json",
         ["--action", "learn_race", "--click", "Start race", "--wait", "40000"],
         "learning lab: optimizer race"),
    Shot("lab-lr-sweep", "xor_mlp.json",
         ["--action", "learn_lr_sweep", "--click", "Run sweep", "--wait", "8000"],
         "learning lab: learning-rate sweep"),
    Shot("gpt-training", "tiny_gpt.json",
         ["--train", "60", "--zoom", "fit", "--size", "1700x1000",
          "--hide", "backprop,predictions,weights,history,inspector,chain rule,optimizer state"],
         "sequences: the tiny GPT training on Aesop's fables, gradients on every wire"),
    Shot("gpt-block-open", "tiny_gpt.json",
         ["--select", "block1", "--open", "open_block", "--train", "60", "--zoom", "fit",
          "--size", "1500x900",
          "--hide", "palette,inspector,history,chain rule,optimizer state,training,backprop,"
          "predictions,weights"],
         "sequences: the tiny GPT's first transformer block opened, gradients inside it"),
    Shot("lab-attention", "tiny_gpt.json",
         ["--train", "120", "--action", "learn_attention", "--wait", "3000"],
         "sequences: one attention head's weights and gradients, characters on both axes"),
    Shot("lab-generate", "tiny_gpt.json",
         ["--train", "120", "--action", "learn_generate", "--click", "Generate",
          "--wait", "8000"],
         "sequences: text sampled from the trained tiny GPT"),
]

MISSING_ACTION = "There is no action called"


def run(shot: Shot, folder: Path) -> str:
    """Make one picture; returns 'ok', 'skipped: …' or 'FAILED: …'."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = folder / f"{shot.name}.png"
    with tempfile.TemporaryDirectory() as tmp:
        source = shot.make(Path(tmp)) if shot.make is not None else None
        result = subprocess.run(shot.command(out, source), cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
    if result.returncode == 0:
        return "ok"
    errors = [line for line in result.stderr.splitlines() if line.strip()
              and "propagateSizeHints" not in line]
    if any(MISSING_ACTION in line for line in errors):
        return "skipped: the app has no such action yet"
    return "FAILED: " + (errors[-1] if errors else f"exit status {result.returncode}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="shots to make (default: all)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder (default docs/images)")
    parser.add_argument("--list", action="store_true", help="list the shots and exit")
    args = parser.parse_args(argv)
    if args.list:
        for shot in SHOTS:
            print(f"{shot.name:16} {shot.what}")
        return 0
    known = {s.name for s in SHOTS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown shot(s): {', '.join(unknown)} (see --list)")
    chosen = [s for s in SHOTS if not args.names or s.name in args.names]
    failed = 0
    for shot in chosen:
        start = time.perf_counter()
        status = run(shot, args.out)
        failed += status.startswith("FAILED")
        print(f"{shot.name + '.png':20} {status}  ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
