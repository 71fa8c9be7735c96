"""All colours, pens, brushes and fonts of the designer, in one place.

Two palettes (light and dark) follow the system colour scheme
(``QStyleHints.colorScheme()``); ``set_scheme`` forces one. Every painter in the canvas asks
``current()`` at paint time, so a scheme change only needs a repaint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QIcon,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
)

# One colour per op category; unknown categories (added later) get a neutral grey.
CATEGORY_COLORS = {
    "Inputs": "#3f8f5f",
    "Layers": "#3d6fb6",
    "Activations": "#c27c2c",
    "Element-wise/Merge": "#7b5ea7",
    "Losses": "#c0464a",
    "Blocks": "#2f7f7a",  # groups of nodes (designer.canvas.block_item)
}
FALLBACK_CATEGORY_COLOR = "#6b7280"


@dataclass(frozen=True)
class Palette:
    """The colours of one scheme. Names say where a colour is used."""

    name: str
    background: str
    grid_minor: str
    grid_major: str
    node_body: str
    node_border: str
    node_shadow: str
    selection: str
    text: str
    muted_text: str
    shape_text: str
    port_fill: str
    port_border: str
    port_hover: str
    wire: str
    wire_selected: str
    wire_ok: str
    wire_bad: str
    error: str
    ok: str
    label_background: str
    # Later issues colour wires by gradient: negative -> zero -> positive.
    gradient_negative: str = "#2b7bba"
    gradient_zero: str = "#9aa0a6"
    gradient_positive: str = "#e0612b"
    categories: dict[str, str] = field(default_factory=lambda: dict(CATEGORY_COLORS))


LIGHT = Palette(
    name="light",
    background="#f4f5f7",
    grid_minor="#e6e8ec",
    grid_major="#d5d9e0",
    node_body="#ffffff",
    node_border="#c3c8d0",
    node_shadow="#20000000",
    selection="#f0a020",
    text="#1f2328",
    muted_text="#6a737d",
    shape_text="#2f5f9e",
    port_fill="#ffffff",
    port_border="#7a828e",
    port_hover="#f0a020",
    wire="#8a93a0",
    wire_selected="#f0a020",
    wire_ok="#2e9e5b",
    wire_bad="#d03b3b",
    error="#d03b3b",
    ok="#2e9e5b",
    label_background="#f8f8fa",
)

DARK = Palette(
    name="dark",
    background="#1e2024",
    grid_minor="#26292e",
    grid_major="#30343a",
    node_body="#2c2f35",
    node_border="#41464e",
    node_shadow="#60000000",
    selection="#ffb240",
    text="#e6e8eb",
    muted_text="#9aa1ab",
    shape_text="#8fb8f0",
    port_fill="#2c2f35",
    port_border="#a0a7b1",
    port_hover="#ffb240",
    wire="#8c94a0",
    wire_selected="#ffb240",
    wire_ok="#4cc47f",
    wire_bad="#f05a5a",
    error="#f05a5a",
    ok="#4cc47f",
    label_background="#2a2d33",
    gradient_negative="#4a9be0",
    gradient_zero="#6b7078",
    gradient_positive="#ff7a45",
)

_forced: str | None = None
_wire_scale = 1.0  # presentation mode draws thicker wires


def set_wire_scale(scale: float) -> None:
    """Multiply every wire's pen width (1.0: normal)."""
    global _wire_scale
    _wire_scale = float(scale)


def wire_scale() -> float:
    """The factor wire pens are drawn with."""
    return _wire_scale


_text_scale = 1.0  # presentation mode: panel text drawn with ui_font / mono_font grows


def set_text_scale(scale: float) -> None:
    """Multiply the size of every ui_font and mono_font made from now on (1.0: normal)."""
    global _text_scale
    _text_scale = float(scale)


def text_scale() -> float:
    """The factor ui_font and mono_font sizes are multiplied by."""
    return _text_scale


def set_scheme(scheme: str | None) -> None:
    """Force "light" or "dark"; None follows the system again."""
    global _forced
    _forced = scheme


_system_dark: bool | None = None  # the system's answer, kept until it announces a change
_watching_scheme = False


def _forget_system_scheme(*_args) -> None:
    global _system_dark
    _system_dark = None


def is_dark() -> bool:
    """True when the dark palette is in use (forced, or the system asks for it)."""
    global _system_dark
    if _forced is not None:
        return _forced == "dark"
    if _system_dark is None:
        # Asked for every item painted or built (20,000 times opening a big graph): the
        # system is asked once, and again only after it says the scheme changed.
        app = QGuiApplication.instance()
        if app is None:
            return False
        global _watching_scheme
        hints = QGuiApplication.styleHints()
        if not _watching_scheme:
            hints.colorSchemeChanged.connect(_forget_system_scheme)
            _watching_scheme = True
        _system_dark = hints.colorScheme() == Qt.ColorScheme.Dark
    return _system_dark


def current() -> Palette:
    """The palette to paint with right now."""
    return DARK if is_dark() else LIGHT


_colors: dict[tuple[int, str], QColor] = {}


def color(name: str) -> QColor:
    """A palette colour by attribute name, e.g. ``color("wire")``."""
    # Parsed once per palette and name (palettes are frozen): every wire asks when a file
    # opens, and copying a QColor costs far less than parsing its name.
    pal = current()
    key = (id(pal), name)
    made = _colors.get(key)
    if made is None:
        made = _colors[key] = QColor(getattr(pal, name))
    return QColor(made)


def category_color(category: str) -> QColor:
    """The header colour of an op category."""
    pal = current()
    key = (id(pal), "category:" + category)  # cached like color(): asked per node painted
    made = _colors.get(key)
    if made is None:
        made = _colors[key] = QColor(pal.categories.get(category, FALLBACK_CATEGORY_COLOR))
    return QColor(made)


_pens: dict[tuple, QPen] = {}


def pen(name: str, width: float = 1.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A cosmetic-free pen in a palette colour with round caps (wires look smoother)."""
    # Made once per palette, name, width and style: every wire asks twice when a file opens.
    key = (is_dark(), name, width, style)
    made = _pens.get(key)
    if made is None:
        made = QPen(color(name), width, style)
        made.setCapStyle(Qt.PenCapStyle.RoundCap)
        made.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        _pens[key] = made
    return QPen(made)


# -- fonts ------------------------------------------------------------------------------

# Numbers are drawn in DejaVu Sans Mono, shipped in resources/fonts: its zero is dotted, so
# "−0.1059" cannot be read as "−0.1859" from the back of a room, and its digits line up.
NUMBER_FAMILY = "DejaVu Sans Mono"
_fonts_loaded = False

# Canvas text is sized in scene pixels (not points), so its size on screen is exactly
# size × zoom whatever the screen's DPI. LEGIBLE_PX is the smallest size a label may have on
# screen; the view never opens a graph below `legible_zoom()`.
CANVAS_PX = {"title": 13.0, "small": 12.0, "shape": 12.0, "wire": 12.0}
LEGIBLE_PX = 10.0


def legible_zoom() -> float:
    """The smallest canvas zoom at which every canvas label is at least LEGIBLE_PX tall."""
    return LEGIBLE_PX / min(CANVAS_PX.values())


def load_fonts() -> None:
    """Register the bundled fonts with Qt (once; needs a QGuiApplication)."""
    global _fonts_loaded
    if _fonts_loaded or QGuiApplication.instance() is None:
        return
    from designer.resources import resource_path

    for path in sorted(resource_path("fonts").glob("*.ttf")):
        QFontDatabase.addApplicationFont(str(path))
    _fonts_loaded = True


def ui_font(point_size: float = 9.0, bold: bool = False) -> QFont:
    """The application's font at a given size."""
    f = QFont(QGuiApplication.font()) if QGuiApplication.instance() else QFont()
    f.setPointSizeF(point_size * _text_scale)
    f.setBold(bold)
    return f


def canvas_font(role: str, bold: bool = False) -> QFont:
    """A canvas font in scene pixels: "title" and "small" (UI text), "shape" and "wire"
    (numbers and shapes, in the number font)."""
    if role in ("shape", "wire"):
        load_fonts()
        f = QFont(NUMBER_FAMILY)
        f.setStyleHint(QFont.StyleHint.Monospace)
    else:
        f = QFont(QGuiApplication.font()) if QGuiApplication.instance() else QFont()
    f.setPixelSize(round(CANVAS_PX[role]))
    f.setBold(bold or role == "title")
    return f


def title_font() -> QFont:
    """Node titles."""
    return canvas_font("title")


def small_font() -> QFont:
    """Node ids and port names."""
    return canvas_font("small")


def mono_font(point_size: float = 8.5) -> QFont:
    """Numbers, shapes and formulas in panels (the number font, with its dotted zero)."""
    load_fonts()
    f = QFont(NUMBER_FAMILY)
    f.setStyleHint(QFont.StyleHint.Monospace)
    f.setPointSizeF(point_size * _text_scale)
    return f


# -- application palette ----------------------------------------------------------------

def apply_app_palette(app: QGuiApplication) -> None:
    """Give the widgets a matching palette when dark is forced (systems without a dark style)."""
    if _forced != "dark":
        return
    p = QPalette()
    base, window, text = QColor("#24272c"), QColor("#2b2e33"), QColor("#e6e8eb")
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, window)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, window)
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor("#34383e"))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#8a919b"))
    p.setColor(QPalette.ColorRole.Highlight, QColor("#3d6fb6"))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    p.setColor(QPalette.ColorRole.Mid, QColor("#3a3e45"))
    p.setColor(QPalette.ColorRole.Dark, QColor("#1c1e22"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6b7078"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#6b7078"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6b7078"))
    app.setPalette(p)


def category_icon(category: str, size: int = 14) -> QIcon:
    """A rounded square in the category's colour, for palette and quick-add rows."""
    pix = QPixmap(size * 2, size * 2)
    pix.setDevicePixelRatio(2.0)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(category_color(category))
    painter.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    painter.end()
    return QIcon(pix)


# Class colours of data points and predictions (matplotlib's "tab10", familiar from plots)
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def class_color(k: int) -> QColor:
    """The colour of class `k` (the palette repeats after ten classes)."""
    return QColor(CLASS_COLORS[k % len(CLASS_COLORS)])
