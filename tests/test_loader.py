"""Only a processor's own code runs: its module is a file of its checkout, its socket functions are defined there.

Checked by the worker (``pyfi.worker.loader``) and, before a deploy is
accepted, by the agent's import check, which runs the same code with the
processor's interpreter.
"""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from pyfi.agent.importcheck import check_import
from pyfi.errors import DeployError
from pyfi.worker.loader import load_module, resolve_function

CODE = '''
import functools, os
from os import getenv
from json import dumps as to_json
from helper import helped

def echo(x):
    return x

def _hidden(x):
    return x

class Thing:
    pass

def traced(function):
    @functools.wraps(function)
    def wrapper(*args):
        return function(*args)
    return wrapper

@traced
def decorated(x):
    return x

@functools.lru_cache(maxsize=None)
def cached(x):
    return x

system = os.system
shout = lambda x: str(x).upper()

def _mine(x):
    return x

import shutil, types
partial_system = functools.partial(os.system)
partial_system.__wrapped__ = _mine
rmtree = types.FunctionType(shutil.rmtree.__code__, shutil.rmtree.__globals__)  # (a copy: shutil's stays as it is)
rmtree.__wrapped__ = _mine
'''


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """A checkout holding a module of a unique name (modules stay in sys.modules) and a helper it imports."""
    name = f"mod_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "checkout"
    root.mkdir()
    (root / f"{name}.py").write_text(CODE)
    (root / "helper.py").write_text("def helped(x):\n    return x\n")
    yield root, name
    sys.modules.pop(name, None)
    sys.modules.pop("helper", None)


def test_the_checkouts_module_and_its_own_functions_load(checkout):
    root, name = checkout
    module = load_module(name, root)
    for function in ("echo", "decorated", "cached", "shout", "helped"):
        assert resolve_function(module, function, root)(3) in (3, "3")


@pytest.mark.parametrize("function, why", [
    ("getenv", "defined outside the processor's repository"),
    ("to_json", "defined outside the processor's repository"),
    ("system", "not a function"),
    ("partial_system", "not a function"),  # a partial of os.system that claims to wrap the repository's _mine
    ("rmtree", "a function of the standard library or pyfi"),  # likewise shutil.rmtree
    ("Thing", "not a function"),
    ("_hidden", "invalid task function name"),
    ("__class__", "invalid task function name"),
    ("missing", "has no function"),
])
def test_a_socket_cannot_run_what_the_repository_did_not_define(checkout, function, why):
    root, name = checkout
    module = load_module(name, root)
    with pytest.raises(DeployError, match=why):
        resolve_function(module, function, root)


@pytest.mark.parametrize("module, why", [
    ("os", "part of the standard library"),
    ("subprocess", "part of the standard library"),
    ("pyfi.cli", "pyfi itself"),
    ("celery", "not in the processor's repository|the worker itself has loaded"),  # (loaded, once other tests ran)
    ("kombu.utils", "not in the processor's repository|the worker itself has loaded"),
])
def test_a_module_that_is_not_a_file_of_the_checkout_is_refused(checkout, module, why):
    root, _ = checkout
    with pytest.raises(DeployError, match=why):
        load_module(module, root)


def test_a_checkout_file_named_like_a_loaded_library_does_not_stand_in_for_it(checkout):
    root, _ = checkout
    (root / "pytest.py").write_text("def echo(x):\n    return x\n")  # pytest is loaded in this process
    with pytest.raises(DeployError, match="the worker itself has loaded"):
        load_module("pytest", root)
    (root / "os.py").write_text("def echo(x):\n    return x\n")
    with pytest.raises(DeployError, match="standard library"):
        load_module("os", root)


def test_the_agents_import_check_refuses_such_a_module_before_a_deploy_is_accepted(checkout):
    root, name = checkout
    check_import(Path(sys.executable), root, name)
    for module, why in (("os", "part of the standard library"), ("celery", "not in the processor's repository")):
        with pytest.raises(DeployError, match=why) as refused:
            check_import(Path(sys.executable), root, module)
        assert "Traceback" not in str(refused.value)


@pytest.mark.slow
@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_a_processor_row_naming_a_standard_module_never_runs(net):
    """The add-time check is bypassed (a row written by hand): the deploy refuses it, and no call runs."""
    from sqlalchemy import update

    from network import build, wait_for
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Processor, Task

    names = build(net, {"run": "echo"})
    with session_scope(net.db_url) as session:
        session.execute(update(Processor).where(Processor.name == "p").values(module="os"))
        session.execute(update(Task).values(module="os", name="system"))
    net.start_agent("n1")
    wait_for(lambda: "part of the standard library" in (net.processor("p")["error"] or ""), 60, "the deploy refused")
    assert net.processor("p")["status"] == "error"
    sent = net.cli("task", "run", "-s", names["run"], "-d", '"id > /tmp/pwned"', "--timeout", "2", check=False)
    assert sent.returncode == 1 and "did not finish" in sent.stderr
    assert {row["state"] for row in net.json("ls", "calls")["rows"]} <= {"pending"}  # sent, and never run
