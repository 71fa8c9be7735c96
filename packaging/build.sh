#!/usr/bin/env bash
# Build the one-folder desktop app with PyInstaller: dist/gradscape/gradscape.
#
#   packaging/build.sh            # uses (and if needed creates) the venv build/venv
#   PYTHON=python3.12 VENV=/tmp/v packaging/build.sh
#
# The venv gets PyInstaller and a plain (non-editable) `pip install .` of this checkout, so the
# bundle holds what a wheel holds. Set SYSTEM_SITE=1 to create the venv with
# --system-site-packages (reuses an installed PySide6/numpy instead of downloading them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/build/venv}"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "== creating $VENV"
    if [[ "${SYSTEM_SITE:-0}" == 1 ]]; then
        "$PYTHON" -m venv --system-site-packages "$VENV"
    else
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
if ! "$VENV/bin/python" -c "import PyInstaller" 2>/dev/null; then
    echo "== installing PyInstaller"
    "$VENV/bin/python" -m pip install -q "pyinstaller>=6.10"
fi

echo "== installing gradscape from $ROOT"
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$ROOT"
"$VENV/bin/python" -m pip install -q "$ROOT"  # its dependencies, if missing

echo "== PyInstaller"
start=$(date +%s)
"$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" \
    "$ROOT/packaging/gradscape.spec"
echo "== built $ROOT/dist/gradscape in $(( $(date +%s) - start )) s," \
     "$(du -sh "$ROOT/dist/gradscape" | cut -f1)"
