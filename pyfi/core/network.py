"""This pyfi network's identity, and the namespace of its pub/sub channels.

A network is one database. Its id (migration 0011) prefixes every pub/sub
channel its workers, agents and listeners use, ``pyfi:<id>:<channel>``, so
two networks sharing a Redis server (which does not separate pub/sub by
database number) never hear each other.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.db.models import Installation
from pyfi.errors import NotInitialized


def network_id(session: Session) -> str:
    found = session.scalar(select(Installation.id).limit(1))
    if found is None:
        raise NotInitialized("this database has no network id", "run `pyfi db migrate` as the database owner")
    return found


def namespace(session: Session) -> str:
    """The prefix of this network's pub/sub channels."""
    return f"pyfi:{network_id(session)}:"
