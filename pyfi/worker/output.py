"""Capture what a processor function prints or logs, line by line, for the ``log`` channel.

While a call runs, stdout, stderr and log records go to ``emit(stream, line)``
(``stream`` is "stdout", "stderr" or "log"); the worker publishes each line
on ``<queue>.<processor>.log`` so ``pyfi listen -c log`` shows it live.
"""
from __future__ import annotations

import io
import logging
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Callable, Iterator

Emit = Callable[[str, str], None]


class LineWriter(io.TextIOBase):
    """A text stream that hands over each complete line (the rest on close)."""

    def __init__(self, stream: str, emit: Emit) -> None:
        super().__init__()
        self.stream, self.emit, self.pending = stream, emit, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            self.emit(self.stream, line)
        return len(text)

    def close(self) -> None:
        if self.pending:
            self.emit(self.stream, self.pending)
            self.pending = ""
        super().close()


class LogForwarder(logging.Handler):
    def __init__(self, emit: Emit) -> None:
        super().__init__(logging.INFO)
        self.emit_line = emit
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("celery", "kombu", "pyfi", "amqp")):
            return  # the worker's own logs are not the function's output
        try:
            self.emit_line("log", self.format(record))
        except Exception:  # noqa: BLE001 - logging must never fail the call
            self.handleError(record)


@contextmanager
def captured(emit: Emit) -> Iterator[None]:
    out, err, handler = LineWriter("stdout", emit), LineWriter("stderr", emit), LogForwarder(emit)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            yield
    finally:
        root.removeHandler(handler)
        out.close()
        err.close()
