"""A small panel on the canvas for the one selected wire: shape, value and gradient stats,
and histograms of both, fetched on demand from the worker (whole arrays never travel
otherwise). It refreshes with the training reports while the wire stays selected.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout

from designer import theme
from engine.ops.base import fmt_shape

VALUE_COLOR = "#3b75af"
GRAD_COLOR = "#d95f02"
REFRESH_EVERY = 10  # reports between two detail requests while training


class EdgeDetailPanel(QFrame):
    """Floating panel in the bottom-right corner of the canvas view."""

    def __init__(self, session, scene, view):
        super().__init__(view)  # not the viewport: its children scroll with the scene
        self.session, self.scene, self.view = session, scene, view
        self.edge = None
        self._reports = 0
        self.setObjectName("edgeDetail")
        pal = theme.current()
        self.setStyleSheet(f"#edgeDetail {{ background: {pal.label_background}; "
                           f"border: 1px solid {pal.node_border}; border-radius: 6px; }}")
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.stats = QLabel()
        self.stats.setFont(theme.mono_font(8))
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setBackground(pal.label_background)
        self.plot.setFixedSize(420, 120)
        self.hists = []
        for col, title in enumerate(("value", "gradient")):
            item = self.plot.addPlot(row=0, col=col, title=title)
            item.hideAxis("left")
            item.setMouseEnabled(False, False)
            item.getAxis("bottom").setStyle(maxTickLevel=0, tickFont=theme.ui_font(7))
            item.titleLabel.setText(title, size="8pt")
            self.hists.append(item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.stats)
        layout.addWidget(self.plot)
        self.hide()
        scene.selectionChanged.connect(self._on_selection)
        session.detail.connect(self.show_detail)
        session.report.connect(self._on_report)
        session.weights_reset.connect(self._request)
        view.viewport().installEventFilter(self)

    def _on_selection(self) -> None:
        try:
            edges = self.scene.selected_edges()
            nodes = self.scene.selected_node_ids()
        except RuntimeError:  # scene being destroyed
            return
        self.edge = edges[0] if len(edges) == 1 and not nodes else None
        if self.edge is None:
            self.hide()
            return
        self._request()

    def _request(self) -> None:
        if self.edge is not None:
            self.session.request_detail(self.edge)

    def _on_report(self, _report) -> None:
        self._reports += 1
        if self.edge is not None and (self._reports % REFRESH_EVERY == 0
                                      or not _report.running):
            self._request()

    def show_detail(self, detail) -> None:
        """Fill the panel from an EdgeDetail."""
        if detail.edge != self.edge:
            return
        self.title.setText(f"{detail.edge.key}   shape {fmt_shape(detail.shape)}")
        lines = []
        for name, s in (("value", detail.value), ("grad ", detail.grad)):
            if s is None:
                lines.append(f"{name}  —")
            else:
                lines.append(f"{name}  mean {s.mean:+.3e}  |·| {s.mean_abs:.3e}  "
                             f"min {s.min:+.3e}  max {s.max:+.3e}")
        self.stats.setText("\n".join(lines))
        for item, hist, color in ((self.hists[0], detail.value_hist, VALUE_COLOR),
                                  (self.hists[1], detail.grad_hist, GRAD_COLOR)):
            item.clear()
            if hist is None:
                continue
            counts, edges = np.asarray(hist[0], float), np.asarray(hist[1], float)
            item.plot(edges, counts, stepMode="center", fillLevel=0,
                      brush=pg.mkBrush(color + "99"), pen=pg.mkPen(color))
        self.adjustSize()
        self.place()
        self.show()
        self.raise_()

    def place(self) -> None:
        vp = self.view.viewport().geometry()
        self.move(vp.right() - self.width() - 10, vp.top() + 10)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Resize and self.isVisible():
            self.place()
        return False

