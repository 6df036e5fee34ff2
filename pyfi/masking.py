"""Keep secrets out of output: URLs are printed with their credentials masked.

The one masking function of pyfi: ``ls``, ``db json``, logs and git/pip
error messages all go through ``mask_url``, which accepts a lone URL or any
text holding URLs.

And keep a terminal safe from what is shown: text that comes from outside
(a call's name from the broker, a processor's error, anything stored) goes
to a terminal through ``printable``, which writes control characters as
escapes (``\x1b``), so it cannot move the cursor, clear the screen, set the
window's title or add lines to a table.
"""
from __future__ import annotations

import re
import unicodedata

# scheme://userinfo@ ; the userinfo runs to the last "@" before the host's "/" (greedy)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s?#]*)@")


def mask_url(text: str | None) -> str | None:
    """Return *text* (a URL, or any text holding URLs) with its secrets replaced by ``***``.

    ``https://user:secret@host/x`` becomes ``https://user:***@host/x``; a lone
    user part of an http(s) URL is masked too, because that is where tokens go
    (``https://<token>@github.com/...``). ``ssh://git@host/x`` and
    ``git@host:x`` carry no secret and are kept.
    """
    if not text:
        return text
    return _URL_USERINFO.sub(_mask_userinfo, text)


def strip_credentials(url: str) -> str:
    """*url* without any ``userinfo@`` part (what a repository is, whoever logs in)."""
    return _URL_USERINFO.sub(lambda m: m["scheme"], url)


def _mask_userinfo(match: re.Match) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    user, has_password, _secret = userinfo.partition(":")
    if has_password:
        return f"{scheme}{user}:***@"
    if scheme.lower().startswith("http") and user:
        return f"{scheme}***@"
    return match.group(0)


#: Unicode categories written as escapes: control, format (bidirectional marks...), lone surrogates, line and
#: paragraph separators
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(text: str, keep: str = "") -> str:
    """*text* with each control, format or line-separator character, but those in *keep*, written as its Python
    escape (``\\x1b``, ``\\n``, ``\\u202e``), as ``repr`` writes it."""
    if text.isprintable():
        return text
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ESCAPED_CATEGORIES and c not in keep else c
                   for c in text)
