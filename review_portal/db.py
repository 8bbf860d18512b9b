"""Declarative base with a constraint naming convention, and column types shared by models.

Every datetime is stored in UTC and comes back timezone-aware on SQLite and PostgreSQL alike
(``UTCDateTime``), so comparisons and the audit hashes do not depend on the database.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, InstanceState, Mapped, mapped_column, registry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def loaded_id(obj) -> int | None:
    """The primary key of a mapped object read without the database (``None`` for anything
    else, e.g. Flask-Login's anonymous user, or an object never flushed). After a commit
    every loaded object is expired and asking it even its ``id`` reads it again: what runs
    after a request's commit (the access line, the caching headers) asks this instead."""
    state = sa.inspect(obj, raiseerr=False)
    if state is None or not isinstance(state, InstanceState) or not state.identity:
        return None
    return state.identity[0]


def utcnow() -> datetime:
    """The current moment, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_column(enum_cls: type[enum.Enum], **kwargs) -> sa.Enum:
    """A portable enum column stored by value (a VARCHAR with a CHECK constraint)."""
    return sa.Enum(
        enum_cls,
        values_callable=lambda members: [m.value for m in members],
        native_enum=False,
        validate_strings=True,
        length=max(len(m.value) for m in enum_cls),
        create_constraint=True,
        name=kwargs.pop("name", enum_cls.__name__.lower()),
        **kwargs,
    )


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def configure_sqlite(engine: sa.Engine) -> None:
    """Make SQLite transactional the way PostgreSQL is.

    Foreign keys on; the driver's own transaction handling off, so SAVEPOINTs work; and
    every transaction begins IMMEDIATE, taking the write lock at once: with several
    threads, transactions wait for each other instead of failing on a lock upgrade.
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        # SQLite's own lower() folds ASCII only; searches must fold Cyrillic too.
        dbapi_connection.create_function(
            "lower", 1, lambda s: s.lower() if isinstance(s, str) else s, deterministic=True
        )
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


#: Tables a migration makes outside the models: SQLite's FTS5 search index of the registry
#: (migration 0021) and its shadow tables (``…_data``, ``…_idx``, ``…_docsize``, ``…_config``).
NOT_MODELLED_PREFIXES = ("registry_snapshot_items_fts",)


def migration_filter(dialect: str):
    """Alembic's ``include_object`` for ``dialect``: leave out the indexes made for another
    database only (``Index(...).ddl_if(dialect=...)``), which exist nowhere else."""

    def include_object(object, name, type_, reflected, compare_to):
        if type_ == "table" and reflected and name.startswith(NOT_MODELLED_PREFIXES):
            return False
        if type_ == "index" and not reflected:
            ddl_if = getattr(object, "_ddl_if", None)
            if ddl_if is not None and ddl_if.dialect not in (None, dialect):
                return False
        return True

    return include_object
