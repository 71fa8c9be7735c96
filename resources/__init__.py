"""Gradscape's data files (examples, icons), installed as the package ``gradscape_resources``.

In a source checkout this is the top-level ``resources/`` folder; pyproject.toml maps it to
``gradscape_resources`` so a wheel carries it. ``designer.resources.resource_path`` finds it
in both cases.
"""
