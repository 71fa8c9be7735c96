"""engine/ must stay pure numpy: no Qt, no pyqtgraph, so it runs headless and in CI."""

import re
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"
FORBIDDEN = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt\d?|pyqtgraph|shiboken\d?)\b", re.M)


def test_no_engine_module_imports_qt():
    offenders = [str(p.relative_to(ENGINE.parent)) for p in ENGINE.rglob("*.py")
                 if FORBIDDEN.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_importing_the_engine_loads_no_qt():
    code = ("import sys, engine.cli.main, engine.training.trainer, engine.core.registry;"
            "engine.core.registry.all_ops();"
            "qt=('PySide6','pyqtgraph','shiboken6');"
            "bad=[m for m in sys.modules if m.split('.')[0] in qt];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ENGINE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
