"""The user docs stay true: generated CLI reference current, links and images present."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/user-guide.md", "docs/concepts.md", "docs/cli.md",
        "docs/learning-lab.md", "docs/export.md"]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"docs_{name}"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current(qapp):
    module = load("cli_reference")
    current = module.CLI_MD.read_text(encoding="utf-8")
    assert current == module.render(current), "run: python docs/cli_reference.py"


@pytest.mark.parametrize("doc", DOCS)
def test_local_links_and_images_exist(doc):
    path = ROOT / doc
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{doc} links to missing {target}"


def test_every_readme_and_docs_image_has_a_shot():
    """Every docs/images/*.png referenced by the docs is made by docs/screenshots.py."""
    shots = {f"{s.name}.png" for s in load("screenshots").SHOTS}
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for image in re.findall(r"images/([\w.-]+\.png)", text):
            assert image in shots, f"{doc} uses {image}, which docs/screenshots.py does not make"
