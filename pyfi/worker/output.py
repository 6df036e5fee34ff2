"""Capture what a processor function prints or logs, line by line, for the ``log`` channel.

While a call runs, stdout, stderr and log records go to ``emit(stream, line)``
(``stream`` is "stdout", "stderr" or "log"); the worker publishes each line
on ``<queue>.<processor>.log`` so ``pyfi listen -c log`` shows it live.

The streams and the logging handler are installed once per process, on the
first call, and stay: swapping ``sys.stdout`` and adding a handler around
every call cost tens of microseconds per call, a visible share of a short
call's time. Between calls they pass output through to the streams they
replaced, so the worker's own output is untouched.
"""
from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Emit = Callable[[str, str], None]


class _Process:
    """This process's capturing streams, and the emitter of the call running (None between calls)."""

    emit: Emit | None = None
    streams: tuple[CallStream, CallStream] | None = None


_current = _Process()


class CallStream(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr: lines written during a call go to its emitter."""

    def __init__(self, stream: str, original: TextIO) -> None:
        super().__init__()
        self.stream, self.original, self.pending = stream, original, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        emit = _current.emit
        if emit is None:
            return self.original.write(text)
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            emit(self.stream, line)
        return len(text)

    def flush(self) -> None:
        if _current.emit is None:
            self.original.flush()

    def end_call(self, emit: Emit) -> None:
        """The call is over: its unfinished last line is a line too."""
        if self.pending:
            emit(self.stream, self.pending)
            self.pending = ""


class LogForwarder(logging.Handler):
    """On the root logger: records logged during a call (not the worker's own) go to its emitter."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        emit = _current.emit
        if emit is None or record.name.startswith(("celery", "kombu", "pyfi", "amqp")):
            return
        try:
            emit("log", self.format(record))
        except Exception:  # noqa: BLE001 - logging must never fail the call
            self.handleError(record)


def _installed() -> tuple[CallStream, CallStream]:
    """This process's capturing streams, installed on first use (and again if someone replaced them)."""
    streams = _current.streams
    if streams is None or sys.stdout is not streams[0] or sys.stderr is not streams[1]:
        out, err = sys.stdout, sys.stderr
        if not isinstance(out, CallStream):
            out = sys.stdout = CallStream("stdout", out)
        if not isinstance(err, CallStream):
            err = sys.stderr = CallStream("stderr", err)
        root = logging.getLogger()
        if not any(isinstance(h, LogForwarder) for h in root.handlers):
            root.addHandler(LogForwarder())
        streams = _current.streams = (out, err)
    return streams


@contextmanager
def captured(emit: Emit) -> Iterator[None]:
    out, err = _installed()
    _current.emit = emit
    try:
        yield
    finally:
        _current.emit = None
        out.end_call(emit)
        err.end_call(emit)
