"""Readable formulas as Qt rich text: ∂-fractions stacked over a rule, numbers, products.

Qt's rich-text engine knows no MathML, but it lays out tables with a bottom border per
cell, which is enough for a proper fraction. An equation is one row of a table whose
cells are fractions or plain text, all centred on the same line.
"""

from __future__ import annotations

import html

from designer import theme


def num(v: float | None, digits: int = 6) -> str:
    """A number as the chain-rule explanations print it (6 significant digits, true minus)."""
    if v is None:
        return "—"
    text = f"{v:.{digits}g}"
    return text.replace("-", "−") if text.startswith("-") else text


def signed_sum(values: list[float], digits: int = 6) -> str:
    """'−0.2 + 0.4 − 0.6': the terms of a sum written the way one would by hand."""
    terms = [num(v, digits) for v in values]
    if not terms:
        return ""
    return terms[0] + "".join(
        (" − " + t[1:]) if t.startswith("−") else (" + " + t) for t in terms[1:])


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def d(name: str) -> str:
    """∂name with the name in italics (node ids may be long: no italics for those)."""
    inner = f"<i>{esc(name)}</i>" if len(name) <= 3 else esc(name)
    return f"∂{inner}"


def frac(top: str, bottom: str) -> str:
    """A stacked fraction of two HTML snippets."""
    line = theme.current().text
    return ("<table cellspacing='0' cellpadding='0'>"
            f"<tr><td align='center' style='border-bottom: 1px solid {line}; "
            f"padding: 0px 2px 1px 2px;'>{top}</td></tr>"
            f"<tr><td align='center' style='padding: 1px 2px 0px 2px;'>{bottom}</td></tr>"
            "</table>")


def dfrac(num_name: str, den_name: str) -> str:
    """∂num/∂den as a stacked fraction."""
    return frac(d(num_name), d(den_name))


def equation(parts: list[str], size_pt: float = 11.0) -> str:
    """One line of an equation: each part (a fraction or text) in its own centred cell."""
    cells = "".join(f"<td valign='middle' style='padding: 0px 2px;'>{p}</td>" for p in parts)
    size_pt *= theme.text_scale()  # large in presentation mode
    return (f"<table cellspacing='0' cellpadding='0' style='font-size: {size_pt:g}pt; "
            f"margin: 2px 0px;'><tr>{cells}</tr></table>")


def lines(rows: list[list[str]], size_pt: float = 11.0) -> str:
    """Several equation lines, the later ones usually starting with '='."""
    return "".join(equation(r, size_pt) for r in rows)


def value_span(text: str, color: str | None = None, bold: bool = False) -> str:
    style = f"color: {color};" if color else ""
    if bold:
        style += " font-weight: 600;"
    return f"<span style='{style}'>{esc(text)}</span>"
