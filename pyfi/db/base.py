"""Declarative base, common columns and column types shared by every model."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import DateTime, MetaData, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pyfi.enums import StrEnum

# Stable constraint names: alembic batch mode on SQLite needs them to alter tables.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Naive UTC timestamp: every node writes the same clock domain."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


class EnumText(TypeDecorator):
    """Store a StrEnum as its plain string value; read it back as the member.

    Plain VARCHAR keeps migrations identical on SQLite and PostgreSQL; the
    enum is enforced in Python, where the error can say how to fix it.
    """

    impl = String(32)
    cache_ok = True

    def __init__(self, enum_cls: type[StrEnum]) -> None:
        super().__init__()
        self.enum_cls = enum_cls

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return self.enum_cls(value).value

    def process_result_value(self, value: Any, dialect: Any) -> StrEnum | None:
        return None if value is None else self.enum_cls(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: DateTime()}

    def to_dict(self) -> dict[str, Any]:
        """Column values only (no relationships, no deferred secrets), for JSON output."""
        return {c.key: getattr(self, c.key) for c in self.__mapper__.column_attrs if not c.deferred}


class Common:
    """Columns every first-class object carries (as in the tables of the original pyfi documentation)."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    owner: Mapped[str | None] = mapped_column(String(120))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lastupdated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)
