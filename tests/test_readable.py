"""Readable on a projector: canvas labels at the zoom a graph opens with, on a 1280×800 window."""

import pytest
from PySide6.QtGui import QFontInfo
from PySide6.QtWidgets import QGraphicsSimpleTextItem

from designer import theme
from designer.document.layout import NODE_WIDTH, X_SPACING, layered_layout
from engine.core.spec import EdgeSpec
from tests.gui import EXAMPLES, make_window, on_worker, open_example

EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.glob("*.json"))
# Known gaps: these graphs are too big (or, with a block, too tall) to show whole at a legible
# zoom in the default 1280×800 layout; strict, so the test says when one starts to fit.
TOO_BIG: set[str] = set()
OPENING = [pytest.param(n, marks=pytest.mark.xfail(
    strict=True, reason="does not fit the default view at a legible zoom yet"))
    if n in TOO_BIG else n for n in EXAMPLE_NAMES]


def screen_px(font, zoom: float) -> float:
    """How tall a canvas font's em is on screen, in pixels (pixel-sized fonts only)."""
    assert font.pixelSize() > 0, "canvas fonts are sized in scene pixels"
    return font.pixelSize() * zoom


@pytest.mark.parametrize("name", OPENING)
def test_every_example_opens_legible_with_its_loss_in_view(qtbot, tmp_path, name):
    win = make_window(qtbot, tmp_path, size=(1280, 800))
    qtbot.wait(30)  # the docks take their places once the window shows
    session = open_example(qtbot, win, name)
    session.step()
    qtbot.waitUntil(lambda: win.training.overlay.last_report is not None, timeout=5000)
    win.view.show_graph()
    zoom = win.view.zoom()
    node_fonts = [theme.title_font(), theme.small_font(), theme.canvas_font("shape")]
    label_fonts = [item.font() for item in win.scene.items()
                   if isinstance(item, QGraphicsSimpleTextItem) and item.isVisible()]
    assert label_fonts, "the wires show their numbers after a step"
    for font in node_fonts + label_fonts:
        assert screen_px(font, zoom) >= 10.0, f"{font.family()} at zoom {zoom:.2f}"
    view = win.view
    legend = win.training.legend.geometry().translated(-view.viewport().pos())
    losses = [n.id for n in win.document.nodes() if n.op.endswith("Loss")]
    assert losses
    for loss in losses:
        rect = view.mapFromScene(win.scene.nodes[loss].sceneBoundingRect()).boundingRect()
        assert view.viewport().rect().contains(rect), f"{loss} is out of view in {name}"
        assert not rect.intersects(legend), f"the legend hides {loss} in {name}"
    assert on_worker(qtbot, session, lambda p, t: p is not None)


def test_numbers_use_a_font_whose_zero_is_dotted(qapp):
    for font in (theme.canvas_font("wire"), theme.canvas_font("shape"), theme.mono_font(9)):
        assert QFontInfo(font).family() == theme.NUMBER_FAMILY


def test_long_chains_wrap_into_rows_and_the_last_row_ends_right():
    ids = [f"n{i}" for i in range(9)]
    edges = [EdgeSpec(ids[i], "out", ids[i + 1], "x") for i in range(8)]
    width = 3 * X_SPACING + NODE_WIDTH
    pos = layered_layout(ids, edges, max_width=width)
    xs = {x for x, _y in pos.values()}
    assert max(xs) + NODE_WIDTH <= width
    rows = sorted({y for _x, y in pos.values()})
    assert len(rows) == 3  # 4 + 4 + 1 layers
    assert pos["n8"][0] == max(xs), "the last node sits at the right end of its row"
    assert pos["n4"][0] == 0.0 and pos["n4"][1] > pos["n3"][1]
    assert layered_layout(ids, edges)["n8"] == (8 * X_SPACING, 0.0)  # no limit: one line


def test_a_wire_label_explains_itself_on_hover(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1280, 800))
    session = open_example(qtbot, win, "xor_mlp.json")
    session.step()
    qtbot.waitUntil(lambda: win.training.overlay.last_report is not None, timeout=5000)
    item = next(iter(win.scene.edges.values()))
    assert item.toolTip() and item.value_label.toolTip() == item.toolTip()
