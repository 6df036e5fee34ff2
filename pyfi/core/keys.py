"""Signing keys: one per pyfi user, one per processor (see :mod:`pyfi.messaging.signing`).

A user's key signs the calls they send; a processor's key signs the calls
its workers send (plugs, a workflow's next step, retries) and carries the
rights of the processor's owner. Keys are made when a user is added
(migration 0009 made them for users added before) and when an agent first
runs a processor.

Who can read a private half: the database owner (agents, administration),
and, on PostgreSQL, a pyfi user logged in as their own role their own key,
through ``pyfi_my_signing_key()`` (the column is granted to no one else).
On SQLite everything is in the file, private to its OS user.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from pyfi.core.access import Actor, acting_name
from pyfi.core.login import own_login
from pyfi.db.models import Processor, SigningKey, User
from pyfi.errors import NotFound, PermissionDenied


@dataclass(frozen=True)
class KeyOwner:
    """Whose a key is, as a worker checking a call needs it."""

    key_id: str
    public_key: str
    user: str | None  # a user's key: the user
    processor_id: str | None  # a processor's key: the processor, its name and its owner
    processor: str | None = None
    processor_owner: str | None = None

    @property
    def authority(self) -> str | None:
        """The pyfi user whose rights a call signed with this key has."""
        return self.user if self.user is not None else self.processor_owner

    @property
    def sender(self) -> str:
        """How a call's sender is recorded: the user, or the processor and its owner."""
        return self.user if self.user is not None else f"{self.processor} ({self.processor_owner})"


def add_user_key(session: Session, user: User) -> SigningKey:
    """Give ``user`` a new signing key."""
    from pyfi.messaging.signing import new_key_pair

    private, public = new_key_pair()
    key = SigningKey(user_id=user.id, public_key=public, private_key=private)
    session.add(key)
    session.flush()
    return key


def replace_user_key(session: Session, user: User) -> SigningKey:
    """Give ``user`` a new key; calls signed with the old ones are refused from now on (even those still queued)."""
    session.execute(delete(SigningKey).where(SigningKey.user_id == user.id))
    return add_user_key(session, user)


def user_signer(session: Session, actor: Actor):  # noqa: ANN201 - a pyfi.messaging.signing.Signer
    """The signer of calls sent by the acting user (their key is made here if the login may and they have none)."""
    from pyfi.messaging.signing import Signer

    name = acting_name(session, actor)
    if own_login(session) is not None:  # a pyfi user's own PostgreSQL role reads only its own key
        row = session.execute(text("SELECT key_id, private_key FROM pyfi_my_signing_key()")).first()
        if row is None:
            raise PermissionDenied(f"user {name!r} has no signing key",
                                   f"ask an administrator to give them a new password (and key): "
                                   f"pyfi update user -n {name} -p")
        return Signer(row.key_id, row.private_key)
    key = session.scalar(select(SigningKey).join(User, User.id == SigningKey.user_id).where(User.name == name)
                         .order_by(SigningKey.created.desc()).limit(1))
    if key is None:
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"{name!r} is not a pyfi user", "ask an administrator to run `pyfi add user`")
        key = add_user_key(session, user)
    return Signer(key.id, key.private_key)


def processor_signer(session: Session, processor_id: str):  # noqa: ANN201 - a pyfi.messaging.signing.Signer
    """The signer of the calls a processor's workers send (made on first use; needs the database owner's login)."""
    from pyfi.messaging.signing import Signer, new_key_pair

    key = session.scalar(select(SigningKey).where(SigningKey.processor_id == processor_id)
                         .order_by(SigningKey.created.desc()).limit(1))
    if key is None:
        if session.get(Processor, processor_id) is None:
            raise NotFound(f"no processor with id {processor_id!r}", "list them with `pyfi ls processors`")
        private, public = new_key_pair()
        key = SigningKey(processor_id=processor_id, public_key=public, private_key=private)
        session.add(key)
        session.flush()
    return Signer(key.id, key.private_key)


def call_key(session: Session, key_id: str, processor_id: str) -> bytes | None:
    """Key ``key_id``'s call key for ``processor_id`` (pyfi.messaging.signing); None for a key the database does not know.

    A processor's workers' login gets it from ``pyfi_call_key()``, for its own
    processor only; a login that reads secret halves (the database owner, or
    SQLite) derives it here.
    """
    from pyfi.messaging.signing import call_key as derive

    if worker_login(session):
        found = session.execute(text("SELECT pyfi_call_key(:key_id)"), {"key_id": key_id}).scalar()
        return bytes.fromhex(found) if found else None
    secret = session.scalar(select(SigningKey.private_key).where(SigningKey.id == key_id))
    return derive(secret, processor_id) if secret else None


def worker_login(session: Session) -> bool:
    """True when the session is a processor's workers' PostgreSQL login (pyfi.core.worker_logins)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    return bool(session.execute(_WORKER_LOGIN).scalar())  # (a superuser "has" every role: membership is asked)


_WORKER_LOGIN = text(
    "SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
    " JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = 'pyfi_workers' AND r.rolname = session_user)"
)
_OWNER = (
    "SELECT k.id, k.public_key, u.name AS user_name, p.id AS processor_id, p.name AS processor,"
    " p.owner AS processor_owner FROM signing_keys k LEFT JOIN users u ON u.id = k.user_id"
    " LEFT JOIN processors p ON p.id = k.processor_id WHERE k.id = :key_id"
)


def key_owner(session: Session, key_id: str) -> KeyOwner | None:
    """Whose key ``key_id`` is (None for a key the database does not know)."""
    row = session.execute(text(_OWNER), {"key_id": key_id}).first()
    if row is None or (row.user_name is None and row.processor_id is None):
        return None
    return KeyOwner(row.id, row.public_key, row.user_name, row.processor_id, row.processor, row.processor_owner)
