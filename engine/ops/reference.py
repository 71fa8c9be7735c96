"""Generate the op reference (docs/ops.md) from the registry, so it cannot drift.

Run `python -m engine.ops.reference` to rewrite docs/ops.md; a test checks it is current.
"""

from __future__ import annotations

from pathlib import Path

from engine.core.registry import CATEGORIES, all_ops

DOC = Path(__file__).resolve().parents[2] / "docs" / "ops.md"


def _default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return f"{value}"


def _range(p) -> str:
    if p.kind == "choice":
        return " / ".join(p.choices)
    lo = "" if p.min is None else f"{p.min:g}"
    hi = "" if p.max is None else f"{p.max:g}"
    return f"{lo} … {hi}" if lo or hi else ""


def render() -> str:
    """The whole reference page as Markdown."""
    lines = ["# Op reference", "",
             "Generated from the op registry by `python -m engine.ops.reference`; "
             "do not edit by hand.",
             "Every op has one output port, `out`. Shapes exclude the batch dimension unless "
             "noted; learnable tensors use PyTorch's layouts.", ""]
    ops = all_ops()
    for category in CATEGORIES:
        lines += [f"## {category}", ""]
        for op in [o for o in ops if o.category == category]:
            lines += [f"### {op.id}", "", op.description, ""]
            if op.formula:
                lines += [f"`{op.formula}`", ""]
            ports = ", ".join(f"`{p.name}`" + (" (optional)" if p.optional else "")
                              for p in op.inputs) or "none (a source)"
            lines += [f"Inputs: {ports}.", ""]
            if op.replaces:
                lines += [f"Replaces the old op ids: {', '.join(op.replaces)}.", ""]
            if op.params:
                lines += ["| param | kind | default | range | meaning |",
                          "|---|---|---|---|---|"]
                for p in op.params:
                    help_text = p.help.replace("|", "\\|")
                    lines.append(f"| `{p.name}` | {p.kind} | {_default(p.default)} | "
                                 f"{_range(p)} | {help_text} |")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
