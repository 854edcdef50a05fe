"""Fixtures: apps on real SQLite files and a real PostgreSQL server, clients, auth helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from tests.support.live import LiveServer
from tests.support.postgres import ThrowawayPostgres, find_bindir
from tests.support.redis import ThrowawayRedis
from tests.support.webhooks import Receiver
from trikchi import create_app
from trikchi.extensions import db
from trikchi.i18n import compile_catalogs

# The .mo catalogs are built, not committed (`make translations` does the same).
compile_catalogs()

PASSWORD = "correct horse battery staple"
# Fixtures shared by the browser tests: the reference page's origin and Chromium.
pytest_plugins = ("tests.support.web",)
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]


def make_app(database_url: str, **overrides: object) -> Flask:
    """A testing app on ``database_url`` (cheap argon2, debug off, limits in memory)."""
    settings = {
        "TRIKCHI_CONFIG": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        **overrides,
    }
    return create_app(settings)


def migrate_to_head(database_url: str) -> None:
    """Build the schema the way users do: ``flask db upgrade``."""
    app = make_app(database_url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started PostgreSQL server, stopped afterwards, or a skip (a failure under CI) saying why."""
    bindir = find_bindir()
    if bindir is None:
        require_or_skip(
            "PostgreSQL server binaries not found (install postgresql-15 or set TRIKCHI_PG_BINDIR)"
        )
    server = ThrowawayPostgres(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server for the whole run."""
    yield from _throwaway_postgres()


@pytest.fixture
def private_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of the test's own, which it may stop and start (restarts, outages)."""
    yield from _throwaway_postgres()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 that records what it is sent (tests/support/webhooks.py)."""
    server = Receiver().start()
    yield server
    server.stop()


def require_or_skip(message: str) -> None:
    """Skip with the reason; under CI a missing component is a failure, never a silent pass."""
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run these tests)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ThrowawayRedis]:
    """A Redis server for the whole run (rate limits shared between processes)."""
    binary = ThrowawayRedis.find()
    if binary is None:
        require_or_skip("redis-server not found (apt-get install redis-server)")
    server = ThrowawayRedis(binary)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: ThrowawayRedis) -> str:
    """The Redis URL, with every counter forgotten."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server for the whole run."""
    from tests.support.smtp import SMTPServer

    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_app_factory(database_url: str, smtp_server):
    """Apps that mail through the real SMTP server, with links to ``tests.support.mails.FRONTEND``
    and the real outbox worker running beside them (a thread, as `flask worker` runs it).

    At the end of the test each worker stops, then its app's engine is disposed: a test must not
    dispose it itself while the worker may hold a connection (it would outlive its pool).
    """
    from tests.support.mails import FRONTEND
    from tests.support.outbox import background_worker

    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        app = make_app(
            database_url,
            **{
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": smtp_server.port,
                "MAIL_USE_TLS": False,
                "FRONTEND_URL": FRONTEND,
                **overrides,
            },
        )
        apps.append(app)
        stack.enter_context(background_worker(app))
        return app

    with ExitStack() as stack:
        yield make
    for app in apps:  # the worker's connections, once it has stopped
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def racing_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """gunicorn with 4 workers on the test database, rate limits off: requests race the database."""
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": database_url,
            "TRIKCHI_TEST_LOGDIR": str(tmp_path),
            "RATELIMIT_ENABLED": "false",  # these tests race the database, not the limiter
        },
        workers=4,
    ).wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("template") / "trikchi.db"
    migrate_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database(postgres_server: ThrowawayPostgres) -> str:
    """A migrated PostgreSQL database; tests empty it after use."""
    url = postgres_server.create_database("trikchi_test")
    migrate_to_head(url)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run."""
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of ``backend`` for one test."""
    if backend == "sqlite":
        path = tmp_path / "trikchi.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_database")
    yield url
    engine = create_engine(url)
    with engine.begin() as conn:
        # Every table of the models (an app built them all by now), whatever features add.
        tables = ", ".join(table.name for table in db.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The app under test on a fresh database."""
    app = make_app(database_url)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client that keeps cookies like a browser."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    """The app's CLI runner."""
    return app.test_cli_runner()


class AuthActions:
    """Drive the auth endpoints the way a browser frontend does."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.access_token: str | None = None
        self.csrf_token: str | None = None

    def register(self, email: str = "ada@example.com", password: str = PASSWORD, name: str = "Ada"):
        return self.client.post("/auth/register", json={"name": name, "email": email, "password": password})

    def login(self, email: str = "ada@example.com", password: str = PASSWORD):
        response = self.client.post("/auth/login", json={"email": email, "password": password})
        self._remember(response)
        return response

    def signup(self, email: str = "ada@example.com", password: str = PASSWORD):
        """Register and log in; returns the login response."""
        assert self.register(email, password).status_code == 201
        response = self.login(email, password)
        assert response.status_code == 200, response.json
        return response

    def csrf_cookie(self) -> str | None:
        cookie = self.client.get_cookie("csrf_refresh_token")
        return cookie.value if cookie else None

    def refresh_cookie(self) -> str | None:
        cookie = self.client.get_cookie("refresh_token")
        return cookie.value if cookie else None

    def refresh(self, csrf: str | None | bool = True):
        headers = {}
        if csrf is True:
            csrf = self.csrf_cookie()
        if csrf:
            headers["X-CSRF-TOKEN"] = csrf
        response = self.client.post("/auth/refresh_token", headers=headers)
        self._remember(response)
        return response

    def logout(self, csrf: str | None | bool = True):
        headers = {}
        if csrf is True:
            csrf = self.csrf_cookie()
        if csrf:
            headers["X-CSRF-TOKEN"] = csrf
        return self.client.post("/auth/logout", headers=headers)

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.access_token}"}

    def me(self, token: str | None = None):
        return self.client.get("/auth/me", headers=self.headers(token))

    def _remember(self, response) -> None:
        if response.status_code == 200:
            self.access_token = response.json["access_token"]
            self.csrf_token = response.json["csrf_token"]


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Auth helper bound to the default client."""
    return AuthActions(client)


@pytest.fixture
def make_auth(app: Flask):
    """Auth helpers for extra clients (another device, another user)."""
    return lambda: AuthActions(app.test_client())
