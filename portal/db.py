"""Engine, session, declarative base, the UTC datetime type and the transaction boundary.

A request, a CLI command or a scheduled job owns exactly one transaction: it commits once at its
boundary (``transaction()`` or the request hooks in ``portal.__init__``). Services only flush.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from portal import prepared

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend.

    Naive values are refused at bind time: SQLite would otherwise store them without an offset and a
    local time would silently become a UTC one.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} refused: pass an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling would BEGIN lazily and DEFERRED; we turn it off and begin
    # transactions IMMEDIATE, so two writers queue on busy_timeout instead of one failing with
    # "database is locked" when it upgrades its read lock. A connection that will only read can ask
    # for a plain BEGIN with the execution option sqlite_begin="DEFERRED" (see Database.reader()),
    # so a long read never holds the write lock.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode == "NONE":
            return  # each statement commits on its own (used by tests to always read fresh data)
        connection.exec_driver_sql("BEGIN" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class ReadOnlySessionError(RuntimeError):
    """Something tried to write through a session handed out for reading only."""


def _refuse_flush(session: Session, _flush_context: Any, _instances: Any) -> None:
    raise ReadOnlySessionError(
        "this session is for reading only: write in a request whose view is not marked read_only"
    )


def _refuse_dml(orm_execute_state: Any) -> None:
    if orm_execute_state.is_insert or orm_execute_state.is_update or orm_execute_state.is_delete:
        raise ReadOnlySessionError("this session is for reading only: no INSERT, UPDATE or DELETE through it")


class Database:
    """Owns the engine and hands out sessions; one per app (and one per scheduler process)."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # Built once (not per call): readers are handed out on every page view.
        self._readers = sessionmaker(self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False)
        event.listen(self._readers, "before_flush", _refuse_flush)
        event.listen(self._readers, "do_orm_execute", _refuse_dml)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def reader(self) -> Session:
        """A session for reading only: on SQLite it never takes the write lock. A write through it
        raises ReadOnlySessionError on every backend, rather than failing only on SQLite under load."""
        return self._readers()

    def dispose(self) -> None:
        self.engine.dispose()


def read_rows(session: Session, statement: Any, params: dict[str, Any]) -> prepared.Rows:
    """Run a prebuilt Core SELECT on the session's connection as a prepared read (``portal.prepared``), as plain
    rows: for hot reads, where SQLAlchemy's execution path costs more than the statement. Whatever the session
    holds unwritten is written first (as the ORM's autoflush would), so the rows are what an ORM query would
    have read."""
    session.flush()
    return prepared.read(session.connection(), statement, params)


def upsert_insert(dialect: str):
    """The dialect's INSERT construct, the one with ON CONFLICT (the portal runs on PostgreSQL and SQLite)."""
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ValueError(f"the portal runs on PostgreSQL or SQLite, not {dialect}")
