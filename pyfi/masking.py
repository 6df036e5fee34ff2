"""Keep secrets out of output: URLs are printed with their password masked."""
from __future__ import annotations

import re

_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/]*)(?::(?P<secret>[^@/]*))?@")


def mask_url(url: str | None) -> str | None:
    """``https://user:token@host/x`` -> ``https://user:***@host/x``; a lone token is masked too."""
    if not url:
        return url
    match = _USERINFO.match(url)
    if not match:
        return url
    user, secret = match.group("user"), match.group("secret")
    if secret is None:
        # https://TOKEN@host: a bare userinfo on http(s) is usually a token
        masked = "***" if match.group("scheme").startswith("http") and user else user
    else:
        masked = f"{user}:***"
    return f"{match.group('scheme')}{masked}@{url[match.end():]}"
