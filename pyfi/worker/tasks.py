"""Register one Celery task per socket function of a processor's module (loaded by :mod:`pyfi.worker.loader`)."""
from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Protocol

from celery import Task

from pyfi.errors import DeployError
from pyfi.worker.loader import resolve_function
from pyfi.worker.output import captured
from pyfi.worker.spec import SocketSpec, WorkerSpec


def runnable_sockets(spec: WorkerSpec, module: ModuleType, checkout: Path | None = None) -> tuple[list[SocketSpec], list[str]]:
    """The sockets whose function ``module`` has, and a one-line reason for each of the others.

    Why not fail the worker: one socket with a misspelt ``-t/--task`` would
    stop every other socket of its processor. The others run; the agent shows
    the reasons next to the processor's status.
    """
    runnable, problems = [], []
    for socket in spec.sockets:
        try:
            resolve_function(module, socket.function, checkout)
            runnable.append(socket)
        except DeployError as exc:
            problems.append(f"socket {socket.name!r} does not run: {exc}")
    if spec.sockets and not runnable:
        raise DeployError("; ".join(problems))
    return runnable, problems


log = logging.getLogger("pyfi.worker")

OutputHook = Callable[[Any, str, str], None]  # (task, stream, line)


class TaskHooks(Protocol):
    """What a socket's task tells as it runs (:class:`pyfi.worker.lifecycle.Lifecycle`)."""

    def on_prerun(self, task_id: str, task: Any) -> None: ...

    def on_postrun(self, task_id: str, task: Any, retval: Any) -> None: ...

    def publish_output(self, task: Any, stream: str, line: str) -> None: ...


class SocketTask(Task):
    """A socket's task: it tells its hooks when a call starts and when it succeeds.

    Why task methods and not Celery's ``task_prerun``/``task_postrun`` signals:
    they run in the pool process on every call's path, and a signal dispatch
    costs several times a method call. A hook must never fail the call.
    """

    hooks: TaskHooks | None = None  # set on each task class by register_tasks

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        if self.hooks is not None:
            try:
                self.hooks.on_prerun(task_id, self)
            except Exception:  # noqa: BLE001 - recording must not fail the call
                log.exception("recording the start of %s failed", task_id)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        if self.hooks is not None:
            try:
                self.hooks.on_postrun(task_id, self, retval)
            except Exception:  # noqa: BLE001 - the result is stored: the call succeeded
                log.exception("recording the end of %s failed", task_id)


def register_tasks(app: Any, spec: WorkerSpec, module: ModuleType, hooks: TaskHooks | None = None) -> dict[str, Any]:
    """One task per distinct ``<module>.<function>``, named as the calls of the original pyfi documentation."""
    tasks = {}
    on_output = hooks.publish_output if hooks is not None else None
    for socket in spec.sockets:
        if socket.task_name in tasks:
            continue
        function = resolve_function(module, socket.function)
        tasks[socket.task_name] = app.task(
            name=socket.task_name,
            base=SocketTask,
            hooks=hooks,
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
