"""Fresh sign-in (SPEC §8): auth_time in access tokens, not renewed by a refresh, renewed by
POST /auth/reauthenticate; sensitive operations refuse a stale sign-in."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
from sqlalchemy import select, update

from tests.conftest import PASSWORD
from trikchi.auth.models import AuthSession
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db

NEW_PASSWORD = "a different horse battery"


def claims(app, token: str) -> dict:
    return jwt.decode(
        token,
        app.config["JWT_SECRET_KEY"],
        algorithms=["HS256"],
        audience=None,
        options={"verify_aud": False},
    )


def age_sign_in(app, seconds: int) -> None:
    """Move every session's last interactive authentication ``seconds`` into the past."""
    with app.app_context():
        db.session.execute(update(AuthSession).values(auth_time=utcnow() - timedelta(seconds=seconds)))
        db.session.commit()


def change_password(auth, new: str = NEW_PASSWORD):
    body = {"current_password": PASSWORD, "new_password": new}
    return auth.client.post("/auth/password", json=body, headers=auth.headers())


def test_access_tokens_carry_the_sign_in_time(app, auth):
    before = int(time.time())
    auth.signup()
    auth_time = claims(app, auth.access_token)["auth_time"]
    assert before - 1 <= auth_time <= int(time.time()) + 1


def test_a_refresh_carries_the_sign_in_time_on_unchanged(app, auth):
    auth.signup()
    age_sign_in(app, 3600)
    aged = claims(app, auth.access_token)["auth_time"]
    assert auth.refresh().status_code == 200
    refreshed = claims(app, auth.access_token)["auth_time"]
    assert refreshed <= int(time.time()) - 3590
    assert refreshed != aged  # the token now carries the session's (aged) time, not a new one


def test_a_stale_sign_in_is_refused_for_a_password_change(app, auth):
    auth.signup()
    age_sign_in(app, app.config["FRESH_SIGNIN_SECONDS"] + 5)
    assert auth.refresh().status_code == 200
    response = change_password(auth)
    assert response.status_code == 401
    assert response.json["error"] == "fresh_signin_required"
    # nothing changed: the old password still signs in
    assert auth.login().status_code == 200


def test_reauthenticate_makes_the_sign_in_fresh_without_touching_cookies(app, auth):
    auth.signup()
    age_sign_in(app, 3600)
    assert auth.refresh().status_code == 200
    refresh_cookie = auth.refresh_cookie()
    before = int(time.time())
    response = auth.client.post("/auth/reauthenticate", json={"password": PASSWORD}, headers=auth.headers())
    assert response.status_code == 200, response.json
    assert set(response.json) == {"access_token", "token_type", "user_id", "expires_in", "csrf_token"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert auth.refresh_cookie() == refresh_cookie
    assert response.json["csrf_token"] == auth.csrf_cookie()
    auth.access_token = response.json["access_token"]
    assert claims(app, auth.access_token)["auth_time"] >= before
    assert change_password(auth).status_code == 204
    # the session itself is fresh again: a refresh carries the new time
    assert auth.refresh().status_code == 200
    assert claims(app, auth.access_token)["auth_time"] >= before
    with app.app_context():
        types = db.session.scalars(select(AuthEvent.type)).all()
    assert "reauthenticated" in types


def test_reauthenticate_with_a_wrong_password_is_401_and_stays_stale(app, auth):
    auth.signup()
    age_sign_in(app, 3600)
    assert auth.refresh().status_code == 200
    response = auth.client.post(
        "/auth/reauthenticate", json={"password": "wrong password!"}, headers=auth.headers()
    )
    assert response.status_code == 401
    assert response.json["error"] == "invalid_credentials"
    assert change_password(auth).json["error"] == "fresh_signin_required"
    with app.app_context():
        assert "reauthentication_failed" in db.session.scalars(select(AuthEvent.type)).all()


def test_reauthenticate_needs_a_live_session(auth):
    auth.signup()
    token = auth.access_token
    assert auth.logout().status_code in (200, 204)
    response = auth.client.post(
        "/auth/reauthenticate", json={"password": PASSWORD}, headers=auth.headers(token)
    )
    assert response.status_code == 401
    assert auth.client.post("/auth/reauthenticate", json={"password": PASSWORD}).status_code == 401


def test_an_access_token_without_auth_time_is_never_fresh(app, auth):
    auth.signup()
    payload = claims(app, auth.access_token)
    del payload["auth_time"]
    legacy = jwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert auth.me(legacy).status_code == 200  # still a valid access token
    response = auth.client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=auth.headers(legacy),
    )
    assert response.json["error"] == "fresh_signin_required"


def test_a_non_integer_auth_time_is_an_invalid_token(app, auth):
    auth.signup()
    payload = claims(app, auth.access_token) | {"auth_time": "9999999999"}
    forged_type = jwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert auth.me(forged_type).status_code == 401
