"""Telegram Login (POST /auth/telegram): payloads signed by Telegram's documented algorithm."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from sqlalchemy import func, select

from tests.conftest import AuthActions, make_app
from trikchi.auth.models import AuthSession, User
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.social.models import Identity

BOT_TOKEN = "123456789:AAF-test-bot-token-for-trikchi-tests"  # noqa: S105 - a test value


def sign(fields: dict, bot_token: str = BOT_TOKEN) -> dict:
    """Sign like Telegram (https://core.telegram.org/widgets/login#checking-authorization),
    written out here independently of trikchi.social.telegram."""
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret = hashlib.sha256(bot_token.encode()).digest()
    return {**fields, "hash": hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()}


def payload(**overrides) -> dict:
    fields = {
        "id": 987654321,
        "first_name": "Alisher",
        "last_name": "Navoiy",
        "username": "alisher",
        "photo_url": "https://t.me/i/userpic/320/alisher.jpg",
        "auth_date": int(time.time()),
    }
    fields.update(overrides)
    return sign({key: value for key, value in fields.items() if value is not None})


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
    assert client.post("/auth/telegram", json=payload()).status_code == 200
    with app.app_context():
        db.session.execute(db.update(User).values(is_active=False))
        db.session.commit()
    response = app.test_client().post("/auth/telegram", json=payload())
    assert response.status_code == 401 and response.json["error"] == "social_login_failed"


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
