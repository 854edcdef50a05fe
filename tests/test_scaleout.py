"""Two instances on one PostgreSQL and one Redis; a PostgreSQL outage and recovery."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import PASSWORD, migrate_to_head
from tests.support.live import LiveServer
from tests.support.postgres import ThrowawayPostgres, find_bindir

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]


def env_for(database_url: str, redis_url: str, tmp_path) -> dict[str, str]:
    return {
        "TRIKCHI_CONFIG": "testing",
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "TRIKCHI_TEST_LOGDIR": str(tmp_path),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refresh(server: LiveServer, browser: requests.Session) -> requests.Response:
    csrf = browser.cookies.get("csrf_refresh_token")
    return browser.post(server.url + "/auth/refresh_token", headers={"X-CSRF-TOKEN": csrf}, timeout=30)


@pytest.fixture
def two_instances(database_url, redis_url, tmp_path):
    env = env_for(database_url, redis_url, tmp_path)
    first, second = LiveServer(env, workers=2), LiveServer(env, workers=2)
    try:
        yield first.wait_ready(), second.wait_ready(), database_url
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_session_moves_between_instances_and_revocation_is_shared(backend, two_instances):
    a, b, database_url = two_instances
    browser = requests.Session()
    body = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
    assert browser.post(a.url + "/auth/register", json=body, timeout=30).status_code == 201
    login = browser.post(
        a.url + "/auth/login", json={"email": body["email"], "password": PASSWORD}, timeout=30
    )
    assert login.status_code == 200
    assert (
        browser.get(b.url + "/auth/me", headers=bearer(login.json()["access_token"]), timeout=30).status_code
        == 200
    )

    # Started on A, refreshed on B.
    on_b = refresh(b, browser)
    assert on_b.status_code == 200

    # A thief copies the cookie; the customer rotates on A; the replay on B (after the
    # grace window) revokes the session everywhere.
    stolen = requests.Session()
    stolen.cookies.update(browser.cookies)
    assert refresh(a, browser).status_code == 200
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:  # the grace window has passed
            conn.execute(text("UPDATE refresh_tokens SET used_at = used_at - interval '60 seconds'"))
    finally:
        engine.dispose()
    assert refresh(b, stolen).status_code == 401
    assert refresh(a, browser).status_code == 401
    assert (
        browser.get(a.url + "/auth/me", headers=bearer(on_b.json()["access_token"]), timeout=30).status_code
        == 401
    )

    # Logout on A is honoured on B.
    login = browser.post(
        a.url + "/auth/login", json={"email": body["email"], "password": PASSWORD}, timeout=30
    )
    access = login.json()["access_token"]
    csrf = browser.cookies.get("csrf_refresh_token")
    copy = requests.Session()
    copy.cookies.update(browser.cookies)
    assert browser.post(a.url + "/auth/logout", headers={"X-CSRF-TOKEN": csrf}, timeout=30).status_code == 200
    assert refresh(b, copy).status_code == 401
    assert copy.get(b.url + "/auth/me", headers=bearer(access), timeout=30).status_code == 401


def test_postgresql_outage_is_503_within_bounded_time_and_recovers(tmp_path, redis_url):
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found")
    postgres = ThrowawayPostgres(bindir).start()
    server = None
    try:
        url = postgres.create_database("outage")
        migrate_to_head(url)
        server = LiveServer(env_for(url, redis_url, tmp_path), workers=2).wait_ready()
        browser = requests.Session()
        body = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        assert browser.post(server.url + "/auth/register", json=body, timeout=30).status_code == 201
        login = browser.post(server.url + "/auth/login", json={"email": body["email"], "password": PASSWORD})
        access = login.json()["access_token"]

        postgres.stop_server()
        calls = [
            ("GET", "/readyz", {}),
            ("POST", "/auth/login", {"json": {"email": body["email"], "password": PASSWORD}}),
            ("GET", "/auth/me", {"headers": bearer(access)}),
            ("POST", "/auth/register", {"json": {**body, "email": "bob@example.com"}}),
        ]
        for method, path, kwargs in calls * 2:  # twice: every pooled connection is dead too
            started = time.monotonic()
            response = requests.request(method, server.url + path, timeout=30, **kwargs)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.status_code, response.text)
            assert response.json()["code"] == 503 and response.headers["Retry-After"]
            assert elapsed < 10, (path, elapsed)
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200

        postgres.start_server()
        assert requests.get(server.url + "/readyz", timeout=30).status_code == 200
        assert requests.get(server.url + "/auth/me", headers=bearer(access), timeout=30).status_code == 200
        again = requests.post(server.url + "/auth/login", json={"email": body["email"], "password": PASSWORD})
        assert again.status_code == 200
    finally:
        if server is not None:
            server.stop()
        postgres.stop()
