"""Engine settings per backend and the types every model shares."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import DateTime, Select, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import Pool
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC (a callable for column defaults)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend.

    SQLite has no time zones, so values are stored as naive UTC there and made
    aware again on the way out; PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def configure_engine_options(app: Flask) -> None:
    """Add connect timeouts: SQLite waits for the write lock, PostgreSQL fails fast."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    options: dict[str, Any] = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args: dict[str, Any] = dict(options.get("connect_args") or {})
    if url.get_backend_name() == "sqlite":
        # Several gunicorn workers write to one file: wait for the lock rather than
        # failing with "database is locked".
        connect_args.setdefault("timeout", app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000)
        # A file cannot drop a connection: pinging it before each checkout only cost a query.
        options["pool_pre_ping"] = False
    elif url.get_backend_name() == "postgresql":
        # A ping on every checkout was a round trip per request; connections idle for a while
        # are pinged instead (_ping_after_idle), and a failure on a busy one invalidates the pool.
        options["pool_pre_ping"] = False
        connect_args.setdefault("connect_timeout", app.config["DATABASE_CONNECT_TIMEOUT"])
        options.setdefault("pool_size", 5)
        options.setdefault("max_overflow", 10)
        options.setdefault("pool_timeout", app.config["DATABASE_CONNECT_TIMEOUT"])
    options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


# A server connection that was used this recently is taken to be alive; an older one is pinged
# when it is checked out. Under load every connection is younger; after a quiet spell (when a
# server restart or a dropped idle connection goes unnoticed) the first request pays the ping.
PING_AFTER_IDLE_SECONDS = 2.0
_IDLE_SINCE = "trikchi_idle_since"


@event.listens_for(Pool, "checkin")
def _note_idle(dbapi_connection: Any, record: Any) -> None:
    if (
        record is not None
        and dbapi_connection is not None
        and not isinstance(dbapi_connection, sqlite3.Connection)
    ):
        record.info[_IDLE_SINCE] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_after_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection that sat idle (SQLAlchemy's pessimistic disconnect handling, by age).

    A failed ping raises ``DisconnectionError``: the pool replaces the connection and tries again.
    """
    idle_since = record.info.pop(_IDLE_SINCE, None)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as error:
        raise DisconnectionError("the connection was lost while idle") from error


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; foreign keys are off by default in SQLite."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


# One open lock file per (process, database file): flock locks belong to open file descriptions.
_write_locks: dict[tuple[int, str], int] = {}


@contextmanager
def serialized_writes(engine: Engine) -> Iterator[None]:
    """On an SQLite file, hold this host's one writer slot; elsewhere, nothing.

    SQLite allows one writer at a time. Without this, the others poll for its lock in
    SQLite's busy handler, sleeping 1, 2, 5 … 100 ms between tries — idle CPUs and a long
    tail on the hottest write (refresh). Queued on an ``flock`` of a file beside the
    database, each writer starts the moment the previous one commits. The busy timeout
    still covers writers that do not take the slot.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    key = (os.getpid(), database)
    descriptor = _write_locks.get(key)
    if descriptor is None:
        descriptor = os.open(database + ".write-lock", os.O_RDWR | os.O_CREAT, 0o600)
        _write_locks[key] = descriptor
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


class HotRead:
    """A SELECT on the hottest path, run on a pooled DBAPI connection: its first row, or None.

    For a read made on every authenticated request, SQLAlchemy's per-execution work
    (a ``Connection``, an execution context, a result object, the reset on return) cost
    more than the query itself (README, Performance). Here the statement is compiled
    by SQLAlchemy once per dialect, executed on the pool's driver connection (PostgreSQL
    in autocommit: no BEGIN or ROLLBACK round trip), its values converted by the
    columns' own types, and driver errors raised as SQLAlchemy's (a lost connection is
    invalidated, with the rest of the pool), so the error handlers treat them alike.
    Bind values are passed as they are: ints and strings only.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, list[Any]]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None, list[Any]]:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            sql = self.statement.compile(dialect=dialect)
            order = tuple(sql.positiontup) if sql.positional and sql.positiontup else None
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.selected_columns
            ]
            compiled = self._compiled[dialect.name] = (str(sql), order, processors)
        return compiled

    def first(self, engine: Engine, params: dict[str, Any]) -> tuple[Any, ...] | None:
        dialect = engine.dialect
        sql, order, processors = self._for(dialect)
        args: Any = tuple(params[name] for name in order) if order is not None else params
        autocommit = dialect.name == "postgresql"
        connection = None
        try:
            connection = engine.raw_connection()
            driver = connection.driver_connection
            if autocommit:
                driver.autocommit = True
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(sql, args)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            finally:
                if autocommit and not getattr(driver, "closed", False):
                    driver.autocommit = False
        except dialect.loaded_dbapi.Error as error:
            lost = connection is not None and dialect.is_disconnect(error, connection.dbapi_connection, None)
            if lost:
                connection.invalidate(error)
                engine.dispose(close=False)  # the others are as dead: new connections from now on
            raise DBAPIError.instance(
                sql, None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
            ) from error
        finally:
            if connection is not None:
                connection.close()
        if row is None:
            return None
        return tuple(
            value if process is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
