"""Sphinx configuration: the pages under docs/, the CLI reference (sphinx-click), the client's API (autodoc)
and the REST API's routes (docs/_ext/openapi_routes.py).

Build with ``sphinx-build -W -b html docs OUTDIR`` (``pip install -e '.[docs]'``);
``tests/test_docs_build.py`` runs the same build.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's pyfi, whichever pyfi the environment has installed
sys.path.insert(0, str(ROOT / "docs" / "_ext"))  # openapi_routes: the REST API's routes (docs/api.rst)

import pyfi  # noqa: E402 - after the path above
from pyfi.cli import cli  # noqa: E402

project = "pyfi"
release = version = pyfi.__version__
extensions = ["sphinx.ext.autodoc", "sphinx_click", "myst_parser", "openapi_routes"]
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True  # a default shows as written (``timeout=_DEFAULT``), not as its repr
html_theme = "alabaster"


def load_every_command(group: click.Group, ctx: click.Context | None = None) -> None:
    """Import every sub-command of the lazy groups: sphinx-click lists a group's loaded commands only."""
    ctx = ctx or click.Context(group, info_name="pyfi")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            load_every_command(command, click.Context(command, info_name=name, parent=ctx))


load_every_command(cli)
