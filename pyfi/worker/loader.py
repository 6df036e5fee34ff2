"""Loading a processor's code: only its repository's own module and functions ever run.

A processor names a module (``-m``) and its sockets name functions of it
(``-t``). Both are checked before anything runs, at deploy (the agent's
import check) and again in the worker:

- the module must be a file of the processor's checkout: its top-level
  package is looked up in the checkout only, it must not be a module the
  interpreter has already loaded (the standard library, pyfi, Celery), and
  the module imported must live inside the checkout;
- a socket's function must be a plain public function whose code is in the
  checkout: ``-t __class__``, a class, or ``os.system`` imported into the
  module is refused. A decorated function counts when its wrapper names it
  in ``__wrapped__``, as ``functools.wraps`` does, and the wrapper is itself
  a function of the checkout or of a package the environment installed
  (a dependency's decorator), or ``functools.lru_cache``'s: never a
  ``functools.partial``, a built-in, or a function of the standard library
  or pyfi given a ``__wrapped__``. These checks keep a socket from naming
  library code; they are no boundary against the repository's author, whose
  code runs anyway.
"""
from __future__ import annotations

import functools
import importlib
import importlib.machinery
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from pyfi.core.names import check_function_name
from pyfi.core.trust import check_module_name
from pyfi.errors import DeployError, PyfiError

#: the one wrapper that is not a Python function a socket's function may be: functools.lru_cache's (and cache's)
CACHED = functools._lru_cache_wrapper
FIX_MODULE = "give -m/--module the dotted path of a module file in the repository, e.g. sample or pkg.tasks"


def load_module(module: str, checkout: Path | str | None) -> ModuleType:
    """Import ``module`` from ``checkout`` (first on sys.path); DeployError unless it is the checkout's own file."""
    try:
        check_module_name(module)
    except PyfiError as exc:
        raise DeployError(exc.message, exc.hint) from None
    root = _real(checkout) if checkout is not None else None
    if root is not None:
        _check_found_in(module, root)
        if str(checkout) not in sys.path:
            sys.path.insert(0, str(checkout))
    try:
        loaded = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import-time failure of user code is a deploy error
        raise DeployError(f"cannot import module {module!r}: {type(exc).__name__}: {exc}",
                          "fix the processor's code or its -m/--module") from exc
    if root is not None and not all(_inside(path, root) for path in _files_of(loaded)):
        raise DeployError(f"module {module!r} was loaded from outside the processor's repository ({_files_of(loaded)[0]})",
                          FIX_MODULE)
    return loaded


def resolve_function(module: ModuleType, name: str, checkout: Path | str | None = None) -> Callable[..., Any]:
    """The socket function ``name`` of ``module``; DeployError unless it is a public function of the checkout."""
    try:
        check_function_name(name)
    except PyfiError as exc:
        raise DeployError(exc.message, exc.hint) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise DeployError(f"module {module.__name__!r} has no function {name!r}",
                          "fix the socket's -t/--task or add the function to the module")
    code = inspect.unwrap(function)
    if not (inspect.isfunction(code) and (inspect.isfunction(function) or isinstance(function, CACHED))):
        raise DeployError(f"{module.__name__}.{name} is a {type(function).__name__}, not a function",
                          "bind a socket to a function defined with def in the repository")
    root = _real(checkout) if checkout is not None else None
    if root is not None and not _inside(code.__code__.co_filename, root):
        raise DeployError(f"{module.__name__}.{name} is defined outside the processor's repository "
                          f"({code.__code__.co_filename})",
                          "bind a socket to a function defined in the repository (wrap a library function in a def)")
    if root is not None and inspect.isfunction(function) and not _may_wrap(function.__code__.co_filename, root):
        raise DeployError(f"{module.__name__}.{name} is a function of the standard library or pyfi "
                          f"({function.__code__.co_filename}) that claims to wrap the repository's {code.__name__}",
                          "bind a socket to a function defined in the repository (wrap a library function in a def)")
    return function


def _may_wrap(filename: str, root: Path) -> bool:
    """Whether a wrapper defined in ``filename`` may stand for a function of the checkout: the checkout's own, or
    a dependency's (site-packages), never the standard library's or pyfi's."""
    if _inside(filename, root):
        return True
    pyfi_dir = _real(Path(__file__).resolve().parent.parent)
    return "site-packages" in Path(filename).parts and not _inside(filename, pyfi_dir)


def _check_found_in(module: str, root: Path) -> None:
    top = module.split(".", 1)[0]
    if top in sys.modules and not all(_inside(path, root) for path in _files_of(sys.modules[top])):
        raise DeployError(f"module {module!r} names {top!r}, which the worker itself has loaded (a library, not the "
                          "repository's code)", FIX_MODULE)
    if importlib.machinery.PathFinder.find_spec(top, [str(root)]) is None:
        raise DeployError(f"module {module!r} is not in the processor's repository (no {top}.py or {top}/ at its top)",
                          FIX_MODULE)


def _files_of(module: ModuleType) -> list[str]:
    """Where a module was loaded from: its file, or a namespace package's directories ('?' for a built-in)."""
    file = getattr(module, "__file__", None)
    if file:
        return [file]
    return list(getattr(module, "__path__", None) or ["?"])


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: str, root: Path) -> bool:
    real = _real(path)
    return real == root or root in real.parents
