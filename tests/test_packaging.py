"""pyproject.toml ships every package: the ones under pyfi/ and the alembic tree as pyfi.migrations."""
from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]


def packages_on_disk() -> set[str]:
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "pyfi").rglob("__init__.py")}
    found |= {"pyfi." + ".".join(init.parent.relative_to(ROOT).parts)
              for init in (ROOT / "migrations").rglob("__init__.py")}
    return found


def test_pyproject_lists_every_package():
    listed = set(setuptools_table()["packages"])
    missing, extra = packages_on_disk() - listed, listed - packages_on_disk()
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert not extra, f"remove {sorted(extra)} from [tool.setuptools] packages in pyproject.toml"


def test_migrations_install_as_pyfi_migrations_with_their_template():
    table = setuptools_table()
    assert table["package-dir"] == {"pyfi.migrations": "migrations"}
    assert table["package-data"]["pyfi.migrations"] == ["script.py.mako"]
    assert (ROOT / "migrations" / "script.py.mako").is_file()


def test_the_version_is_written_once():
    import pyfi

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert pyfi.__version__
    assert not (ROOT / "setup.py").exists() and not (ROOT / "setup.cfg").exists()
