"""GUI training throughput and responsiveness.

With the spirals example training in the main window (gradient overlay, wire labels, loss
plot and predictions all on), compare steps per second with a headless Trainer on the same
graph and settings (target: ratio >= 0.95), and measure the longest stall of the GUI thread
with a 5 ms heartbeat QTimer (target: <= 30 ms). Writes its table into docs/benchmarks.md.

Run from the repository root: ``python bench/gui_training.py [seconds] [rounds]``
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine_line, write_section  # noqa: E402
from engine.core.compiler import compile_graph  # noqa: E402
from engine.core.spec import load_graph  # noqa: E402
from engine.training.trainer import TrainConfig, Trainer, load_data  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "resources" / "examples" / "spirals_classifier.json"
HEARTBEAT_MS = 5
PAUSES: list[float] = []  # ms from session.pause() to the worker's last step, per round
BUSY: list[float] = []  # per round: the most GUI-thread CPU time (ms) between two heartbeats


def headless_rate(seconds: float) -> float:
    """Steps per second of a plain Trainer on the example (no Qt at all)."""
    spec = load_graph(EXAMPLE)
    cfg = TrainConfig.from_block(spec.training)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed, input_grads=True)
    data = load_data(cfg)
    val = None
    if cfg.validation_split:
        data, val = data.split(float(cfg.validation_split), cfg.seed)
    trainer = Trainer(program, data, cfg, val)
    for _ in range(50):
        trainer.step()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        trainer.step()
        n += 1
    return n / (time.perf_counter() - start)


def gui_rate(seconds: float) -> tuple[float, float, int]:
    """(steps per second, longest heartbeat gap in ms, reports received) in the window."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from designer.controller import Controller
    from designer.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "bench.ini"), QSettings.Format.IniFormat)
    win = MainWindow(Controller(recovery_dir=tmp / "recovery"), settings)
    win.ask_save_changes = lambda: "discard"
    win.resize(1500, 950)
    win.show()
    win.open_path(EXAMPLE, ask=False)
    block = win.document.training()
    block["epochs"] = 0  # train until paused
    win.controller.set_training(block)
    session = win.training.session
    run = session.run
    dock = win.lab_training.predictions_dock  # predictions on, as a learner would have them
    dock.show()
    dock.raise_()
    session.compile_now()
    deadline = time.perf_counter() + 10
    predictions = win.lab_training.predictions
    # As a learner has it: the example opens, its first predictions appear, then Play.
    while (session.state not in ("ready", "paused") or not predictions.updates) \
            and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.005)

    reports = []
    session.report.connect(reports.append)
    clock = QElapsedTimer()
    gaps: list[float] = []
    busy: list[float] = []  # GUI-thread CPU time within each gap: its own work, not waiting
    last = [0.0, 0.0]

    def beat() -> None:
        now = clock.nsecsElapsed() / 1e6
        cpu = time.thread_time() * 1000
        if last[0]:
            gaps.append(now - last[0])
            busy.append(cpu - last[1])
        last[:] = [now, cpu]

    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(beat)
    def run_event_loop(ms: int) -> None:
        """Let Qt's own event loop run, as in the application (no busy polling)."""
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    session.play()
    run_event_loop(500)  # warm up
    clock.start()
    heartbeat.start()
    step0, t0 = run.step, time.perf_counter()
    run_event_loop(int(seconds * 1000))
    step1, t1 = run.step, time.perf_counter()
    heartbeat.stop()
    stops = []
    session.report.connect(lambda r: r.stopped_at and stops.append(r.stopped_at))
    t_pause = time.perf_counter()
    session.pause()
    deadline = time.perf_counter() + 5
    while not stops and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.001)
    pause_ms = (stops[0] - t_pause) * 1000 if stops else float("nan")
    PAUSES.append(pause_ms)
    BUSY.append(max(busy) if busy else float("nan"))
    win.close()
    win.training.shutdown()
    return (step1 - step0) / (t1 - t0), max(gaps) if gaps else float("nan"), len(reports)


def main(argv: list[str]) -> int:
    seconds = float(argv[1]) if len(argv) > 1 else 3.0
    rounds = int(argv[2]) if len(argv) > 2 else 7
    load_before = os.getloadavg()[0]
    # Alternate the two so that drift in the machine's load hits both alike; quote medians.
    results = []
    for _ in range(rounds):
        h = headless_rate(seconds)
        g, gap, n = gui_rate(seconds)
        results.append((g / h, h, g, gap, n))
    results.sort()
    ratio, headless, gui, _, reports = results[len(results) // 2]
    stall = statistics.median(r[3] for r in results)
    ratios = ", ".join(f"{r[0]:.2f}" for r in results)
    ok_ratio = "yes" if ratio >= 0.95 else "NO"
    ok_stall = "yes" if stall <= 30 else "NO"
    text = "\n".join([
        "## GUI training (spirals example, overlay + loss plot + predictions on)",
        "",
        f"Machine: {machine_line()}; 1-minute load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after the run. {rounds} alternating rounds of "
        f"{seconds:g} s each "
        f"(ratios {ratios}); the median round is shown, {reports} reports received "
        f"({reports / seconds:.0f}/s); the stall is the median of the rounds' longest gaps.",
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
        f"| headless Trainer | {headless:,.0f} steps/s | | |",
        f"| GUI (worker process) | {gui:,.0f} steps/s | | |",
        f"| GUI / headless | {ratio:.2f} | ≥ 0.95 | {ok_ratio} |",
        f"| longest GUI-thread stall ({HEARTBEAT_MS} ms heartbeat) | {stall:.1f} ms | ≤ 30 ms "
        f"| {ok_stall} |",
        f"| most GUI-thread CPU time between two heartbeats (median of rounds' maxima) | "
        f"{statistics.median(BUSY):.1f} ms | | |",
        f"| Pause → training stopped (median) | {statistics.median(PAUSES):.1f} ms | ≤ 100 ms "
        f"| {'yes' if statistics.median(PAUSES) <= 100 else 'NO'} |",
        "",
        "Training runs in a worker process, so painting and training no longer share one "
        "interpreter lock (with a worker thread the ratio was 0.63–0.99, median 0.77). The "
        "GUI thread's own work per frame is small: the pyqtgraph plots are built before the "
        "first step (right after the window's first paint, or when Play is pressed), the "
        "Predictions points reuse one brush per class (a brush per point made pyqtgraph "
        "render hundreds of symbols, ~100 ms on the first result), the legend repaints only "
        "when its scale changes, the plots' axes keep a fixed width and no SI-prefix labels "
        "(re-rendered on every range change, hidden axes too), and the three heavy redraws "
        "(overlay and counters, loss plot, predictions) go through one frame pacer that runs "
        "them one per event-loop turn, 12 ms apart, so their repaints never add up in one "
        "frame. Each round starts as a learner's does: the example opens, its first "
        "predictions appear, then Play. The training process leaves one core to the "
        "window: its BLAS pools use all cores but one (on 2 cores a product split over both "
        "waited for the core the window paints on; the Predictions grid took a median 32 ms "
        "with two BLAS threads, 1.2 ms with one), and it looks for a waiting command once a "
        "millisecond instead of after every step (a pipe poll, 2–3% of this 0.2 ms step). "
        "What is left: the worker also summarises every wire for the 10 reports a second it "
        "sends (about 3% of its time; the headless Trainer does not), and on 2 cores the "
        "window's painting and the worker share the machine with everything else running. "
        "The stall is wall-clock time: when the load average "
        "is above the number of cores, the GUI thread waits for a core and the gaps measure "
        "the machine's queue, not the window's work. Compare the spread of ratios, not one "
        "number.",
    ])
    print(text)
    write_section("gui_training", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
