"""The hostile-file table of tests/test_hostile_files.py, with each file's time and memory.

Run:  python bench/hostile_files.py
Each file is loaded once for time and once under tracemalloc for the peak; the outcome
(refused with a sentence, or read) is printed. Writes the table into docs/reliability.md.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, write_section  # noqa: E402
from tests.hostile import csv_model  # noqa: E402
from tests.test_hostile_files import CASES, MAX_BYTES, MAX_SECONDS, measure  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="gs-hostile-"))
    model = csv_model(folder)[0]
    pickle.loads = pickle.load = None  # any attempt to unpickle would fail loudly
    rows = ["| hostile file | outcome | time | peak memory |", "|---|---|---|---|"]
    worst_t = worst_m = 0.0
    for name, suffix, build, load, _words in CASES:
        error, seconds, peak_bytes = measure(build, load, model, folder / f"hostile{suffix}")
        peak = peak_bytes / 2**20
        worst_t, worst_m = max(worst_t, seconds), max(worst_m, peak)
        outcome = "read" if error is None else "refused: " + error.split(": ", 1)[-1][:70]
        rows.append(f"| {name} | {outcome.replace('|', '/')} | {seconds * 1000:.0f} ms | "
                    f"{peak:.1f} MB |")
        print(rows[-1], flush=True)
    body = ("## Hostile files: measured\n\n"
            f"`python bench/hostile_files.py` on {machine_line()} (a shared, busy machine). "
            f"The test asserts < {MAX_SECONDS:g} s and < {MAX_BYTES // 2**20} MB for each; "
            f"the worst here: {worst_t * 1000:.0f} ms and {worst_m:.0f} MB.\n\n"
            + "\n".join(rows) + "\n")
    write_section("hostile-files", body, DOC)
    print(body)


if __name__ == "__main__":
    main()
