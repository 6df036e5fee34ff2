"""The one exception tree of pyfi.

Core code raises these; front ends translate them once (the CLI turns them
into a one-line message and an exit code). Every message should name the
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
