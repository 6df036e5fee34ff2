"""A processor's extra requirements (``--requirements``): package index requirements, nothing else.

The list is comma-separated; each entry is a PEP 508 requirement without a
URL: a project name with extras, version specifiers and markers
(``redis>=4.5,<6``, ``celery[redis]==5.3.*``, ``tomli; python_version < "3.11"``).
pip installs them from the package index the node is set up with. What
would make pip run code from elsewhere is refused: ``name @ URL``, paths,
``file:``/``git+`` URLs, archive file names, pip options and control
characters. Code from the repository itself belongs in its own
``requirements.txt`` or ``pyproject.toml``; another repository belongs
behind the git allow-list as a processor of its own.

The rule is checked at ``add``/``update processor`` and again by the agent
before pip runs (:func:`pyfi.agent.venv.ensure_venv`).
"""
from __future__ import annotations

from typing import Sequence

from packaging.requirements import InvalidRequirement, Requirement

from pyfi.errors import InvalidInput

#: file names pip would take for a local archive rather than a project on the index
ARCHIVE_SUFFIXES = (".zip", ".whl", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz",
                    ".tar.lz", ".tar.lzma")
VERSION_OPERATORS = tuple("<>=!~")
FIX = "give package names from the index with optional extras, versions and markers, e.g. 'redis>=4.5,<6'"


def split_requirements(text: str | Sequence[str] | None) -> list[str]:
    """The entries of a comma-separated list; a comma inside one (``redis>=4,<6``, ``x[a,b]``) stays in it.

    A comma starts a new entry outside brackets and quotes unless a version
    specifier follows it (one starts with an operator: ``<>=!~``).
    """
    if text is None:
        return []
    if not isinstance(text, str):
        return [entry.strip() for entry in text if entry and entry.strip()]
    entries, current, depth, quote = [], "", 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0 and text[index + 1:].lstrip()[:1] not in VERSION_OPERATORS:
            entries.append(current)
            current = ""
            continue
        current += char
    entries.append(current)
    return [entry.strip() for entry in entries if entry.strip()]


def check_requirement(entry: str) -> None:
    """Raise InvalidInput naming the problem and the fix unless *entry* is an index requirement."""
    problem = _problem(entry)
    if problem:
        raise InvalidInput(f"requirement {entry!r} {problem}", FIX)


def check_requirements(text: str | Sequence[str] | None) -> list[str]:
    """The entries of *text* (see :func:`split_requirements`), each checked with :func:`check_requirement`."""
    entries = split_requirements(text)
    for entry in entries:
        check_requirement(entry)
    return entries


def _problem(entry: str) -> str:
    if not entry.isprintable():
        return "holds a control or line-separator character"
    if entry.startswith("-"):
        return "is a pip option: only requirements are accepted"
    if "://" in entry or entry.lower().startswith("file:") or any(char in entry for char in "/\\"):
        return "names a URL or a path: only packages from the index are accepted"
    try:
        requirement = Requirement(entry)
    except InvalidRequirement:
        return "is not a requirement (a project name with optional [extras], versions and ; markers)"
    if requirement.url is not None:
        return "names a URL (name @ URL): only packages from the index are accepted"
    if requirement.name.lower().endswith(ARCHIVE_SUFFIXES):
        return "looks like an archive's file name, which pip would install from a file"
    return ""
