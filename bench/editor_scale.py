"""Editor scale: open generated 500-node/600-wire and 2,000-node/2,400-wire graphs and
repaint while panning (and zooming, for the smaller one).

Run:  python bench/editor_scale.py
Offscreen (QT_QPA_PLATFORM=offscreen), the real main window's canvas: a repaint is
`viewport().repaint()`, the paint event Qt runs on every pan step (items, grid and the
minimap and legend floating over the canvas), not a render into a side image. Opening
includes the first paint. Prints a table and writes it to docs/benchmarks.md. Targets:
open ≤ 1 s (500) / ≤ 2 s (2,000), repaint ≤ 16 ms median.
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

from PySide6.QtCore import QPointF, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QDockWidget  # noqa: E402

from bench.common import machine_line, write_section  # noqa: E402
from engine.core.spec import GraphSpec, save_graph  # noqa: E402

NODES, WIRES = 500, 600
BIG_NODES, BIG_WIRES = 2000, 2400


def generated_graph(nodes: int = NODES, wires: int = WIRES) -> GraphSpec:
    """Parallel chains of Tanh/Add nodes (50 per chain) with cross links, on a grid."""
    chains = max(10, nodes // 50)
    per_chain = nodes // chains
    node_list, edges, layout = [], [], {}
    for c in range(chains):
        for i in range(per_chain):
            nid = f"n{c}_{i}"
            op = "Input" if i == 0 else ("Add" if i % 2 == 0 else "Tanh")
            node_list.append({"id": nid, "op": op, "params": {"features": 4} if i == 0 else {}})
            layout[nid] = [i * 240.0, c * 160.0]
            if i > 0:
                port = "a" if op == "Add" else "in"
                edges.append({"from": f"n{c}_{i - 1}.out", "to": f"{nid}.{port}"})
    # Cross links into every Add's second port until the wire budget is used.
    for c in range(chains):
        for i in range(2, per_chain, 2):
            if len(edges) >= wires:
                break
            src = f"n{(c + 1) % chains}_{i - 1}"
            edges.append({"from": f"{src}.out", "to": f"n{c}_{i}.b"})
    return GraphSpec.from_dict({"format": "gradscape-graph", "version": 1, "nodes": node_list,
                                "edges": edges, "layout": layout})


def measure(app, window, nodes: int, wires: int, zooming: bool) -> dict:
    """Open a generated graph three times, then time full repaints while panning.

    With `zooming`, panning alternates with zoom changes (50–80 %); without, the view pans
    at the zoom the file opened with.
    """
    spec = generated_graph(nodes, wires)
    path = Path(tempfile.mkdtemp(prefix="gs-bench-")) / f"big{nodes}.json"
    save_graph(spec, path)
    for dock in window.findChildren(QDockWidget):
        dock.show()
    window.view.setMinimumSize(0, 0)
    window.view.setMaximumSize(16777215, 16777215)
    app.processEvents()
    opens = []
    for _ in range(3):
        t0 = time.perf_counter()
        window.open_path(path, ask=False)
        app.processEvents()
        opens.append(time.perf_counter() - t0)

    # Measure the canvas itself at a typical size: the docks are hidden.
    for dock in window.findChildren(QDockWidget):
        dock.hide()
    app.processEvents()
    window.view.setFixedSize(1280, 800)
    app.processEvents()
    view = window.view
    viewport = view.viewport()
    if zooming:
        view.set_zoom(0.6)
    else:
        view.show_graph()  # what opening the file shows
    zoom0 = view.zoom()
    times = []
    for k in range(120):
        if k % 2 or not zooming:
            step = 37 if (k // 30) % 2 == 0 else -37
            view.horizontalScrollBar().setValue(view.horizontalScrollBar().value() + step)
        else:
            view.set_zoom(0.5 + 0.3 * ((k // 2) % 5) / 4, QPointF(800, 500))
        app.processEvents()  # the scroll's own update and the minimap's refresh
        t0 = time.perf_counter()
        viewport.repaint()
        times.append(time.perf_counter() - t0)
    visible = len(view.items(viewport.rect()))
    view.fit_all()  # the whole graph at once: every item painted
    app.processEvents()
    all_times = []
    for _ in range(20):
        t0 = time.perf_counter()
        viewport.repaint()
        all_times.append(time.perf_counter() - t0)
    return {"spec": spec, "open": statistics.median(opens), "median": statistics.median(times),
            "worst": max(times), "n": len(times), "visible": visible, "zoom0": zoom0,
            "fit_zoom": view.zoom(), "fit": statistics.median(all_times),
            "viewport": (viewport.width(), viewport.height())}


def main() -> None:
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      tempfile.mkdtemp(prefix="gs-bench-"))
    app = QApplication.instance() or QApplication([])
    from designer.main_window import MainWindow

    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    small = measure(app, window, NODES, WIRES, zooming=True)
    big = measure(app, window, BIG_NODES, BIG_WIRES, zooming=False)
    w, h = small["viewport"]
    text = "\n".join([
        "## Editor scale: 500 and 2,000-node graphs",
        "",
        f"`python bench/editor_scale.py` — the real main window's canvas offscreen (viewport "
        f"{w}×{h} px), {machine_line()}; a repaint is the viewport's paint event "
        "(`viewport().repaint()`: items, grid, minimap). The machine is shared (load "
        f"average {os.getloadavg()[0]:.0f} on {os.cpu_count()} cores during this run), so "
        "numbers are noisy; medians are quoted.",
        "",
        "| measure | 500 nodes, 600 wires | 2,000 nodes, 2,400 wires | target |",
        "|---|---:|---:|---:|",
        f"| open the file (median of 3) | {small['open'] * 1e3:.0f} ms | "
        f"{big['open'] * 1e3:.0f} ms | ≤ 1000 ms / ≤ 2000 ms |",
        f"| full repaint while panning, median of {small['n']} | {small['median'] * 1e3:.1f} ms "
        f"(zooming 50–80 %, {small['visible']} items in view) | {big['median'] * 1e3:.1f} ms "
        f"(opening zoom {big['zoom0']:.0%}, {big['visible']} items in view) | ≤ 16 ms |",
        f"| full repaint, worst | {small['worst'] * 1e3:.1f} ms | {big['worst'] * 1e3:.1f} ms "
        "| — |",
        f"| whole graph in view, median | {small['fit'] * 1e3:.1f} ms (zoom "
        f"{small['fit_zoom']:.0%}) | {big['fit'] * 1e3:.1f} ms (zoom {big['fit_zoom']:.0%}) "
        "| — |",
    ])
    print(text)
    write_section("editor_scale", text)
    window.close()


if __name__ == "__main__":
    main()
