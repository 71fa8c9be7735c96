"""Large but allowed inputs: time and peak memory of opening them, GUI next to the CLI.

Run:  python bench/large_inputs.py  [--quick]
Each case runs in a fresh subprocess (peak RSS = resource.getrusage maxrss of that process).
Targets (issue 17): a 10^6-row CSV opens in the GUI in ≤ 10 s and ≤ 2 GB; a 20,000-node
graph opens in ≤ 5 s; wide or repetitive CSV headers are linear. Writes docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _graph_file(folder: Path, nodes: int) -> Path:
    from bench.editor_scale import generated_graph
    from engine.core.spec import save_graph

    path = folder / f"graph_{nodes}.json"
    if not path.exists():
        save_graph(generated_graph(nodes, int(nodes * 1.2)), path)
    return path


def _csv_rows(folder: Path, rows: int) -> Path:
    import numpy as np

    path = folder / f"rows_{rows}.csv"
    if not path.exists():
        rng = np.random.default_rng(0)
        x = rng.normal(size=(rows, 2))
        label = (x[:, 0] * x[:, 1] > 0).astype(int)
        with open(path, "w") as fh:
            fh.write("x1,x2,label\n")
            np.savetxt(fh, np.column_stack([x, label]), fmt=["%.5f", "%.5f", "%d"],
                       delimiter=",")
    return path


def _csv_header(folder: Path, names: list[str], tag: str) -> Path:
    path = folder / f"header_{tag}.csv"
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    return path


# -- the cases (each runs in its own process) -----------------------------------------------

def case_graph_cli(folder: Path, nodes: int) -> None:
    from engine.core.compiler import analyze
    from engine.core.spec import load_graph

    analyze(load_graph(_graph_file(folder, nodes)))


def _window():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from designer.controller import Controller
    from designer.main_window import MainWindow

    tmp = tempfile.mkdtemp(prefix="gs-large-")
    win = MainWindow(Controller(recovery_dir=f"{tmp}/r"),
                     QSettings(f"{tmp}/s.ini", QSettings.Format.IniFormat))
    win.ask_save_changes = lambda: "discard"
    win.resize(1280, 800)
    win.show()
    app.processEvents()
    return app, win


def case_graph_gui(folder: Path, nodes: int) -> float:
    path = _graph_file(folder, nodes)
    app, win = _window()
    start = time.perf_counter()
    win.open_path(path, ask=False)
    app.processEvents()
    return time.perf_counter() - start


def case_csv_cli(folder: Path, rows: int) -> None:
    from engine.data import load_csv

    load_csv(_csv_rows(folder, rows))


def case_csv_gui(folder: Path, rows: int) -> float:
    """Train on the CSV from the window: until the session is ready, plus one prediction
    picture (the part that drew every point before)."""
    from designer.lab.prediction_view import PredictionView, evaluate
    from designer.training import session as states

    path = _csv_rows(folder, rows)
    app, win = _window()
    start = time.perf_counter()
    win.open_path(ROOT / "resources" / "examples" / "spirals_classifier.json", ask=False)
    block = win.document.training()
    block.update(csv=str(path), validation_split=0.0)
    block.pop("dataset", None)
    win.controller.set_training(block)
    session = win.training.session
    session.compile_now()
    deadline = time.perf_counter() + 120
    while session.state not in (states.READY, states.PAUSED) and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    if session.state not in (states.READY, states.PAUSED):
        raise RuntimeError(f"session ended in state {session.state}")
    done = []
    session.run_on_worker(lambda program, trainer: evaluate(program, trainer), done.append)
    while not done and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    view = PredictionView(win)
    view.show()
    view.show_prediction(done[0])
    app.processEvents()
    return time.perf_counter() - start


BIG_UNITS = 100_000  # issue 17: Dense units = 100000 froze the window ~6 s at 3.9 GB


def _big_spec():
    from engine.core.spec import load_graph

    spec = load_graph(ROOT / "resources" / "examples" / "spirals_classifier.json")
    for node in spec.nodes:
        if node.id == "h1":
            node.params["units"] = BIG_UNITS
    return spec


def _worker_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def case_big_cli(folder: Path, steps: int) -> float:
    """Seconds per step of a headless Trainer on the 100,000-unit network."""
    from engine.core.compiler import compile_graph
    from engine.training.trainer import TrainConfig, Trainer, load_data

    spec = _big_spec()
    cfg = TrainConfig.from_block(spec.training)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed, input_grads=True)
    data, val = load_data(cfg).split(float(cfg.validation_split), cfg.seed)
    trainer = Trainer(program, data, cfg, val)
    trainer.step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return (time.perf_counter() - start) / steps


def case_big_gui(folder: Path, seconds: int) -> dict:
    """The window trains the 100,000-unit network (Predictions shown): seconds per step,
    the longest GUI-thread stall (5 ms heartbeat) and the training process's peak memory."""
    import multiprocessing

    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    app, win = _window()
    win.open_path(ROOT / "resources" / "examples" / "spirals_classifier.json", ask=False)
    dock = win.lab_training.predictions_dock
    dock.show()
    dock.raise_()
    session = win.training.session

    def run_loop(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    run_loop(500)
    clock, gaps, last = QElapsedTimer(), [], [0.0]
    clock.start()

    def beat() -> None:
        now = clock.nsecsElapsed() / 1e6
        if last[0]:
            gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(beat)
    heartbeat.start()
    win.controller.set_param("h1", "units", BIG_UNITS)  # as the Inspector does
    session.play()
    run_loop(1000)
    step0, t0 = session.run.step, time.perf_counter()
    run_loop(seconds * 1000)
    steps = session.run.step - step0
    per_step = (time.perf_counter() - t0) / max(steps, 1)
    heartbeat.stop()
    worker = max((_worker_peak_mb(c.pid) for c in multiprocessing.active_children()),
                 default=float("nan"))
    session.pause()
    win.close()
    win.training.shutdown()
    return {"seconds": per_step, "stall_ms": max(gaps), "worker_mb": worker}


def case_header(folder: Path, kind: str) -> None:
    from engine.data import csv_preview

    names = [f"c{i}" for i in range(20_000)] if kind == "wide" else ["x"] * 3000
    csv_preview(_csv_header(folder, names, kind))


CASES = {
    "graph_cli": case_graph_cli, "graph_gui": case_graph_gui,
    "csv_cli": case_csv_cli, "csv_gui": case_csv_gui, "header": case_header,
    "big_cli": case_big_cli, "big_gui": case_big_gui,
}


def run_child(case: str, folder: str, arg: str) -> None:
    fn = CASES[case]
    value: object = int(arg) if arg.isdigit() else arg
    start = time.perf_counter()
    measured = fn(Path(folder), value)
    extra = measured if isinstance(measured, dict) else {}
    seconds = measured if isinstance(measured, float) else time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb(), **extra}))


def measure(case: str, folder: Path, arg: object) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", case, str(folder), str(arg)],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    if out.returncode != 0:
        return {"seconds": float("nan"), "peak_mb": float("nan"),
                "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _kept_rows() -> list[str]:
    """The rows other than the graphs' from the last full run in docs/benchmarks.md."""
    from bench.common import DOC

    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    start, end = "<!-- large-inputs:start -->", "<!-- large-inputs:end -->"
    if start not in text or end not in text:
        return []
    section = text[text.index(start):text.index(end)]
    return [line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith(("| graph of", "| input"))]


def _other_lines(folder: Path, rows: int) -> list[str]:
    """The CSV, header and wide-layer rows."""
    lines = []
    _csv_rows(folder, rows)
    gui, cli = measure("csv_gui", folder, rows), measure("csv_cli", folder, rows)
    lines.append(f"| CSV of {rows:,} rows (load + first prediction picture) | "
                 f"{gui['seconds']:.2f} s | {cli['seconds']:.2f} s | "
                 f"{gui['seconds'] / cli['seconds']:.1f}× | {gui['peak_mb']:.0f} MB | "
                 f"≤ 10 s, ≤ 2 GB |")
    print(lines[-1], flush=True)
    for kind, label in (("wide", "CSV header of 20,000 columns"),
                        ("repeat", "CSV header of 3,000 identical names")):
        r = measure("header", folder, kind)
        lines.append(f"| {label} (preview) | | {r['seconds']:.2f} s | | {r['peak_mb']:.0f} MB "
                     "| linear |")
        print(lines[-1], flush=True)
    gui, cli = measure("big_gui", folder, 8), measure("big_cli", folder, 10)
    lines.append(f"| Dense of {BIG_UNITS:,} units in the spirals net, training (time per "
                 f"step; Predictions shown) | {gui['seconds']:.2f} s | {cli['seconds']:.2f} s "
                 f"| {gui['seconds'] / cli['seconds']:.1f}× | {gui['peak_mb']:.0f} MB "
                 f"(training process {gui.get('worker_mb', float('nan')):.0f} MB; longest "
                 f"GUI-thread stall {gui.get('stall_ms', float('nan')):.0f} ms) | "
                 "no stall over ~100 ms |")
    print(lines[-1], flush=True)
    return lines


def main() -> None:
    from bench.common import machine_line, write_section

    quick = "--quick" in sys.argv
    graphs_only = "--graphs" in sys.argv
    folder = Path(tempfile.mkdtemp(prefix="gs-large-inputs-"))
    sizes = (5_000,) if quick else (5_000, 10_000, 20_000)
    load_before = os.getloadavg()[0]
    rows = 100_000 if quick else 1_000_000
    lines = ["| input | GUI | CLI / engine | GUI ÷ CLI | GUI peak RSS | target |",
             "|---|---|---|---|---|---|"]
    for n in sizes:
        _graph_file(folder, n)
        gui, cli = measure("graph_gui", folder, n), measure("graph_cli", folder, n)
        lines.append(f"| graph of {n:,} nodes | {gui['seconds']:.2f} s | {cli['seconds']:.2f} s "
                     f"| {gui['seconds'] / cli['seconds']:.1f}× | {gui['peak_mb']:.0f} MB "
                     f"| {'≤ 5 s' if n == 20_000 else ''} |")
        print(lines[-1], flush=True)
    lines += _kept_rows() if graphs_only else _other_lines(folder, rows)
    kept = (" The graph rows were measured again (`--graphs`); the other rows are from the "
            "last full run." if graphs_only else "")
    body = ("## Large inputs: GUI next to the CLI\n\n"
            f"`python bench/large_inputs.py` on {machine_line()}; 1-minute load average "
            f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after. Each cell is one run "
            "in a fresh process (times include reading the file, not starting Python); on a "
            "shared machine absolute times are noisy. Before the "
            "fixes of issue 17 the GUI took 3.1 / 9.0 / 28.7 s for the graphs, 108 s and "
            "12.3 GB for the CSV, 139 s for the repeated header and > 180 s for the wide one "
            "(as reported in the issue); the canvas work of issue 17 then brought the GUI ÷ CLI "
            "ratio of the 20,000-node graph from 21.9× (34.5 s, 1,246 MB) to 7.4× (5.17 s), and "
            "a second round (port items made when first shown, wires painting their shape "
            "text, no garbage collection during the load; 6.25 s → 3.67 s back to back on the "
            "shared machine) to the figure below. "
            "Before the fixes the 100,000-unit network froze the counter ~6 s at 3.9 GB (the "
            "Predictions view fed 4,096 grid points at once through the wide layer: 1.8–3.3 GB "
            "in the training process, over a second per update). "
            "Compare ratios: the CLI column shows how busy the machine was." + kept + "\n\n"
            + "\n".join(lines) + "\n")
    if not quick:
        write_section("large-inputs", body)
    print(body)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--child":
        run_child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
