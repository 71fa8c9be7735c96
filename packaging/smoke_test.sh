#!/usr/bin/env bash
# Build the PyInstaller app and check that it starts: it must open the bundled XOR example
# and the bundled digits CNN example offscreen, save a screenshot of each and exit with 0.
#
#   packaging/smoke_test.sh              # build (packaging/build.sh), then run
#   SKIP_BUILD=1 packaging/smoke_test.sh # run an existing dist/gradscape
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="$ROOT/dist/gradscape/gradscape"
OUT="${OUT:-$ROOT/build/smoke}"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    "$ROOT/packaging/build.sh"
fi
[[ -x "$APP" ]] || { echo "FAIL: $APP missing; run packaging/build.sh" >&2; exit 1; }

INTERNAL="$ROOT/dist/gradscape/_internal"
for f in engine/data/files/digits_8x8.npz gradscape_resources/examples/xor_mlp.json \
         gradscape_resources/icons/hicolor/256x256/apps/gradscape.png; do
    [[ -f "$INTERNAL/$f" ]] || { echo "FAIL: $f is not in the bundle" >&2; exit 1; }
done

# A throw-away home: no settings or recovery files of the user are read or written.
SANDBOX="$(mktemp -d)"
trap 'rm -rf "$SANDBOX"' EXIT
export HOME="$SANDBOX" XDG_CONFIG_HOME="$SANDBOX/config" XDG_DATA_HOME="$SANDBOX/data"
export XDG_CACHE_HOME="$SANDBOX/cache" XDG_RUNTIME_DIR="$SANDBOX/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export QT_QPA_PLATFORM=offscreen
mkdir -p "$OUT"
cd "$SANDBOX"  # not the checkout, so nothing can come from the source tree

run() {  # run NAME ARGS...: start the app, require exit 0 and a non-empty PNG
    local name="$1"; shift
    local png="$OUT/$name.png" start end
    rm -f "$png"
    start=$(date +%s%N)
    if ! timeout 120 "$APP" "$@" --screenshot "$png"; then
        echo "FAIL: $name: the app exited with an error" >&2; exit 1
    fi
    end=$(date +%s%N)
    [[ -s "$png" ]] || { echo "FAIL: $name: no screenshot written" >&2; exit 1; }
    echo "ok: $name ($(( (end - start) / 1000000 )) ms, $(stat -c %s "$png") bytes)"
}

run default                                          # opens the bundled XOR example
run digits "$INTERNAL/gradscape_resources/examples/digits_cnn.json"
echo "screenshots in $OUT; bundle $(du -sh "$ROOT/dist/gradscape" | cut -f1)"
