"""The one exception tree of pyfi.

Core code raises these; front ends translate them once (the CLI turns them
into a one-line message and an exit code; :func:`known_error` names the
backend failures that are not pyfi's own). Every message should name the
problem *and* the fix, because it is all the user will see.
"""
from __future__ import annotations


class PyfiError(Exception):
    """Base of every error pyfi raises on purpose."""

    #: Exit code used by the CLI: 1 = operational failure, 2 = usage error.
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageProblem(PyfiError):
    """The input itself is wrong; running again unchanged will fail again."""

    exit_code = 2


class InvalidInput(UsageProblem):
    """A value is malformed or out of range."""


class NotFound(UsageProblem):
    """A named object does not exist."""


class AlreadyExists(UsageProblem):
    """An object with that name exists already."""


class InUse(PyfiError):
    """The object is referenced by others and cannot be removed."""


class PermissionDenied(PyfiError):
    """The acting user lacks the right the operation needs."""


class NotAuthenticated(PermissionDenied):
    """No valid credentials: a wrong user name or password, or a token missing, expired or revoked."""


class ConfigError(UsageProblem):
    """The configuration (flags, environment, ini file) is unusable."""


class BackendUnavailable(PyfiError):
    """A database, broker or pub/sub server cannot be reached."""


class NotInitialized(PyfiError):
    """The database has no pyfi schema yet."""


class DeployError(PyfiError):
    """Processor code could not be fetched, installed or imported."""


class CallFailed(PyfiError):
    """A task call finished in failure."""


class CallTimeout(PyfiError):
    """A task call did not finish within the allowed time."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def known_error(exc: BaseException) -> PyfiError | None:
    """The PyfiError for a well-known backend failure, else None; the backends' modules are not imported."""
    name = type(exc).__name__
    from_database = type(exc).__module__.startswith(("sqlalchemy", "psycopg2", "sqlite3"))  # kombu has these names too
    if name in {"OperationalError", "InterfaceError"} and from_database:
        return BackendUnavailable(f"database unavailable: {first_line(getattr(exc, 'orig', exc))}",
                                  "check the server and the URI (--db, PYFI_DB or the ini file)")
    if name in {"ProgrammingError"} and "does not exist" in str(exc):
        return NotInitialized("the database schema is missing or out of date", "run `pyfi db init` or `pyfi db migrate`")
    return None
