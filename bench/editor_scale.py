"""Editor scale: open a generated 500-node, 600-wire graph and repaint while panning/zooming.

Run:  python bench/editor_scale.py
Offscreen rendering (QT_QPA_PLATFORM=offscreen) of the real main window's canvas. Prints a
table and writes it to docs/benchmarks.md. Targets: open ≤ 1 s, repaint ≤ 16 ms median.
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
from PySide6.QtGui import QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QDockWidget  # noqa: E402

from bench.common import machine_line, write_section  # noqa: E402
from engine.core.spec import GraphSpec, save_graph  # noqa: E402

NODES, WIRES = 500, 600


def generated_graph(nodes: int = NODES, wires: int = WIRES) -> GraphSpec:
    """Ten parallel chains of Tanh/Add nodes with cross links, laid out on a grid."""
    chains = 10
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


def main() -> None:
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      tempfile.mkdtemp(prefix="gs-bench-"))
    app = QApplication.instance() or QApplication([])
    from designer.main_window import MainWindow

    spec = generated_graph()
    path = Path(tempfile.mkdtemp(prefix="gs-bench-")) / "big.json"
    save_graph(spec, path)
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
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
    image = QImage(viewport.size(), QImage.Format.Format_ARGB32_Premultiplied)
    view.set_zoom(0.6)
    times = []
    for k in range(120):
        if k % 2:
            view.horizontalScrollBar().setValue(view.horizontalScrollBar().value() + 37)
        else:
            view.set_zoom(0.5 + 0.3 * ((k // 2) % 5) / 4, QPointF(800, 500))
        t0 = time.perf_counter()
        painter = QPainter(image)
        view.render(painter)
        painter.end()
        times.append(time.perf_counter() - t0)
    median, worst = statistics.median(times), max(times)
    visible = len(view.items(viewport.rect()))
    view.fit_all()  # the whole graph at once: every item painted
    app.processEvents()
    all_times = []
    for _ in range(20):
        t0 = time.perf_counter()
        painter = QPainter(image)
        view.render(painter)
        painter.end()
        all_times.append(time.perf_counter() - t0)
    text = "\n".join([
        "## Editor scale: a 500-node, 600-wire graph",
        "",
        f"`python bench/editor_scale.py` — offscreen render of the real main window's canvas "
        f"(viewport {viewport.width()}×{viewport.height()} px, zoom 50–80 %, "
        f"{visible} items in view), {machine_line()}.",
        "",
        "| measure | value | target |",
        "|---|---:|---:|",
        f"| open the file (median of 3) | {statistics.median(opens) * 1e3:.0f} ms | ≤ 1000 ms |",
        f"| full repaint while panning/zooming, median of {len(times)} | "
        f"{median * 1e3:.1f} ms | ≤ 16 ms |",
        f"| full repaint, worst | {worst * 1e3:.1f} ms | — |",
        f"| whole graph in view (fit, zoom {view.zoom():.0%}), median | "
        f"{statistics.median(all_times) * 1e3:.1f} ms | — |",
        "",
        f"Graph: {len(spec.nodes)} nodes, {len(spec.edges)} wires.",
    ])
    print(text)
    write_section("editor_scale", text)
    window.close()


if __name__ == "__main__":
    main()
