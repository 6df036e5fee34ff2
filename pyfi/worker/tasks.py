"""Import a processor's module and register one Celery task per socket function."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from pyfi.errors import DeployError
from pyfi.worker.output import captured
from pyfi.worker.spec import WorkerSpec


def import_processor_module(module: str, path: Path | None) -> ModuleType:
    """Import ``module`` from the checkout at ``path`` (first on sys.path)."""
    if path is not None and str(path) not in sys.path:
        sys.path.insert(0, str(path))
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import-time failure of user code is a deploy error
        raise DeployError(f"cannot import module {module!r}: {type(exc).__name__}: {exc}",
                          "fix the processor's code or its -m/--module") from exc


def resolve_function(module: ModuleType, name: str) -> Callable[..., Any]:
    function = getattr(module, name, None)
    if not callable(function):
        raise DeployError(f"module {module.__name__!r} has no function {name!r}",
                          "fix the socket's -t/--task or add the function to the module")
    return function


OutputHook = Callable[[Any, str, str], None]  # (task, stream, line)


def register_tasks(app: Any, spec: WorkerSpec, module: ModuleType, on_output: OutputHook | None = None) -> dict[str, Any]:
    """One task per distinct ``<module>.<function>``, named as the seed's calls."""
    tasks = {}
    for socket in spec.sockets:
        if socket.task_name in tasks:
            continue
        function = resolve_function(module, socket.function)
        tasks[socket.task_name] = app.task(
            name=socket.task_name,
            bind=True,
            acks_late=True,
            max_retries=spec.retries,
        )(_wrap(function, spec.retries, on_output))
    return tasks


def _wrap(function: Callable[..., Any], retries: int, on_output: OutputHook | None) -> Callable[..., Any]:
    """Run the user's function, its output captured; retry on error while the processor allows it."""

    def call(task: Any, args: tuple, kwargs: dict) -> Any:
        if on_output is None:
            return function(*args, **kwargs)
        with captured(lambda stream, line: on_output(task, stream, line)):
            return function(*args, **kwargs)

    def run(task: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(task, args, kwargs)
        except Exception as exc:
            if task.request.retries < retries:
                raise task.retry(exc=exc, countdown=min(2 ** task.request.retries, 30) * 0.5) from exc
            raise

    run.__name__ = getattr(function, "__name__", "run")
    run.__doc__ = function.__doc__
    return run
