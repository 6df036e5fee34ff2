"""Imports point downward, as docs/architecture.rst draws the layers.

cli/api/web/client -> agent/worker/scheduler -> core -> db/messaging ->
config/enums/errors (and the other modules at the top of pyfi/). Every
import of every source file counts, those inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: each package or top-level module of pyfi, by layer: 0 is the top
LAYERS: dict[str, int] = {
    "cli": 0, "api": 0, "web": 0, "client": 0,
    "agent": 1, "worker": 1, "scheduler": 1,
    "core": 2,
    "db": 3, "migrations": 3, "messaging": 3,
    "config": 4, "enums": 4, "errors": 4, "private": 4, "masking": 4, "flow": 4, "testing": 4,
}
#: the imports within one layer: an agent runs workers and the network's beat (never the reverse), the migrations build the db's
#: models, the CLI starts the API and web servers, the web dashboard builds on the API, and the bottom modules use each other
SIDEWAYS = {("agent", "worker"), ("agent", "scheduler"), ("migrations", "db"), ("cli", "api"), ("cli", "web"),
            ("web", "api")} | {(a, b) for a in LAYERS for b in LAYERS
                                                         if LAYERS[a] == LAYERS[b] == 4}


def sources() -> dict[str, Path]:
    """Every source file, by the pyfi package or module it belongs to (migrations/ installs as pyfi.migrations)."""
    files = {path: path.relative_to(ROOT / "pyfi").parts for path in (ROOT / "pyfi").rglob("*.py")}
    files |= {path: ("migrations",) for path in (ROOT / "migrations").rglob("*.py")}
    return {f"{parts[0].removesuffix('.py')}:{path.relative_to(ROOT)}": path
            for path, parts in files.items() if parts != ("__init__.py",)}


def imported(path: Path) -> set[str]:
    """The pyfi packages and top-level modules a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use an absolute import (from pyfi... import ...)"
            names = [f"{node.module}.{alias.name}" for alias in node.names] if node.module == "pyfi" else [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("pyfi.")}
    return found


def arrows() -> set[tuple[str, str, str]]:
    """(importing layer, imported layer, file) for every import across packages."""
    return {(source.split(":")[0], target, source.split(":")[1])
            for source, path in sources().items() for target in imported(path) if target != source.split(":")[0]}


def test_every_package_has_a_layer():
    packages = {source.split(":")[0] for source in sources()} | {target for _, target, _ in arrows()}
    assert packages <= set(LAYERS), f"give {sorted(packages - set(LAYERS))} a layer here and in docs/architecture.rst"


def test_imports_point_downward():
    upward = sorted(f"{where}: {source} -> {target}" for source, target, where in arrows()
                    if LAYERS[target] < LAYERS[source]
                    or LAYERS[target] == LAYERS[source] and (source, target) not in SIDEWAYS)
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_the_worker_imports_neither_the_agent_nor_the_cli_and_core_nothing_above_it():
    found = {(source, target) for source, target, _ in arrows()}
    assert not {("worker", "agent"), ("worker", "cli")} & found
    assert not {("core", target) for target, layer in LAYERS.items() if layer < LAYERS["core"]} & found


def test_the_scan_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pyfi.cli import cli\n    import pyfi.agent.node\n")
    assert imported(module) == {"cli", "agent"}
