"""pyfi's exceptions as HTTP answers, mapped once for every route.

Every error body is ``{"detail": "one line naming the problem and the fix"}``
(:class:`Problem`), the line the CLI would print. Bad input is a 4xx, never a
500: request validation (FastAPI's) is a 422 naming the field, and a value
the database cannot hold (too long, out of range) is a 422 too.
"""
from __future__ import annotations

import difflib
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException

from pyfi.errors import (
    AlreadyExists,
    BackendUnavailable,
    ConfigError,
    InUse,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    PyfiError,
    UsageProblem,
    known_error,
)


class Problem(BaseModel):
    """What went wrong, in one line, with the fix."""

    detail: str


#: exception class -> HTTP status; the first class an error is an instance of wins
STATUS: tuple[tuple[type[PyfiError], int], ...] = (
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (InUse, 409),
    (InvalidInput, 422),
    (ConfigError, 422),
    (UsageProblem, 422),
    (BackendUnavailable, 503),
)

#: the error answers every route may give, for the OpenAPI document
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text} for status, text in (
        (400, "The operation failed"), (401, "No valid token"), (403, "A right is missing"),
        (404, "No such object"), (409, "Conflict: exists already, or in use"),
        (422, "Invalid input (the field is named)"), (503, "A backend (database, broker) is unavailable"))
}


def status_of(exc: PyfiError) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 400)


def problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


async def pyfi_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PyfiError)
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, str(exc), headers)


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem(422, validation_line(exc.errors()))


def validation_line(errors: Any) -> str:
    """FastAPI's validation errors in one line: each field, what is wrong with it."""
    parts = []
    for error in list(errors)[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
        parts.append(f"{where or 'body'}: {_what_is_wrong(error)}")
    return "invalid " + "; ".join(parts) + " (fix the field named and send again)"


def _what_is_wrong(error: dict[str, Any]) -> str:
    """The error's message; for a value of a closed list, the nearest one instead of the whole list."""
    if error.get("type") == "string_pattern_mismatch":  # (the pattern itself is in the OpenAPI document)
        return f"{error.get('input')!r} is not in the form this field takes (see its description in /api/docs)"
    if error.get("type") != "enum" or not isinstance(error.get("input"), str):
        return str(error.get("msg", "invalid"))
    choices = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
    near = difflib.get_close_matches(error["input"].upper(), choices, n=1)
    return f"unknown value {error['input']!r}" + (f" (did you mean {near[0]}?)" if near else f", one of {', '.join(choices)}")


async def database_error(_request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold is the caller's to fix; an unreachable database is a 503."""
    known = known_error(exc)
    if known is not None:
        return await pyfi_error(_request, known)
    if isinstance(exc, DataError):
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return problem(422, f"a value does not fit: {first} (shorten or correct it)")
    raise exc


async def not_text(_request: Request, _exc: Exception) -> JSONResponse:
    """Text that is not Unicode (a lone surrogate from a form or a path) cannot be stored or compared."""
    return problem(422, "a value is not valid text (send UTF-8)")


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (no such path, a method the path does not take) in pyfi's body."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method the path takes (Starlette names only its first route's)
        headers["Allow"] = ", ".join(sorted(allowed_methods(request)))
    return problem(exc.status_code, str(exc.detail), headers)


def allowed_methods(request: Request) -> set[str]:
    """The methods the OpenAPI document gives the request's path."""
    asked = request.scope["path"].split("/")
    found: dict[str, set[str]] = {}  # the path's template -> its methods
    for template, operations in request.app.openapi().get("paths", {}).items():
        parts = template.split("/")
        if len(parts) == len(asked) and all(p == a or p.startswith("{") for p, a in zip(parts, asked, strict=True)):
            found[template] = {method.upper() for method in operations}
    fixed = [template for template in found if "{" not in template]  # /users/me, not /users/{name}
    return found[fixed[0]] if fixed else set().union(*found.values())


def install(app: FastAPI) -> None:
    """Answer pyfi's errors, invalid requests and database value errors as described above."""
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(PyfiError, pyfi_error)
    app.add_exception_handler(UnicodeError, not_text)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(DBAPIError, database_error)
