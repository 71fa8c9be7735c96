"""Where the designer finds its files (examples, icons).

In a source checkout they are in the repository's top-level ``resources/`` folder; an
installed wheel (or a PyInstaller bundle) carries the same folder as the package
``gradscape_resources`` (see pyproject.toml).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def _find_resources() -> Path:
    # A source checkout wins, so `python -m designer` never picks up an older installed copy.
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "resources").is_dir():
        return _CHECKOUT / "resources"
    try:
        return Path(str(importlib.resources.files("gradscape_resources")))
    except ModuleNotFoundError:
        return _CHECKOUT / "resources"


RESOURCES = _find_resources()


def resource_path(*parts: str) -> Path:
    """A path inside the resources folder, e.g. ``resource_path("examples")``."""
    return RESOURCES.joinpath(*parts)
