"""Bearer tokens: what a user logs in for (``POST /api/token``, ``pyfi login``) and acts by afterwards.

- A token is 32 random bytes (``secrets``); only its sha256 is stored, so
  the table holds nothing a reader could log in with.
- It expires (:data:`DEFAULT_HOURS` unless the issuer says otherwise) and
  can be revoked: one (``pyfi logout``) or every token of a user (``pyfi
  update user --revoke-tokens``, or ``DELETE /api/users/{name}/tokens``).
- A wrong user name and a wrong password fail alike (:data:`BAD_LOGIN`), and
  cost the same scrypt work, so neither says which part was wrong.

The table is the database owner's alone on PostgreSQL (migration 0019): the
API server and ``pyfi login`` use the owner's login, as agents do.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import secrets
from configparser import ConfigParser
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pyfi.config import Settings, read_ini
from pyfi.core.access import Actor, acting_name, require
from pyfi.core.lookup import find
from pyfi.core.passwords import hash_password, verify_password
from pyfi.db.base import utcnow
from pyfi.db.models import ApiToken, User
from pyfi.enums import Right
from pyfi.errors import InvalidInput, NotAuthenticated
from pyfi.private import private_dir, write_private

#: how long a token lives unless the issuer says otherwise (``api start --token-hours``, ``login --hours``)
DEFAULT_HOURS = 12.0
#: the longest life a token may be given: 90 days
MAX_HOURS = 24.0 * 90
#: a token's last use is written at most this often (a busy client does not write on every request)
TOUCH_EVERY = dt.timedelta(seconds=60)
BAD_LOGIN = "wrong user name or password"
#: where ``pyfi login`` keeps its token: the ini file's section and key, or this environment variable
TOKEN_KEY = ("login", "token")
TOKEN_ENV = "PYFI_TOKEN"


@dataclass(frozen=True)
class Issued:
    """A token just issued: the only time the token itself is known."""

    token: str
    user: str
    expires: dt.datetime


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_hours(hours: float) -> float:
    if not 0 < hours <= MAX_HOURS:
        raise InvalidInput(f"a token's life must be more than 0 and at most {MAX_HOURS:g} hours, got {hours:g}",
                           "pass a number of hours such as 12")
    return hours


def issue(session: Session, user: User, hours: float = DEFAULT_HOURS) -> Issued:
    """A new token for ``user``, expiring in ``hours``."""
    token = "pyfi_" + secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(hours=check_hours(hours))
    session.add(ApiToken(digest=digest(token), user_id=user.id, expires=expires))
    session.flush()
    return Issued(token, user.name, expires)


@cache
def _decoy() -> str:
    """A hash checked when the user does not exist, so that a wrong name costs what a wrong password does."""
    return hash_password(secrets.token_urlsafe(16))


def token_for(session: Session, name: str, password: str, hours: float = DEFAULT_HOURS) -> Issued:
    """Check ``name``'s password and issue a token; NotAuthenticated (:data:`BAD_LOGIN`) otherwise."""
    user = session.scalar(select(User).where(User.name == name)) if "\x00" not in name else None  # (no name has one)
    stored = session.scalar(select(User.password_hash).where(User.id == user.id)) if user else None
    if not verify_password(password, stored or _decoy()) or user is None or stored is None:
        raise NotAuthenticated(BAD_LOGIN, "check both and try again")
    return issue(session, user, hours)


def verify(session: Session, token: str) -> str:
    """The name of the user ``token`` was issued to; NotAuthenticated when unknown, expired or revoked."""
    row = session.scalar(select(ApiToken).where(ApiToken.digest == digest(token)))
    now = utcnow()
    if row is None or row.revoked is not None:
        raise NotAuthenticated("the token is unknown or revoked", "log in again: pyfi login, or POST /api/token")
    if row.expires <= now:
        raise NotAuthenticated("the token has expired", "log in again: pyfi login, or POST /api/token")
    if row.last_used is None or now - row.last_used > TOUCH_EVERY:
        row.last_used = now
    return row.user.name


def configured_token(settings: Settings) -> str | None:
    """The token ``pyfi login`` stored (``[login] token`` of the ini file), or ``PYFI_TOKEN``."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    return read_ini(settings.ini).get(*TOKEN_KEY, fallback="").strip() or None


def revoke(session: Session, token: str) -> bool:
    """Revoke one token (logging out needs no right: holding the token is enough); False when it was not live."""
    result = session.execute(update(ApiToken).where(ApiToken.digest == digest(token), ApiToken.revoked.is_(None))
                             .values(revoked=utcnow()))
    return bool(result.rowcount)


def revoke_all(session: Session, actor: Actor, name: str | None, ident: str | None = None) -> int:
    """Revoke every live token of a user (by name or id): one's own need no right, anyone else's UPDATE_USER."""
    if name is None or name != acting_name(session, actor):
        require(session, actor, Right.UPDATE_USER)
    user = find(session, User, "user", name, ident)
    result = session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(None))
                             .values(revoked=utcnow()))
    return int(result.rowcount)


def store_login(ini: Path, user: str, token: str) -> None:
    """Keep ``[login] user`` and ``token`` in the ini file (mode 0600; never a password)."""
    parser = read_ini(ini)
    if not parser.has_section(TOKEN_KEY[0]):
        parser.add_section(TOKEN_KEY[0])
    parser.set(TOKEN_KEY[0], "user", user)
    parser.set(*TOKEN_KEY, token)
    _write(ini, parser)


def forget_login(ini: Path) -> bool:
    """Take the token out of the ini file; False when it held none."""
    parser = read_ini(ini)
    if not (parser.has_section(TOKEN_KEY[0]) and parser.remove_option(*TOKEN_KEY)):
        return False
    _write(ini, parser)
    return True


def _write(ini: Path, parser: ConfigParser) -> None:
    text = io.StringIO()
    parser.write(text)
    private_dir(ini.parent)
    write_private(ini, text.getvalue().encode("utf-8"))
