"""SPEC §7: a key rotation with two gunicorn instances on one PostgreSQL signs nobody out.

The operator runs ``flask keys add``, ``rotate`` and ``retire`` as a separate process
(as on a real host); both instances follow each step within ``KEYS_RELOAD_SECONDS``
without a restart, tokens of the previous key keep verifying until it is retired,
and the customer's session refreshes at every step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import jwt
import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import PASSWORD
from tests.support.live import ROOT, LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

RELOAD_SECONDS = 2
JWKS_MAX_AGE = 10
# How long an instance may take to follow a step: the reload interval and room for a busy host.
FOLLOW_SECONDS = RELOAD_SECONDS + 10


def env_for(database_url: str, tmp_path) -> dict[str, str]:
    return {
        "TRIKCHI_CONFIG": "testing",
        "DATABASE_URL": database_url,
        "JWT_ALGORITHM": "ES256",
        "JWT_ISSUER": "https://auth.trikchi.test",
        "SIGNING_KEYS_SECRET": "rotation-test-key-encryption-secret-" + "k" * 16,
        "KEYS_RELOAD_SECONDS": str(RELOAD_SECONDS),
        "JWKS_MAX_AGE_SECONDS": str(JWKS_MAX_AGE),
        "RATELIMIT_ENABLED": "false",
        "TRIKCHI_TEST_LOGDIR": str(tmp_path),
    }


def flask_keys(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``flask keys …`` as an operator runs it on a host: its own process, the same settings."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "keys", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "SECRET_KEY": "live-secret-" + "s" * 32,
            "JWT_SECRET_KEY": "live-jwt-" + "j" * 32,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def published(server: LiveServer) -> set[str]:
    return {
        key["kid"] for key in requests.get(server.url + "/.well-known/jwks.json", timeout=30).json()["keys"]
    }


def me(server: LiveServer, token: str) -> int:
    return requests.get(
        server.url + "/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).status_code


class Browser:
    """A customer's browser: one session, refreshed against either instance."""

    def __init__(self, server: LiveServer) -> None:
        self.http = requests.Session()
        body = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        assert self.http.post(server.url + "/auth/register", json=body, timeout=30).status_code == 201
        login = self.http.post(
            server.url + "/auth/login", json={"email": body["email"], "password": PASSWORD}, timeout=30
        )
        assert login.status_code == 200
        self.access_token = login.json()["access_token"]

    def refresh(self, server: LiveServer) -> str:
        csrf = self.http.cookies.get("csrf_refresh_token")
        response = self.http.post(
            server.url + "/auth/refresh_token", headers={"X-CSRF-TOKEN": csrf}, timeout=30
        )
        assert response.status_code == 200, response.text  # no session is lost at any step
        self.access_token = response.json()["access_token"]
        return self.access_token


def wait_until(condition, seconds: float) -> float:
    """Poll ``condition`` for up to ``seconds``; return how long it took (fail if it never held)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.2)
    return time.monotonic() - start


@pytest.fixture
def instances(database_url, tmp_path):
    env = env_for(database_url, tmp_path)
    first, second = LiveServer(env, workers=2), LiveServer(env, workers=2)
    try:
        yield first.wait_ready(), second.wait_ready(), env
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_rotation_across_two_instances_signs_nobody_out(backend, instances, database_url):
    a, b, env = instances
    browser = Browser(a)
    first_kid = kid_of(browser.access_token)  # created at the first request
    assert kid_of(browser.refresh(b)) == first_kid
    old_token = browser.access_token

    added = flask_keys(env, "add")
    added_by = time.monotonic()  # the key was created before this
    assert added.returncode == 0, added.stderr
    new_kid = next(k for k in flask_keys(env, "list").stdout.split() if k != first_kid and len(k) == 32)
    # Published everywhere before it signs anywhere.
    wait_until(lambda: published(a) == published(b) == {first_kid, new_kid}, FOLLOW_SECONDS)
    assert kid_of(browser.refresh(a)) == first_kid

    early = flask_keys(env, "rotate")
    assert early.returncode != 0 and "wait" in early.stderr  # verifiers may not have the key yet
    # The publication wait (cache max-age + worker reload), counted from the key's creation.
    time.sleep(max(0.0, added_by + JWKS_MAX_AGE + RELOAD_SECONDS + 0.5 - time.monotonic()))
    rotated = flask_keys(env, "rotate")
    assert rotated.returncode == 0, rotated.stderr

    # Both instances (every worker) sign with the new key within KEYS_RELOAD_SECONDS.
    def both_sign_with_new_key() -> bool:
        return all(kid_of(browser.refresh(server)) == new_kid for server in (a, b, a, b))

    wait_until(both_sign_with_new_key, FOLLOW_SECONDS)
    # Tokens of the previous key keep working on both.
    assert me(a, old_token) == me(b, old_token) == 200
    assert me(b, browser.access_token) == 200

    refused = flask_keys(env, "retire", first_kid)
    assert refused.returncode != 0 and "valid until" in refused.stderr  # its tokens are unexpired
    retired = flask_keys(env, "retire", first_kid, "--force")
    assert retired.returncode == 0, retired.stderr
    # Every worker (a request reaches any of them) drops the retired key within the reload interval.
    wait_until(
        lambda: me(a, old_token) == me(b, old_token) == 401 and published(a) == published(b) == {new_kid},
        FOLLOW_SECONDS,
    )
    for server in (a, b):
        assert kid_of(browser.refresh(server)) == new_kid
        assert me(server, browser.access_token) == 200

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL")) == 0
            events = conn.execute(
                text("SELECT type, details FROM auth_events WHERE type LIKE 'signing_key%'")
            ).all()
    finally:
        engine.dispose()
    assert [type_ for type_, _ in events].count("signing_key_added") == 2  # the first (automatic) + add
    assert {"signing_key_rotated", "signing_key_retired"} <= {type_ for type_, _ in events}
    for _type, details in events:
        assert set(details) <= {"kid", "alg", "state", "automatic", "previous_kid", "from", "forced"}
