"""CSV import speed: files of 10^5 and 10^6 rows from the engine, the CLI and the window.

Run:  python bench/csv_import.py  [--quick]   (--quick: 10^5 rows only, one round, no doc)
Each measurement runs in a fresh process (peak RSS = that process's maxrss); rounds are
interleaved and medians quoted. Same-run references: the per-row parser of commit 02c26db
(read from git; skipped without it) and numpy.loadtxt on the same file (numbers only, no
checks: a floor). Target (issue 17): a 10^6-row CSV opens in the GUI in ≤ 10 s and ≤ 2 GB.
Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BASELINE_COMMIT = "02c26db"
EXAMPLE = ROOT / "resources" / "examples" / "spirals_classifier.json"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _old_loader(folder: Path):
    """load_csv as it was before chunked conversion (None without git)."""
    path = folder / "csv_import_before.py"
    if not path.exists():
        out = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:engine/data/csv_import.py"],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            return None
        path.write_text(out.stdout)
    spec = importlib.util.spec_from_file_location("csv_import_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look themselves up there)
    spec.loader.exec_module(module)
    return module.load_csv


# -- the cases (each runs in its own process) -----------------------------------------------

def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def case_engine(path: Path) -> float:
    from engine.data import load_csv

    return _timed(load_csv, path)


def case_before(path: Path) -> float:
    load = _old_loader(path.parent)
    if load is None:
        raise RuntimeError("no git history")
    return _timed(load, path)


def case_loadtxt(path: Path) -> float:
    import numpy as np

    return _timed(lambda: np.loadtxt(path, delimiter=",", skiprows=1))


def case_cli(path: Path) -> float:
    """`python -m engine trace` on the file: read, compile, one forward + backward pass."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine", "trace", str(EXAMPLE), "--csv", str(path)],
                   check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def case_gui(path: Path) -> float:
    from bench.large_inputs import case_csv_gui

    return case_csv_gui(path.parent, int(path.stem.split("_")[1]))


def case_dock(path: Path) -> dict:
    """Choose the CSV as training data with the Data dock in view: until its table and plot
    are shown, with the longest gap between two turns of the GUI's event loop."""
    from bench.large_inputs import _window

    app, win = _window()
    win.open_path(EXAMPLE, ask=False)
    win.data_dock.show()
    win.data_dock.raise_()
    block = win.document.training()
    block.update(csv=str(path), validation_split=0.0)
    block.pop("dataset", None)
    view = win.data.csv_view
    start = last = time.perf_counter()
    win.controller.set_training(block)
    stall = 0.0
    while view.sample is None and time.perf_counter() - start < 300:
        app.processEvents()
        time.sleep(0.002)
        now = time.perf_counter()
        stall, last = max(stall, now - last), now
    if view.sample is None:
        raise RuntimeError(view.summary.text())
    return {"seconds": time.perf_counter() - start, "stall": stall}


CASES = {"engine": case_engine, "before": case_before, "loadtxt": case_loadtxt,
         "cli": case_cli, "gui": case_gui, "dock": case_dock}


def run_child(case: str, path: str) -> None:
    start = time.perf_counter()
    got = CASES[case](Path(path))
    out = {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb()}
    if isinstance(got, float):
        out["seconds"] = got
    elif isinstance(got, dict):
        out.update(got)
    if case == "cli":
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(out))


def measure(case: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", case, str(path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    if out.returncode != 0:
        print(f"  {case}: failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
        return {}
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else float("nan")


def main() -> None:
    from bench.common import machine_line, write_section
    from bench.large_inputs import _csv_rows

    quick = "--quick" in sys.argv
    folder = Path(tempfile.mkdtemp(prefix="gs-csv-import-"))
    sizes = (100_000,) if quick else (100_000, 1_000_000)
    rounds = 1 if quick else 3
    lines = ["| rows (file size) | what | median time | peak RSS | ÷ engine | target |",
             "|---|---|---:|---:|---:|---|"]
    labels = {
        "engine": "engine `load_csv` (numpy.loadtxt after the sniffed rows)",
        "before": f"engine `load_csv` of {BASELINE_COMMIT} (per-row parser)",
        "loadtxt": "`numpy.loadtxt` (numbers only, no checks)",
        "cli": "CLI `python -m engine trace spirals_classifier.json --csv FILE` "
               "(whole command, with Python start)",
        "gui": "GUI: choose the CSV → ready to train → first prediction picture "
               "(peak RSS: the window's process; the training process holds the data)",
        "dock": "GUI: Data dock shows the file's first rows and subsampled plot",
    }
    for rows in sizes:
        path = _csv_rows(folder, rows)
        runs: dict[str, list[dict]] = {c: [] for c in CASES}
        for r in range(rounds):
            for case in CASES:
                runs[case].append(measure(case, path))
                print(f"  {rows:,} rows, round {r + 1}, {case}: {runs[case][-1]}", flush=True)
        engine = median(runs["engine"], "seconds")
        size = f"{rows:,} ({path.stat().st_size / 1e6:.1f} MB)"
        for case in CASES:
            t = median(runs[case], "seconds")
            extra = (f" (longest GUI-thread stall {median(runs[case], 'stall'):.2f} s)"
                     if case == "dock" else "")
            target = "≤ 10 s, ≤ 2 GB" if case in ("gui", "dock") and rows == 1_000_000 else ""
            lines.append(f"| {size} | {labels[case]}{extra} | {t:.2f} s | "
                         f"{median(runs[case], 'peak_mb'):.0f} MB | {t / engine:.2f}× "
                         f"| {target} |")
            print(lines[-1], flush=True)
    body = ("## CSV import: 10^5 and 10^6 rows\n\n"
            f"`python bench/csv_import.py` on {machine_line()}. Median of {rounds} interleaved "
            "rounds, each measurement in a fresh process (times exclude starting Python and "
            "imports, except the CLI row, which is the whole command). The machine was shared "
            "with other jobs (load average above the 2 cores), so absolute times are noisy; "
            "compare with the references measured in the same run. Files: x1, x2 (5 "
            "decimals) and a 0/1 label, as in `bench/large_inputs.py`. The engine reads a file "
            "of numbers with numpy.loadtxt after the rows it sniffs; a file with text or a "
            "problem goes through the csv module a chunk at a time, converting whole columns "
            "with numpy. The GUI row includes the training process reading the file, one "
            "prediction of the Predictions dock and drawing it; the stall is the longest gap "
            "between two turns of the window's event loop while the Data dock reads the file "
            "in a process of its own.\n\n"
            + "\n".join(lines) + "\n")
    if not quick:
        write_section("csv-import", body)
    print(body)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        run_child(sys.argv[2], sys.argv[3])
    else:
        main()
