"""Engine settings per backend and the types every model shares.

Connections come from SQLAlchemy's pool only (a ``QueuePool`` for a file or a server): this
module sets its options and listeners — SQLite's pragmas and busy timeout, PostgreSQL's
timeouts and the ping of connections that sat idle, a fresh pool in a forked process — and
holds no connection of its own. What it adds is about SQLite's one writer at a time: the write
lock taken first where a read decides a write (``lock_for_writing``), and a queue for the
refresh rotation's writers (``serialized_writes``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import DateTime, event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session
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


# The table arguments of a table whose integer ids leave the service (user ids in tokens, links and
# other services; event ids in webhooks; …): SQLite's AUTOINCREMENT, so that a new row's id is
# larger than any the table ever held. Without it SQLite hands the largest id + 1 out again once
# that row is deleted. PostgreSQL's sequences never go back anyway.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


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
        # are pinged instead (ping_idle_connections), and a failure on a busy one invalidates the pool.
        options["pool_pre_ping"] = False
        connect_args.setdefault("connect_timeout", app.config["DATABASE_CONNECT_TIMEOUT"])
        options.setdefault("pool_size", 5)
        options.setdefault("max_overflow", 10)
        options.setdefault("pool_timeout", app.config["DATABASE_CONNECT_TIMEOUT"])
    options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def configure_engine(engine: Engine) -> None:
    """The pool listeners of an engine: a new pool in a forked process; PostgreSQL's idle ping."""
    _engines.add(engine)
    ping_idle_connections(engine)


# A forked process (a gunicorn worker of an app loaded before the fork, a test) must not use the
# connections it inherited: SQLAlchemy's recipe for os.fork, ``dispose(close=False)`` in the child,
# which gives the child an empty pool and leaves the parent's connections to the parent.
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _new_pools_in_child() -> None:
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_new_pools_in_child)


# A server connection that was used this recently is taken to be alive; an older one is pinged
# when it is checked out. Under load every connection is younger (reused within milliseconds);
# a server cannot stop and start again within this time, so a restart, or an idle connection
# dropped by a proxy, is always met by a ping and the connection replaced. (2 s was too long:
# a restart between two requests of a quiet worker went unnoticed and answered 503.)
PING_AFTER_IDLE_SECONDS = 0.25
_IDLE_SINCE = "trikchi_idle_since"


def ping_idle_connections(engine: Engine) -> None:
    """On a PostgreSQL engine, ping connections that sat idle before handing them out.

    SQLAlchemy's pessimistic disconnect handling (its dialect's ``do_ping``) by age instead
    of on every checkout (``pool_pre_ping``, a round trip per request). Only server
    connections can be dropped: an SQLite engine gets no listener, and pays nothing per
    checkout. A failed ping raises ``DisconnectionError``: the pool replaces the connection
    and tries again.
    """
    if engine.dialect.name != "postgresql":
        return
    dialect = engine.dialect

    def ping_after_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is not None and not _alive_after_idle(dialect, dbapi_connection, idle_since):
            raise DisconnectionError("the connection was lost while idle")

    event.listen(engine, "checkin", _note_idle)
    event.listen(engine, "checkout", ping_after_idle)


def _alive_after_idle(dialect: Dialect, dbapi_connection: Any, idle_since: float) -> bool:
    """Whether a connection last used at ``idle_since`` is alive: taken to be if used within
    ``PING_AFTER_IDLE_SECONDS``, pinged otherwise."""
    if time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return True
    try:
        dialect.do_ping(dbapi_connection)
    except Exception:  # the server went away, or dropped the connection, while it sat idle
        return False
    return True


def _note_idle(dbapi_connection: Any, record: Any) -> None:
    if record is not None and dbapi_connection is not None:
        record.info[_IDLE_SINCE] = time.monotonic()


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
    """On an SQLite file, wait for this host's other writers in turn; elsewhere, nothing.

    Written around a limit of Python's sqlite3: a writer that finds SQLite's write lock taken
    waits in SQLite's default busy handler, which sleeps 1, 2, 5 … 100 ms between tries —
    idle CPUs and a long tail — and the driver does not wrap ``sqlite3_busy_handler`` to wait
    any other way (ghaering/pysqlite#96, coleifer/pysqlite3#80). Queued on an ``flock`` of a
    file beside the database, the next writer starts the moment the previous one commits.
    Only the hottest write, the refresh rotation, queues here (SQLite, 4 workers, 16
    connections: 1,206 -> 1,338 refreshes/s, p99 36 -> 19 ms); other writers wait in the
    busy handler, up to the busy timeout.
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


def lock_for_writing(session: Session) -> None:
    """Make the session's transaction hold the database's write lock from here to its end, on SQLite.

    For a read that decides a write (the count of a user's ways to sign in before one is
    removed): on PostgreSQL ``SELECT … FOR UPDATE`` locks the rows read, and this does
    nothing; SQLite has no row locks, and its driver begins a transaction at the first write
    only, so two such steps could both read before either writes. ``BEGIN IMMEDIATE`` takes
    SQLite's write lock first (a second writer waits, up to the busy timeout); an SQLite
    transaction that has written already holds it.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    if not connection.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def connect_for_reads(engine: Engine) -> Connection:
    """A connection from the pool for statements that need no transaction around them.

    On PostgreSQL in autocommit (SQLAlchemy's ``isolation_level="AUTOCOMMIT"``, reset when the
    connection goes back to the pool): a read without the round trips of BEGIN and of the
    pool's ROLLBACK. SQLite's driver runs a read outside a transaction anyway, and switching
    its isolation level costs a PRAGMA each way: its connection is left as it is.
    """
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection.execution_options(isolation_level="AUTOCOMMIT")
    return connection
