"""Telegram Login (POST /auth/telegram): payloads signed by Telegram's documented algorithm."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import create_engine, func, select, update

from tests.conftest import AuthActions, make_app
from tests.support.live import LiveServer
from tests.support.races import race
from tests.support.telegram import BOT_TOKEN, payload, sign
from trikchi.auth.models import AuthSession, User
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.social.models import Identity, UsedTelegramPayload
from trikchi.social.telegram import FUTURE_SKEW_SECONDS


@pytest.fixture
def app(database_url):
    app = make_app(database_url, TELEGRAM_BOT_TOKEN=BOT_TOKEN, RATELIMIT_SOCIAL="1000 per minute")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def refusal_reasons(app) -> list[str]:
    with app.app_context():
        events = db.session.scalars(
            select(AuthEvent).where(AuthEvent.type == "social_login_failed").order_by(AuthEvent.id)
        )
        return [event.details["reason"] for event in events]


def test_valid_payload_signs_in_with_the_login_body_and_cookies(app, client):
    response = client.post("/auth/telegram", json=payload())
    assert response.status_code == 200, response.json
    assert set(response.json) == {"access_token", "token_type", "user_id", "expires_in", "csrf_token"}
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get_cookie("refresh_token").http_only
    assert client.get_cookie("csrf_refresh_token").value == response.json["csrf_token"]
    auth = AuthActions(client)
    auth.access_token = response.json["access_token"]
    me = auth.me().json
    assert me["name"] == "Alisher Navoiy" and me["email"] is None and me["email_verified"] is False
    assert auth.refresh().status_code == 200
    with app.app_context():
        session = db.session.scalars(select(AuthSession)).one()
        assert session.auth_method == "telegram"
        identity = db.session.scalars(select(Identity)).one()
        assert (identity.provider, identity.subject, identity.user_id) == ("telegram", "987654321", me["id"])
        login = db.session.scalars(select(AuthEvent).where(AuthEvent.type == "login_succeeded")).one()
        assert login.details == {"method": "telegram"}
    # Signing in again is the same account; a payload with only the required fields works too.
    again = app.test_client().post(
        "/auth/telegram", json=payload(first_name=None, last_name=None, username=None, photo_url=None)
    )
    assert again.status_code == 200 and again.json["user_id"] == me["id"]
    assert count(app, User) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: {**p, "id": p["id"] + 1},
        lambda p: {**p, "first_name": "Someone"},
        lambda p: {**p, "auth_date": p["auth_date"] + 1},
        lambda p: {**p, "hash": p["hash"][:-1] + ("0" if p["hash"][-1] != "0" else "1")},
        lambda p: {key: value for key, value in p.items() if key != "username"},
        lambda p: sign({key: value for key, value in p.items() if key != "hash"}, "654321:other-bot"),
    ],
    ids=["id", "name", "auth_date", "hash", "dropped_field", "other_bot"],
)
def test_tampered_payload_is_refused(app, client, tamper):
    response = client.post("/auth/telegram", json=tamper(payload()))
    assert response.status_code == 401 and response.json["error"] == "social_login_failed"
    assert client.get_cookie("refresh_token") is None
    assert count(app, AuthSession) == 0 and count(app, User) == 0
    with app.app_context():
        event = db.session.scalars(select(AuthEvent)).one()
        assert (event.type, event.details) == (
            "social_login_failed",
            {"provider": "telegram", "reason": "bad_signature"},
        )


@pytest.mark.parametrize("age", [3601, 86400 * 2, -3600])
def test_stale_or_future_payload_is_refused(app, client, age):
    response = client.post("/auth/telegram", json=payload(auth_date=int(time.time()) - age))
    assert response.status_code == 401 and response.json["error"] == "social_login_failed"
    assert count(app, AuthSession) == 0
    with app.app_context():
        assert db.session.scalars(select(AuthEvent)).one().details["reason"] == "stale"


def test_freshness_window_is_configurable(app, client):
    app.config["TELEGRAM_AUTH_MAX_AGE_SECONDS"] = 60
    assert client.post("/auth/telegram", json=payload(auth_date=int(time.time()) - 120)).status_code == 401
    assert client.post("/auth/telegram", json=payload(auth_date=int(time.time()) - 30)).status_code == 200


def test_a_payload_signs_in_once(app, client):
    signed = payload()
    assert client.post("/auth/telegram", json=signed).status_code == 200
    # The same payload again (a copy from a log or the history), also with its hash in capitals
    # (the same signature): refused, no cookie, no session.
    for replay in (signed, {**signed, "hash": signed["hash"].upper()}):
        response = app.test_client().post("/auth/telegram", json=replay)
        assert response.status_code == 401 and response.json["error"] == "social_login_failed"
        assert "Set-Cookie" not in response.headers
    assert count(app, AuthSession) == 1
    assert refusal_reasons(app) == ["replayed", "replayed"]
    with app.app_context():
        # The event says why, and nothing that would sign in.
        event = db.session.scalars(select(AuthEvent).where(AuthEvent.type == "social_login_failed")).first()
        assert event.details == {"provider": "telegram", "reason": "replayed"}
        # What is remembered is a digest of the hash, not the hash.
        (used,) = db.session.scalars(select(UsedTelegramPayload)).all()
        assert used.hash_digest == hashlib.sha256(signed["hash"].encode()).hexdigest()


def test_a_new_payload_for_the_same_user_still_signs_in(app, client):
    now = int(time.time())
    first = client.post("/auth/telegram", json=payload(auth_date=now - 5)).json
    again = app.test_client().post("/auth/telegram", json=payload(auth_date=now))
    assert again.status_code == 200 and again.json["user_id"] == first["user_id"]
    assert count(app, AuthSession) == 2 and count(app, UsedTelegramPayload) == 2


def test_a_used_payload_is_remembered_until_too_old_and_then_forgotten(app, client):
    app.config["TELEGRAM_AUTH_MAX_AGE_SECONDS"] = 600
    auth_date = int(time.time()) - 30
    assert client.post("/auth/telegram", json=payload(auth_date=auth_date)).status_code == 200
    with app.app_context():
        (used,) = db.session.scalars(select(UsedTelegramPayload)).all()
        # Until it would be refused as stale anyway, plus the allowance for clocks.
        assert used.expires_at == datetime.fromtimestamp(auth_date + 600 + FUTURE_SKEW_SECONDS, UTC)
        # One remembered long enough ago that its payload is stale now.
        db.session.add(UsedTelegramPayload(hash_digest="0" * 64, expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert count(app, UsedTelegramPayload) == 2
    # The next Telegram sign-in forgets the expired one and keeps the live one (and its own).
    assert app.test_client().post("/auth/telegram", json=payload()).status_code == 200
    with app.app_context():
        digests = set(db.session.scalars(select(UsedTelegramPayload.hash_digest)))
    assert "0" * 64 not in digests and len(digests) == 2
    assert app.test_client().post("/auth/telegram", json=payload(auth_date=auth_date)).status_code == 401


def test_a_payload_whose_sign_in_was_refused_is_not_spent(app, client):
    """The payload is remembered in the sign-in's transaction: a sign-in the decision refuses
    (a deactivated account) remembers nothing, and the same payload works once the account is back."""
    assert client.post("/auth/telegram", json=payload(auth_date=int(time.time()) - 5)).status_code == 200
    with app.app_context():
        db.session.execute(update(User).values(is_active=False))
        db.session.commit()
    signed = payload()
    assert app.test_client().post("/auth/telegram", json=signed).status_code == 401
    assert count(app, UsedTelegramPayload) == 1  # the first payload's only
    with app.app_context():
        db.session.execute(update(User).values(is_active=True))
        db.session.commit()
    assert app.test_client().post("/auth/telegram", json=signed).status_code == 200
    assert count(app, UsedTelegramPayload) == 2


def test_malformed_payload_is_422(client):
    response = client.post("/auth/telegram", json={**payload(), "id": "987654321"})
    assert response.status_code == 422 and "id" in response.json["errors"]
    response = client.post("/auth/telegram", json={**payload(), "is_admin": True})
    assert response.status_code == 422 and "is_admin" in response.json["errors"]
    response = client.post("/auth/telegram", json={**payload(), "hash": "zz"})
    assert response.status_code == 422 and "hash" in response.json["errors"]


def test_not_configured_is_404(database_url):
    app = make_app(database_url)
    response = app.test_client().post("/auth/telegram", json=payload())
    assert response.status_code == 404 and response.json["error"] == "not_found"
    with app.app_context():
        db.engine.dispose()


def test_a_disabled_account_is_refused(app, client):
    now = int(time.time())
    assert client.post("/auth/telegram", json=payload(auth_date=now - 5)).status_code == 200
    with app.app_context():
        db.session.execute(db.update(User).values(is_active=False))
        db.session.commit()
    # A new payload (a later sign-in): the one above would be refused as used already.
    response = app.test_client().post("/auth/telegram", json=payload(auth_date=now))
    assert response.status_code == 401 and response.json["error"] == "social_login_failed"
    assert refusal_reasons(app) == ["account_disabled"]


def test_telegram_account_is_its_last_way_to_sign_in_until_it_has_a_password(app, client):
    body = client.post("/auth/telegram", json=payload()).json
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    (identity,) = client.get("/auth/identities", headers=headers).json
    assert identity["provider"] == "telegram" and identity["email"] is None
    response = client.delete(f"/auth/identities/{identity['id']}", headers=headers)
    assert response.status_code == 409 and response.json["error"] == "last_sign_in_method"
    # Nothing to mail without an address: a verification request is accepted and sends nothing.
    assert client.post("/auth/verify_email/request", headers=headers).status_code == 202


def test_telegram_sign_in_is_rate_limited(app, client):
    app.config["RATELIMIT_SOCIAL"] = "3 per minute"
    for _ in range(3):
        client.post("/auth/telegram", json=payload(first_name="X"))
    response = client.post("/auth/telegram", json=payload())
    assert response.status_code == 429 and response.json["error"] == "rate_limited"


def test_identities_need_a_token(client):
    assert client.get("/auth/identities").status_code == 401
    assert client.delete("/auth/identities/1").status_code == 401


def test_downgrade_keeps_social_accounts_and_upgrade_again(backend, request, tmp_path):
    """The migration back to a schema where email and password are required keeps the accounts
    (other services store their ids) with an unusable hash and a .invalid address."""
    from flask_migrate import downgrade, upgrade

    from tests.test_migrations import empty_database_url

    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url, TELEGRAM_BOT_TOKEN=BOT_TOKEN)
    with app.app_context():
        upgrade()
        body = app.test_client().post("/auth/telegram", json=payload()).json
        downgrade(revision="a1f3c9d2e7b4")
        row = db.session.execute(
            db.text("SELECT email, password_hash FROM users WHERE id = :id"), {"id": body["user_id"]}
        ).one()
        assert row == (f"user-{body['user_id']}@social.invalid", "!")
        db.session.rollback()
        upgrade()
        assert AuthActions(app.test_client()).login(row[0], "!").status_code in (401, 422)
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def telegram_server(database_url, tmp_path):
    """gunicorn with 4 workers and a Telegram bot, rate limits off: copies race the database."""
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": database_url,
            "TRIKCHI_TEST_LOGDIR": str(tmp_path),
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "RATELIMIT_ENABLED": "false",
        },
        workers=4,
    ).wait_ready()
    yield server
    server.stop()


def db_count(database_url, model, *where) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(model).where(*where))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_replayed_payload_over_http_is_401_without_cookies(telegram_server, database_url):
    signed = payload()
    url = telegram_server.url + "/auth/telegram"
    first = requests.post(url, json=signed, timeout=30)
    assert first.status_code == 200 and "refresh_token=" in first.headers["Set-Cookie"]
    replayed = requests.post(url, json=signed, timeout=30)
    assert replayed.status_code == 401 and replayed.json()["error"] == "social_login_failed"
    assert "Set-Cookie" not in replayed.headers
    # A later payload of the same Telegram user is a new sign-in.
    later = requests.post(url, json=payload(auth_date=signed["auth_date"] + 1), timeout=30)
    assert later.status_code == 200 and later.json()["user_id"] == first.json()["user_id"]
    assert db_count(database_url, AuthSession) == 2


@pytest.mark.slow
def test_racing_copies_of_one_payload_sign_in_once(telegram_server, database_url):
    signed = payload()
    url = telegram_server.url + "/auth/telegram"
    responses = race(8, lambda _i: requests.post(url, json=signed, timeout=30))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * 7, (statuses, telegram_server.log()[-3000:])
    assert all("Set-Cookie" not in r.headers for r in responses if r.status_code == 401)
    assert db_count(database_url, AuthSession) == 1 and db_count(database_url, User) == 1
    replayed = AuthEvent.details["reason"].as_string() == "replayed"
    assert db_count(database_url, AuthEvent, AuthEvent.type == "social_login_failed", replayed) == 7
