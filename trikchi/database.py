"""Engine settings per backend and the types every model shares."""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import DateTime, Select, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)


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


# A server connection that was used this recently is taken to be alive; an older one is pinged
# when it is checked out. Under load every connection is younger (reused within milliseconds);
# a server cannot stop and start again within this time, so a restart, or an idle connection
# dropped by a proxy, is always met by a ping and the connection replaced. (2 s was too long:
# a restart between two requests of a quiet worker went unnoticed and answered 503.)
PING_AFTER_IDLE_SECONDS = 0.25
_PG_IDLE = 0  # libpq's PQTRANS_IDLE: connected, no transaction, no statement running
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


def _sqlite_file(engine: Engine) -> str | None:
    """The database file of an SQLite engine; None for another backend or an in-memory database."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    return database if database and database != ":memory:" else None


@contextmanager
def serialized_writes(engine: Engine) -> Iterator[None]:
    """On an SQLite file, hold this host's one writer slot; elsewhere, nothing.

    SQLite allows one writer at a time. Without this, the others poll for its lock in
    SQLite's busy handler, sleeping 1, 2, 5 … 100 ms between tries — idle CPUs and a long
    tail on the hottest write (refresh). Queued on an ``flock`` of a file beside the
    database, each writer starts the moment the previous one commits. The busy timeout
    still covers writers that do not take the slot.
    """
    database = _sqlite_file(engine)
    if database is None:
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


# SQLite copies the write-ahead log back into the database file (a checkpoint) in the commit
# that takes the log past 1,000 pages: inside the write slot, where its two fsyncs (7 ms on
# this machine) stalled every other writer — a fifth of the slot's time under a refresh load,
# and the refresh p99. Each process instead checkpoints after every this many commits in the
# slot, once it has left the slot: PASSIVE, so writers go on meanwhile, and often enough (~4
# pages per refresh) that the log stays short of SQLite's own threshold, which remains as the
# safety net for the other writes.
SQLITE_CHECKPOINT_EVERY = 100
_slot_commits = itertools.count(1)


def _checkpoint_now() -> bool:
    """Whether this commit in the write slot is the one after which this process checkpoints."""
    return next(_slot_commits) % SQLITE_CHECKPOINT_EVERY == 0


def _checkpoint(connection: Any) -> None:
    """A PASSIVE checkpoint on ``connection``. Never an error for the request: its transaction is
    committed (a refresh that failed here would leave its client holding a spent token), and
    SQLite's own checkpoint still bounds the log."""
    try:
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            cursor.close()
    except sqlite3.Error as error:
        log.warning("SQLite checkpoint failed; SQLite's own checkpoint will run: %s", error)


class HotStatement:
    """A statement of a hot path, compiled by SQLAlchemy once per dialect, run on a driver cursor.

    On the two hottest paths (the guard's read on every authenticated request, the
    refresh), SQLAlchemy's per-execution work — a ``Connection``, an execution context,
    a result object — cost more than the statements themselves (README, Performance).
    Here the SQL is SQLAlchemy's, compiled once; parameters go through the bound
    columns' own types, and so do the values read back. Use it with ``driver_cursor``.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return compiled

    def execute(self, cursor: Any, dialect: Dialect, params: dict[str, Any] | None = None) -> Any:
        """Run on ``cursor`` (from ``driver_cursor``); the cursor, for ``rowcount``."""
        compiled = self._for(dialect)
        cursor.execute(compiled.sql, compiled.parameters(params or {}))
        return cursor

    def first(self, cursor: Any, dialect: Dialect, params: dict[str, Any] | None = None) -> Any:
        """The first row (a named tuple of converted values), or None."""
        compiled = self._for(dialect)
        cursor.execute(compiled.sql, compiled.parameters(params or {}))
        row = cursor.fetchone()
        return None if row is None else compiled.row(row)


class _Compiled:
    """One statement as one dialect runs it: SQL text, parameter order and conversions."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        binds = compiled.binds.items()  # by the name the SQL gives each
        # Literal values the statement carries itself (``rotation_count + 1``).
        self.defaults = {name: bind.value for name, bind in binds if not bind.required}
        self.bind_processors = {
            name: processor
            for name, bind in binds
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        # What a row holds: a SELECT's columns, or what an UPDATE/INSERT returns (RETURNING).
        columns = statement.selected_columns if isinstance(statement, Select) else statement.exported_columns
        processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self.result_processors = [(i, process) for i, process in enumerate(processors) if process is not None]
        self.row_type = namedtuple("Row", [column.key for column in columns], rename=True)  # type: ignore[misc]  # noqa: PYI024

    def parameters(self, params: dict[str, Any]) -> Any:
        values = {**self.defaults, **params} if self.defaults else dict(params)
        for key, process in self.bind_processors.items():
            if key in values:
                values[key] = process(values[key])
        return values if self.order is None else tuple(values[key] for key in self.order)

    def row(self, row: tuple[Any, ...]) -> Any:
        values = list(row)
        for i, process in self.result_processors:
            values[i] = process(values[i])
        return self.row_type._make(values)


class _Held:
    """A thread's own connection: the process and engine generation it was opened in, and when it
    was last used (PostgreSQL pings one that sat idle)."""

    __slots__ = ("__weakref__", "close", "connection", "generation", "idle_since", "pid")

    def __init__(self, connection: Any, proxy: Any, generation: int) -> None:
        self.connection = connection
        self.generation = generation
        self.pid = os.getpid()
        self.idle_since = time.monotonic()
        # Closed when the thread lets it go (it ended, or replaced it), never by another process.
        self.close = weakref.finalize(self, _close_in, self.pid, proxy)
        self.close.atexit = False


class _ThreadConnections:
    """One driver connection per thread for the hot statements, kept outside the pool.

    For an SQLite file, and for PostgreSQL's autocommit hot statements (the guard's read,
    the rotation). A checkout from SQLAlchemy's pool and its return (a queue under a
    lock, a proxy object, the reset, the idle-ping and check-in listeners) cost more
    than the guard's whole query on SQLite and a tenth of ``GET /auth/me`` on PostgreSQL
    (README, Performance). Each thread keeps one, opened through the pool (the same
    connect settings) and then detached from it; a PostgreSQL one is in autocommit for
    good. It is used by its own thread only, with nothing open between uses (an SQLite
    transaction left open is rolled back, as the pool's reset does; a PostgreSQL one not
    idle is dropped). One that raised a driver error is closed and replaced on the next
    use; a PostgreSQL one that sat idle for ``PING_AFTER_IDLE_SECONDS`` is pinged first,
    as the pool does with its own. When the engine is disposed, each thread closes its
    connection and opens a new one at its next use (a connection is only ever closed by
    its own thread: another may be running a statement on it). When a thread ends
    (``flask run`` starts one per request) its connection is closed with it; a forked
    process opens its own and never closes one it inherited.
    """

    def __init__(self, engine: Engine) -> None:
        self._local = threading.local()
        self._generation = 0
        self._ping = engine.dialect.name == "postgresql"
        event.listen(engine, "engine_disposed", self.close_all)

    def get(self, engine: Engine) -> Any:
        """This thread's driver connection to ``engine``'s database."""
        held = getattr(self._local, "held", None)
        if held is not None and held.pid == os.getpid():
            if held.generation == self._generation and (
                not self._ping or _alive_after_idle(engine.dialect, held.connection, held.idle_since)
            ):
                return held.connection
            self._local.held = None
            held.close()
        try:
            proxy = engine.raw_connection()
        except engine.dialect.loaded_dbapi.Error as error:  # as Engine.connect raises it
            raise _as_sqlalchemy_error(error, engine.dialect, None) from error
        connection = proxy.driver_connection
        proxy.detach()  # this thread's for good: closing it closes it, the pool never sees it again
        if self._ping:
            connection.autocommit = True
        self._local.held = _Held(connection, proxy, self._generation)
        return connection

    def used(self) -> None:
        """This thread's connection was just used (it counts as alive for a while)."""
        self._local.held.idle_since = time.monotonic()

    def drop(self) -> None:
        """Close this thread's connection (it raised): the next use opens another."""
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held.close()  # a no-op for one inherited from a parent process (``_close_in``)

    def close_all(self, _engine: Engine | None = None) -> None:
        """The engine is being disposed: this thread's connection is closed now, every other
        thread's by that thread at its next use."""
        self._generation += 1
        self.drop()


def _close_in(pid: int, proxy: Any) -> None:
    if os.getpid() != pid:  # inherited by a fork: the parent's to close
        return
    try:
        proxy.close()
    except Exception as error:  # closing is best effort: the connection is forgotten either way
        log.warning("closing a connection failed: %s", error)


_thread_connections: weakref.WeakKeyDictionary[Engine, _ThreadConnections] = weakref.WeakKeyDictionary()
_thread_connections_lock = threading.Lock()


def _thread_connections_of(engine: Engine) -> _ThreadConnections:
    connections = _thread_connections.get(engine)
    if connections is None:
        with _thread_connections_lock:
            connections = _thread_connections.get(engine)
            if connections is None:
                connections = _thread_connections[engine] = _ThreadConnections(engine)
    return connections


@contextmanager
def driver_cursor(
    engine: Engine, *, transaction: bool, serialized: bool = False
) -> Iterator[tuple[Any, Dialect]]:
    """A cursor on a driver connection, and the dialect, for ``HotStatement``s.

    The connection is this thread's own (``_ThreadConnections``) on an SQLite file and
    for PostgreSQL's autocommit statements; otherwise a pooled one. ``transaction``: the
    statements are one transaction, committed when the block ends and rolled back if it
    raises. Otherwise reads, and on PostgreSQL in autocommit (no BEGIN or ROLLBACK round
    trip), where a single statement that writes commits by itself (the refresh
    rotation); on SQLite a write needs ``transaction``. ``serialized`` (SQLite files):
    the statements and the commit hold the write slot (``serialized_writes``). Driver
    errors are raised as SQLAlchemy's, so the error handlers treat them alike; a
    thread's connection that raised one is replaced, and a lost pooled connection is
    invalidated with the rest of the pool (they are as dead), as SQLAlchemy does.
    """
    if _sqlite_file(engine) is not None:
        connections = _thread_connections_of(engine)
        connection = connections.get(engine)
        dropped = False
        try:
            # ``serialized``: the statements and the commit hold SQLite's write slot; the
            # checkpoint that may follow does not.
            with serialized_writes(engine) if serialized else nullcontext():
                with _statements(connection, transaction=transaction) as cursor:
                    yield cursor, engine.dialect
            if serialized and transaction and _checkpoint_now():
                _checkpoint(connection)
        except sqlite3.Error as error:
            dropped = True
            connections.drop()  # whatever state it is in, the next use starts afresh
            raise _as_sqlalchemy_error(error, engine.dialect, connection) from error
        finally:
            # Nothing stays open between uses: a write made without ``transaction`` (or left
            # by an exception) is rolled back, as the pool's reset does on a pooled connection.
            if not dropped and connection.in_transaction:
                try:
                    connection.rollback()
                except sqlite3.Error:
                    connections.drop()
        return
    dialect = engine.dialect
    if not transaction and dialect.name == "postgresql":
        # Autocommit statements on this thread's own connection (in autocommit for good).
        connections = _thread_connections_of(engine)
        connection = connections.get(engine)
        try:
            with _statements(connection, transaction=False) as cursor:
                yield cursor, dialect
        except dialect.loaded_dbapi.Error as error:
            connections.drop()  # the next use starts afresh
            raise _as_sqlalchemy_error(error, dialect, connection) from error
        finally:
            if connection.closed or connection.pgconn.transaction_status != _PG_IDLE:
                connections.drop()  # interrupted mid-statement: never reused in that state
            else:
                connections.used()
        return
    connection = None
    try:
        connection = engine.raw_connection()
        with _statements(connection, transaction=transaction) as cursor:
            yield cursor, dialect
    except dialect.loaded_dbapi.Error as error:
        wrapped = _as_sqlalchemy_error(error, dialect, connection.dbapi_connection if connection else None)
        if connection is not None and wrapped.connection_invalidated:
            connection.invalidate(error)
            engine.dispose(close=False)  # the others are as dead: new connections from now on
        raise wrapped from error
    finally:
        if connection is not None:
            connection.close()  # back to the pool, whose reset rolls back anything left open


def _as_sqlalchemy_error(error: Exception, dialect: Dialect, dbapi_connection: Any) -> DBAPIError:
    """A driver error as SQLAlchemy raises it (``OperationalError``, …), marked when it means the
    connection is lost, so the error handlers treat errors from hot statements alike."""
    lost = dialect.is_disconnect(error, dbapi_connection, None)
    return DBAPIError.instance(
        None, None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )


@contextmanager
def _statements(connection: Any, *, transaction: bool) -> Iterator[Any]:
    """A cursor of ``connection``; with ``transaction``, committed after the block or rolled back."""
    cursor = connection.cursor()
    try:
        yield cursor
    except BaseException:
        if transaction:
            connection.rollback()  # before a write slot around this is given up
        raise
    finally:
        cursor.close()
    if transaction:
        connection.commit()
