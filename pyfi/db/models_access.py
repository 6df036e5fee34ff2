"""The access side of the data model: users, roles, privileges, signing keys, workers' logins, the network's id.

See ``docs/access.rst``. Re-exported by :mod:`pyfi.db.models`, with the rest.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pyfi.db.base import Base, Common, EnumText, new_id, utcnow
from pyfi.enums import Right

user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


class User(Common, Base):
    __tablename__ = "users"

    email: Mapped[str | None] = mapped_column(String(200))
    #: deferred: never loaded unless asked for (pyfi login roles may not even SELECT it)
    password_hash: Mapped[str | None] = mapped_column(String(300), deferred=True)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, back_populates="users")
    privileges: Mapped[list[Privilege]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class Role(Common, Base):
    __tablename__ = "roles"

    users: Mapped[list[User]] = relationship(secondary=user_roles, back_populates="roles")
    privileges: Mapped[list[Privilege]] = relationship(
        back_populates="role", cascade="all, delete-orphan", passive_deletes=True
    )


class Privilege(Base):
    """A right granted to exactly one user or one role."""

    __tablename__ = "privileges"
    __table_args__ = (
        UniqueConstraint("right", "user_id", "role_id"),
        CheckConstraint("(user_id IS NULL) <> (role_id IS NULL)", name="one_grantee"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    right: Mapped[Right] = mapped_column(EnumText(Right))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[str | None] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str | None] = mapped_column(String(120))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lastupdated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User | None] = relationship(back_populates="privileges")
    role: Mapped[Role | None] = relationship(back_populates="privileges")

    @property
    def grantee(self) -> str:
        return self.user.name if self.user else self.role.name if self.role else "?"


class SigningKey(Base):
    """A key that signs calls (pyfi.messaging.signing): a user's or a processor's."""

    __tablename__ = "signing_keys"
    __table_args__ = (CheckConstraint("(user_id IS NULL) <> (processor_id IS NULL)", name="one_signer"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    processor_id: Mapped[str | None] = mapped_column(ForeignKey("processors.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    #: deferred: read only where a signer is made (no pyfi login role may even SELECT it)
    private_key: Mapped[str | None] = mapped_column(String(64), deferred=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Installation(Base):
    """The one row naming this pyfi network: its id namespaces its pub/sub channels (pyfi.core.network)."""

    __tablename__ = "installation"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WorkerLogin(Base):
    """A processor's workers' database login on one node (PostgreSQL): what they may write is their processor's.

    The agent makes the role and gives it a new password each time it starts
    a worker (pyfi.core.worker_logins); row-level security reads this table
    to know whose calls the login may record.
    """

    __tablename__ = "worker_logins"

    role: Mapped[str] = mapped_column(String(63), primary_key=True)
    processor_id: Mapped[str] = mapped_column(ForeignKey("processors.id", ondelete="CASCADE"), index=True)
    node: Mapped[str] = mapped_column(String(200))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token a user logged in for (pyfi.core.tokens): only its sha256 is kept, never the token itself.

    On PostgreSQL the table is the database owner's alone (no grant, row-level security on): a pyfi user's own
    login can neither read the digests nor issue itself one.
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime]
    revoked: Mapped[dt.datetime | None]
    last_used: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()
