"""Serving a FastAPI application with uvicorn: ``pyfi api start`` (and ``pyfi web start``) run :func:`serve`.

- Each request is logged, one line on stdout (uvicorn's access log); the
  server's own messages go to stderr.
- Ctrl-C and SIGTERM stop it cleanly: uvicorn stops accepting, lets the
  requests in flight finish, and :func:`serve` returns (exit status 0).
- An address already in use, or one that cannot be bound, is one
  :class:`~pyfi.errors.BackendUnavailable` line (exit 1), not a traceback:
  the port is tried before uvicorn starts.
"""
from __future__ import annotations

import errno
import signal
import socket
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import uvicorn

from pyfi.errors import BackendUnavailable, InvalidInput

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def check_bindable(host: str, port: int) -> None:
    """Raise a one-line error unless ``host:port`` can be listened on now."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidInput(f"cannot listen on {host!r}: {exc.strerror}", "give an address of this host with -ip") from exc
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise _bind_error(host, port, exc) from exc


def _bind_error(host: str, port: int, exc: OSError) -> BackendUnavailable:
    if exc.errno == errno.EADDRINUSE:
        return BackendUnavailable(f"port {port} on {host} is in use", "stop what listens there or pass another -p PORT")
    return BackendUnavailable(f"cannot listen on {host}:{port}: {exc.strerror}", "pass another -ip ADDRESS or -p PORT")


class Server(uvicorn.Server):
    """uvicorn's server, which also tells the app it is stopping (``app.state.closing``): open event streams end."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        closing = getattr(getattr(self.config.app, "state", None), "closing", None)
        if closing is not None:
            closing.set()
        super().handle_exit(sig, frame)


def server_for(app: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server for ``app`` (not started): tests run it in a thread with ``server.run()``."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=True,
                            timeout_graceful_shutdown=10, server_header=False)
    return Server(config)


@contextmanager
def stop_signals_end_the_run() -> Iterator[None]:
    """Once uvicorn has shut down on SIGINT or SIGTERM it hands the signal on to the handler it found: make that
    one do nothing, so the signal ends the run rather than the process (or raises KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _stopped) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stopped(_number: int, _frame: Any) -> None:
    return None


def serve(app: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "info") -> None:
    """Serve ``app`` on ``host:port`` until Ctrl-C or SIGTERM."""
    check_bindable(host, port)
    server = server_for(app, host, port, log_level)
    with stop_signals_end_the_run():
        server.run()
    if not server.started:  # it could not bind after all (taken between the check and the start)
        raise BackendUnavailable(f"could not serve on {host}:{port}", "see the lines above, or pass another -p PORT")
