"""Where the designer finds its files (examples, icons): the repository's resources/ folder."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def resource_path(*parts: str) -> Path:
    """A path inside the top-level resources/ folder, e.g. ``resource_path("examples")``."""
    return RESOURCES.joinpath(*parts)
