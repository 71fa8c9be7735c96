"""A step's freed memory is kept for the next step's arrays (engine.core.allocator): no page
faults for memory the last step used, and the user's own malloc settings win."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Twelve 3 MB arrays made and freed together, as a step's activations are: glibc's defaults
# hand the freed heap top back to the system and fault every page in again the next time.
SCRIPT = """
import resource
import numpy as np
from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec
from engine.core import allocator

compile_graph(GraphSpec.from_dict({"format": "gradscape-graph", "version": 1, "nodes": [
    {"id": "x", "op": "Input", "params": {"features": 2}},
    {"id": "d", "op": "Dense", "params": {"units": 1}},
    {"id": "y", "op": "Target", "params": {"features": 1}}, {"id": "loss", "op": "MSELoss"}],
    "edges": [{"from": "x.out", "to": "d.in"}, {"from": "d.out", "to": "loss.prediction"},
              {"from": "y.out", "to": "loss.target"}]}), seed=0)

def step():
    arrays = [np.ones(3 << 18, np.float32) for _ in range(12)]
    del arrays

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(allocator.keep_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("GRADSCAPE_MALLOC", "GLIBC_TUNABLES") and not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env={**clean, **env},
                         capture_output=True, text=True, timeout=120, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_compiling_a_network_keeps_freed_memory_for_the_next_step():
    kept, faults = _faults()
    if kept != "True":
        pytest.skip("not glibc")
    # 20 steps × 36 MB would be ~184,000 faults if the memory went back each time
    assert faults < 500
    assert _faults(GRADSCAPE_MALLOC="0")[1] > 20 * 9000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_the_users_own_malloc_settings_win():
    kept, faults = _faults(MALLOC_TRIM_THRESHOLD_="100")
    assert kept == "False" and faults > 20 * 9000
    assert _faults(GLIBC_TUNABLES="glibc.malloc.trim_threshold=100")[0] == "False"
