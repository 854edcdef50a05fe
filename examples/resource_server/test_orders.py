"""The orders service against a real trikchi (gunicorn, ES256, a migrated SQLite file).

Tokens come from trikchi over HTTP (register + login); the orders app finds trikchi's keys
by discovery from the issuer URL and verifies on its own. It accepts trikchi's tokens, and
refuses tampered, expired, foreign-issuer and wrong-audience ones; a key rotation run with
``flask keys`` against trikchi's database reaches it without a restart.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import orders
import pytest
import requests
from flask_migrate import upgrade
from sqlalchemy import select

from tests.support.live import LiveServer
from tests.support.postgres import free_port
from trikchi import create_app as create_trikchi
from trikchi.extensions import db
from trikchi.keys import material
from trikchi.keys.models import CURRENT, SigningKey

pytestmark = pytest.mark.slow

AUDIENCE = "trikchi.uz"
SIGNING_KEYS_SECRET = "orders-example-signing-keys-" + "s" * 32
PASSWORD = "correct horse battery staple"


# --- trikchi under gunicorn -------------------------------------------------------------------


def migrated_sqlite(directory: Path) -> str:
    """A SQLite file at the newest schema (``flask db upgrade``, in-process)."""
    url = f"sqlite:///{directory / 'trikchi.db'}"
    app = create_trikchi({"TRIKCHI_CONFIG": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def start_trikchi(
    database_url: str, logdir: Path, issuer: str | None = None, workers: int = 2, **env: str
) -> LiveServer:
    """trikchi signing ES256 access tokens; its issuer is its own URL unless told otherwise."""
    port = free_port()
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": database_url,
            "JWT_ALGORITHM": "ES256",
            "JWT_ISSUER": issuer or f"http://127.0.0.1:{port}",
            "JWT_AUDIENCE": AUDIENCE,
            "SIGNING_KEYS_SECRET": SIGNING_KEYS_SECRET,
            "KEYS_RELOAD_SECONDS": "1",
            "RATELIMIT_ENABLED": "false",
            "TRIKCHI_TEST_LOGDIR": str(logdir),
            **env,
        },
        workers=workers,
        port=port,
    )
    try:
        return server.wait_ready()
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="module")
def trikchi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The shop's trikchi, whose JWT_ISSUER is its URL."""
    directory = tmp_path_factory.mktemp("trikchi")
    server = start_trikchi(migrated_sqlite(directory), directory)
    yield server
    server.stop()


@pytest.fixture
def fresh_trikchi(tmp_path: Path) -> Iterator[LiveServer]:
    """A trikchi of its own, for a test that rotates its keys."""
    server = start_trikchi(migrated_sqlite(tmp_path), tmp_path)
    yield server
    server.stop()


class Customer:
    """A user of trikchi, signed in over HTTP like a frontend."""

    def __init__(self, server: LiveServer, name: str = "Ada") -> None:
        self.browser = requests.Session()
        self.email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        body = {"name": name, "email": self.email, "password": PASSWORD}
        response = self.browser.post(server.url + "/auth/register", json=body, timeout=30)
        assert response.status_code == 201, response.text
        self.user_id = str(response.json()["id"])

    def login(self, server: LiveServer) -> str:
        """A fresh access token (from ``server``, which may be another trikchi on the same DB)."""
        body = {"email": self.email, "password": PASSWORD}
        response = self.browser.post(server.url + "/auth/login", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]


# --- the orders app ---------------------------------------------------------------------------


def orders_app(issuer: str, **settings: Any):
    """The orders app trusting ``issuer``, with orders for the given users (``ORDERS``)."""
    settings.setdefault("TRIKCHI_AUDIENCE", AUDIENCE)
    settings.setdefault("TRIKCHI_JWKS_REFETCH_COOLDOWN_SECONDS", 1)
    settings.setdefault("ORDERS", {})
    return orders.create_app({"TRIKCHI_ISSUER": issuer, **settings})


def get_orders(app, token: str | None = None, authorization: str | None = None):
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    return app.test_client().get("/orders", headers=headers)


def assert_refused(response, error: str) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json() == {
        "code": 401,
        "status": "Unauthorized",
        "error": error,
        "message": response.get_json()["message"],
    }
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def b64url_json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload)


def with_claims(token: str, **changes: Any) -> str:
    """The same header and signature over a changed payload."""
    header, _, signature = token.split(".")
    return f"{header}.{b64url_json(parts(token)[1] | changes)}.{signature}"


def current_key(database_url: str) -> tuple[str, material.PrivateKey]:
    """trikchi's current private key, decrypted from its database (what a thief would need)."""
    app = create_trikchi({"TRIKCHI_CONFIG": "testing", "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        row = db.session.scalar(select(SigningKey).where(SigningKey.state == CURRENT))
        assert row is not None
        kid, private = row.kid, material.decrypt(row.private_key_encrypted, [SIGNING_KEYS_SECRET])
        db.session.remove()
        db.engine.dispose()
    return kid, private


# --- tests ------------------------------------------------------------------------------------


def test_accepts_trikchis_tokens_and_shows_the_callers_orders(trikchi):
    ada, bob = Customer(trikchi, "Ada"), Customer(trikchi, "Bob")
    ada_orders = [{"id": "A-1", "status": "paid"}]
    bob_orders = [{"id": "B-1", "status": "shipped"}, {"id": "B-2", "status": "paid"}]
    app = orders_app(trikchi.url, ORDERS={ada.user_id: ada_orders, bob.user_id: bob_orders})

    response = get_orders(app, ada.login(trikchi))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"user_id": ada.user_id, "orders": ada_orders}
    response = get_orders(app, bob.login(trikchi))
    assert response.get_json() == {"user_id": bob.user_id, "orders": bob_orders}
    # A user without orders has none.
    carol = Customer(trikchi, "Carol")
    assert get_orders(app, carol.login(trikchi)).get_json() == {"user_id": carol.user_id, "orders": []}


def test_the_jwks_url_can_be_given_instead_of_discovery(trikchi):
    ada = Customer(trikchi)
    app = orders_app(trikchi.url, TRIKCHI_JWKS_URL=trikchi.url + "/.well-known/jwks.json")
    assert get_orders(app, ada.login(trikchi)).status_code == 200


def test_refuses_requests_without_a_bearer_token(trikchi):
    app = orders_app(trikchi.url)
    assert_refused(get_orders(app), "authentication_required")
    assert_refused(get_orders(app, authorization="Basic YWRhOnB3"), "authentication_required")
    assert_refused(get_orders(app, authorization="Bearer "), "authentication_required")
    assert 'error="invalid_token"' not in get_orders(app).headers["WWW-Authenticate"]
    assert_refused(get_orders(app, "not-a-jwt"), "token_invalid")


def test_refuses_a_tampered_token(trikchi):
    ada, bob = Customer(trikchi, "Ada"), Customer(trikchi, "Bob")
    app = orders_app(trikchi.url, ORDERS={bob.user_id: [{"id": "B-1"}]})
    token = ada.login(trikchi)
    assert get_orders(app, token).status_code == 200
    # Ada rewrites her token to read Bob's orders.
    response = get_orders(app, with_claims(token, sub=bob.user_id))
    assert_refused(response, "token_invalid")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert_refused(get_orders(app, with_claims(token, exp=parts(token)[1]["exp"] + 86400)), "token_invalid")
    header, payload, signature = token.split(".")
    assert_refused(get_orders(app, f"{header}.{payload}.{signature[::-1]}"), "token_invalid")


def test_refuses_an_expired_token(trikchi, tmp_path):
    """A second trikchi on the same database and keys, whose access tokens live 2 s."""
    short = start_trikchi(
        trikchi.env["DATABASE_URL"], tmp_path, issuer=trikchi.url, workers=1, ACCESS_TOKEN_SECONDS="2"
    )
    try:
        ada = Customer(trikchi)
        app = orders_app(trikchi.url, TRIKCHI_LEEWAY_SECONDS=0)
        assert get_orders(app, ada.login(trikchi)).status_code == 200  # keys fetched and cached
        token = ada.login(short)
        assert parts(token)[1]["exp"] - parts(token)[1]["iat"] == 2
        assert get_orders(app, token).status_code == 200  # the same issuer and key, not expired yet
        time.sleep(3)
        assert_refused(get_orders(app, token), "token_expired")
        # And the issuer's own discovery is what orders trusts: this one names another issuer.
        misconfigured = orders_app(short.url)
        response = get_orders(misconfigured, ada.login(trikchi))
        assert response.status_code == 503
        assert response.get_json()["error"] == "service_unavailable"
    finally:
        short.stop()


def test_refuses_a_token_of_another_issuer(trikchi, tmp_path):
    """Another trikchi deployment: its own database, keys and JWT_ISSUER, the same audience."""
    foreign = start_trikchi(migrated_sqlite(tmp_path), tmp_path, workers=1)
    try:
        stranger = Customer(foreign)
        token = stranger.login(foreign)
        assert parts(token)[1]["iss"] == foreign.url and parts(token)[1]["aud"] == AUDIENCE
        app = orders_app(trikchi.url)
        assert_refused(get_orders(app, token), "token_invalid")
        # Trusting the other deployment instead works, and then ours is the foreign one.
        assert get_orders(orders_app(foreign.url), token).status_code == 200
        ada = Customer(trikchi)
        assert_refused(get_orders(orders_app(foreign.url), ada.login(trikchi)), "token_invalid")
    finally:
        foreign.stop()


def test_refuses_a_wrong_issuer_or_audience_even_with_trikchis_real_key(trikchi):
    ada = Customer(trikchi)
    token = ada.login(trikchi)
    kid, private = current_key(trikchi.env["DATABASE_URL"])
    assert parts(token)[0]["kid"] == kid
    claims = parts(token)[1]
    resign = lambda **changes: jwt.encode(claims | changes, private, algorithm="ES256", headers={"kid": kid})  # noqa: E731

    app = orders_app(trikchi.url)
    assert get_orders(app, resign()).status_code == 200  # control: the re-signed token is fine
    assert_refused(get_orders(app, resign(iss="https://evil.example")), "token_invalid")
    assert_refused(get_orders(app, resign(aud="payments.trikchi.uz")), "token_invalid")
    assert_refused(get_orders(app, resign(type="refresh")), "token_invalid")
    without_iss = {name: value for name, value in claims.items() if name != "iss"}
    assert_refused(
        get_orders(app, jwt.encode(without_iss, private, algorithm="ES256", headers={"kid": kid})),
        "token_invalid",
    )
    # A service configured for another audience refuses trikchi's genuine tokens.
    payments = orders_app(trikchi.url, TRIKCHI_AUDIENCE="payments.trikchi.uz")
    assert_refused(get_orders(payments, token), "token_invalid")
    # A service that forgot TRIKCHI_AUDIENCE refuses tokens that carry one rather than skip the check.
    assert_refused(get_orders(orders_app(trikchi.url, TRIKCHI_AUDIENCE=None), token), "token_invalid")


def test_refuses_hs256_none_and_key_locating_headers_without_fetching_keys(trikchi):
    ada = Customer(trikchi)
    token = ada.login(trikchi)
    header, claims = parts(token)
    refresh = ada.browser.cookies.get("refresh_token")
    kid, private = current_key(trikchi.env["DATABASE_URL"])
    # JWKS unreachable: every one of these is refused on its header alone.
    app = orders_app(trikchi.url, TRIKCHI_JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks.json")
    forgeries = {
        "refresh token (HS256)": refresh,
        "HS256 under a guessed secret": jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": kid}),
        "alg none": f"{b64url_json({'alg': 'none', 'kid': kid})}.{b64url_json(claims)}.",
        "jku": jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid, "jku": "http://evil/"}),
        "x5c": jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid, "x5c": ["MIIB"]}),
        "no kid": jwt.encode(claims, private, algorithm="ES256"),
    }
    for name, forged in forgeries.items():
        response = get_orders(app, forged)
        assert (response.status_code, response.get_json()["error"]) == (401, "token_invalid"), name
    # A genuine token needs the keys: trikchi unreachable is 503, not a 401 that signs users out.
    response = get_orders(app, token)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"] == "service_unavailable"
    assert header["alg"] == "ES256"


def test_keeps_working_across_a_rotation_without_a_restart(fresh_trikchi):
    trikchi = fresh_trikchi
    ada = Customer(trikchi)
    ada_orders = [{"id": "A-1", "status": "paid"}]
    app = orders_app(trikchi.url, ORDERS={ada.user_id: ada_orders})  # JWKS cached 600 s
    old = ada.login(trikchi)
    old_kid = parts(old)[0]["kid"]
    assert get_orders(app, old).status_code == 200  # fetches and caches the JWKS

    for command in (["keys", "add"], ["keys", "rotate", "--force"]):
        result = trikchi.flask(*command)
        assert result.returncode == 0, result.stdout + result.stderr
    time.sleep(2)  # KEYS_RELOAD_SECONDS=1: every trikchi worker signs with the new key

    new = ada.login(trikchi)
    new_kid = parts(new)[0]["kid"]
    assert new_kid != old_kid
    # Not in the cached JWKS: PyJWKClient refetches it once, and the same app accepts it.
    response = get_orders(app, new)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"user_id": ada.user_id, "orders": ada_orders}
    assert get_orders(app, old).status_code == 200  # the previous key is still published

    # Retired: gone from the JWKS. A verifier trusts its cached copy for its lifespan, so a
    # service with a short cache stops accepting the old token once the cache expires.
    short_cache = orders_app(trikchi.url, TRIKCHI_JWKS_CACHE_SECONDS=1)
    assert get_orders(short_cache, old).status_code == 200
    result = trikchi.flask("keys", "retire", "--force", "--", old_kid)  # a kid may start with "-"
    assert result.returncode == 0, result.stdout + result.stderr
    time.sleep(2)
    assert_refused(get_orders(short_cache, old), "token_invalid")
    assert get_orders(short_cache, new).status_code == 200
    assert get_orders(app, new).status_code == 200
    refused = requests.get(trikchi.url + "/auth/me", headers={"Authorization": f"Bearer {old}"}, timeout=30)
    assert refused.status_code == 401
