"""The one rule for names, and the rule for a socket's function name.

Names (of queues, processors, sockets, plugs, users, roles, nodes...) are
shown in tables, log lines and pub/sub channels, so a name is 1-200
characters without surrounding spaces and with no character that is not
seen as itself: none of the Unicode categories Cc (control: newline, tab,
escape...), Cf (format: invisible and bidirectional marks), Zl and Zp (line
and paragraph separators), no space but the ASCII one (no-break, ideographic
spaces...), and no default-ignorable or blank character (the combining
grapheme joiner, variation selectors, Hangul fillers, the braille blank...),
which would let one name pass for another. A processor's name holds no
``.``: its pub/sub room is ``<queue>.<processor>``, which must name one
queue and one processor. On PostgreSQL CHECK constraints hold the database
to the same rules (migration 0015), so raw SQL cannot store what the CLI
refuses.

A socket's function is a plain public function of the module: a Python
identifier that does not start with an underscore (``__class__``,
``_private`` are refused).

A node's name (``agent start -n``, ``worker start --node``) becomes a
directory under ``$PYFI_HOME/agents``, so it is one safe path component
(:data:`NODE_NAME`).
"""
from __future__ import annotations

import functools
import re
import unicodedata

from pyfi.errors import InvalidInput

MAX_NAME = 200
#: Unicode categories no name may hold
FORBIDDEN_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")
#: characters of other categories that are not seen as themselves: spaces other than U+0020, Unicode's
#: default-ignorable code points (DerivedCoreProperties.txt) and the braille blank
INVISIBLE_RANGES = ((0x00A0, 0x00A0), (0x034F, 0x034F), (0x115F, 0x1160), (0x1680, 0x1680), (0x17B4, 0x17B5),
                    (0x180B, 0x180F), (0x2000, 0x200A), (0x202F, 0x202F), (0x205F, 0x205F), (0x2800, 0x2800),
                    (0x3000, 0x3000), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
                    (0xE0000, 0xE0FFF))
FUNCTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: a node name becomes a directory under PYFI_HOME/agents: one safe path component
#: (a hostname, made of letters, digits, '-' and '.', always is one)
NODE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
NODE_NAME_RULE = "use letters, digits, '.', '_' and '-', not starting with '.', at most 100 characters"


def forbidden_character(text: str) -> str | None:
    """The first character of ``text`` no name may hold, if any."""
    return next((c for c in text if _forbidden(ord(c))), None)


def _forbidden(point: int) -> bool:
    if unicodedata.category(chr(point)) in FORBIDDEN_CATEGORIES:
        return True
    return any(low <= point <= high for low, high in INVISIBLE_RANGES)


def check_name(name: str | None, what: str) -> str:
    """``name`` when it is a valid name of a ``what``; InvalidInput naming the problem otherwise."""
    if name is None or not name.strip():
        raise InvalidInput(f"a {what} needs a name", "pass -n/--name NAME")
    bad = forbidden_character(name)
    if bad is not None:
        raise InvalidInput(f"invalid {what} name {ascii(name)}: it holds the invisible or control character "
                           f"{ascii(bad)[1:-1]}", "use printable characters only: no newline, tab, no space but "
                           "the ASCII one, no other control or invisible character")
    if name != name.strip() or len(name) > MAX_NAME:
        raise InvalidInput(f"invalid {what} name {name!r}", f"use 1-{MAX_NAME} characters without surrounding spaces")
    if what == "processor" and "." in name:
        raise InvalidInput(f"invalid processor name {name!r}: it holds a '.'",
                           "a processor's room is <queue>.<processor>: use letters, digits, '-' or '_' instead of '.'")
    return name


def check_function_name(function: str) -> str:
    """``function`` when it can name a socket's function: a public Python identifier."""
    if not FUNCTION_RE.match(function):
        raise InvalidInput(f"invalid task function name {function!r}",
                           "give the name of a public function of the module (letters, digits and _, "
                           "not starting with _), e.g. do_something")
    return function


@functools.cache
def forbidden_ranges() -> tuple[tuple[int, int], ...]:
    """Code point ranges of the characters no name may hold (for the database's CHECK constraint)."""
    ranges: list[tuple[int, int]] = []
    for point in range(0x110000):
        if 0xD800 <= point <= 0xDFFF or not _forbidden(point):
            continue
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1] = (ranges[-1][0], point)
        else:
            ranges.append((point, point))
    return tuple(ranges)
