"""The seed's four endpoints and /auth/me, row by row of SPEC §1–§3."""

from __future__ import annotations

from datetime import datetime

import jwt
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from trikchi.auth.models import User
from trikchi.extensions import db


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def set_cookie_headers(response) -> dict[str, str]:
    """``{cookie name: full Set-Cookie header}``."""
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_register_returns_201_and_the_user_object(auth):
    response = auth.register(email="  Ada@Example.COM ", name="  Ada Lovelace ")
    assert response.status_code == 201
    body = response.json
    assert set(body) >= {"id", "name", "email", "role", "created_at"}
    assert isinstance(body["id"], int)
    assert body["name"] == "Ada Lovelace"
    assert body["email"] == "ada@example.com"
    assert body["role"] == "customer"
    assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 0
    assert "password" not in response.get_data(as_text=True)
    assert "argon2" not in response.get_data(as_text=True)


def test_register_stores_an_argon2_hash_not_the_password(app, auth):
    auth.register()
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert user.is_active and not user.email_verified
        assert user.created_at.tzinfo is not None and user.updated_at.tzinfo is not None


def test_register_same_email_any_case_is_409(app, auth):
    assert auth.register(email="ada@example.com").status_code == 201
    response = auth.register(email=" ADA@example.com")
    assert response.status_code == 409
    assert response.json["code"] == 409 and response.json["message"]
    assert user_count(app) == 1


def test_login_returns_the_token_body(auth):
    auth.register()
    response = auth.login()
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "bearer"
    assert isinstance(body["user_id"], int)
    assert body["expires_in"] == 15 * 60
    assert isinstance(body["access_token"], str) and isinstance(body["csrf_token"], str)
    assert response.headers["Cache-Control"] == "no-store"


def test_login_sets_refresh_and_csrf_cookies_with_spec_attributes(auth):
    auth.register()
    response = auth.login()
    cookies = set_cookie_headers(response)
    refresh = cookies["refresh_token"]
    assert "HttpOnly" in refresh
    assert "Path=/;" in refresh or refresh.endswith("Path=/")
    assert "Max-Age=2592000" in refresh
    assert "SameSite=Lax" in refresh
    assert "Secure" not in refresh  # testing runs on plain HTTP
    csrf = cookies["csrf_refresh_token"]
    assert "HttpOnly" not in csrf  # JavaScript must be able to read it
    assert "Max-Age=2592000" in csrf and "Path=/" in csrf and "SameSite=Lax" in csrf
    assert csrf.split(";")[0].split("=", 1)[1] == response.json["csrf_token"]


def test_refresh_cookies_follow_the_jwt_cookie_settings(database_url):
    """The cookies are written from flask-jwt-extended's JWT_* settings, whatever they say."""
    from tests.conftest import AuthActions, make_app

    app = make_app(
        database_url,
        JWT_COOKIE_DOMAIN="shop.test",
        JWT_COOKIE_SAMESITE="Strict",
        JWT_COOKIE_SECURE=True,
        JWT_REFRESH_COOKIE_PATH="/auth",
        JWT_REFRESH_CSRF_COOKIE_PATH="/app",
    )
    try:
        cookies = set_cookie_headers(AuthActions(app.test_client()).signup())
        refresh, csrf = cookies["refresh_token"], cookies["csrf_refresh_token"]
        for cookie in (refresh, csrf):
            attributes = [part.strip() for part in cookie.split(";")]
            assert "Domain=shop.test" in attributes and "SameSite=Strict" in attributes
            assert "Secure" in attributes and "Max-Age=2592000" in attributes
        assert "Path=/auth" in refresh.split("; ") and "HttpOnly" in refresh
        assert "Path=/app" in csrf.split("; ") and "HttpOnly" not in csrf
    finally:
        with app.app_context():
            db.engine.dispose()


def test_production_cookies_are_secure(database_url, monkeypatch):
    from tests.conftest import AuthActions
    from trikchi import create_app

    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 40)
    monkeypatch.setenv("ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ARGON2_MEMORY_COST", "8")
    monkeypatch.setenv("ARGON2_PARALLELISM", "1")
    app = create_app({"TRIKCHI_CONFIG": "production", "SQLALCHEMY_DATABASE_URI": database_url})
    try:
        actions = AuthActions(app.test_client())
        response = actions.signup()
        cookies = set_cookie_headers(response)
        assert "Secure" in cookies["refresh_token"] and "Secure" in cookies["csrf_refresh_token"]
        assert "HttpOnly" in cookies["refresh_token"]
    finally:
        with app.app_context():
            db.engine.dispose()


def test_wrong_password_and_unknown_email_get_identical_401(auth):
    auth.register()
    wrong = auth.login(password="not the password at all")
    unknown = auth.login(email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_data() == unknown.get_data()
    assert "Set-Cookie" not in wrong.headers


def test_me_returns_the_user(auth):
    auth.signup()
    response = auth.me()
    assert response.status_code == 200
    assert response.json["email"] == "ada@example.com"
    assert "password_hash" not in response.json


def test_me_without_token_is_401_json(client):
    response = client.get("/auth/me")
    assert response.status_code == 401
    assert response.is_json and response.json["code"] == 401 and "msg" not in response.json


def test_access_token_is_not_accepted_from_cookie_or_query(client, auth):
    auth.signup()
    client.set_cookie("access_token_cookie", auth.access_token)
    assert client.get("/auth/me").status_code == 401
    assert client.get(f"/auth/me?jwt={auth.access_token}").status_code == 401


def test_refresh_returns_a_new_access_token_and_rotates_the_cookie(auth):
    login = auth.signup()
    old_cookie = auth.refresh_cookie()
    response = auth.refresh()
    assert response.status_code == 200
    assert set(response.json) == set(login.json)
    assert response.json["access_token"] != login.json["access_token"]
    assert response.headers["Cache-Control"] == "no-store"
    assert auth.refresh_cookie() != old_cookie
    assert response.json["csrf_token"] == auth.csrf_cookie()
    assert auth.me(response.json["access_token"]).status_code == 200


def test_refresh_without_csrf_header_is_refused_and_changes_nothing(auth):
    auth.signup()
    cookie = auth.refresh_cookie()
    for csrf in (None, "wrong-value"):
        response = auth.refresh(csrf=csrf)
        assert response.status_code == 401
        assert response.is_json and "CSRF" in response.json["message"]
        assert "Set-Cookie" not in response.headers
    assert auth.refresh_cookie() == cookie
    assert auth.refresh().status_code == 200  # the token was not consumed


def test_refresh_without_cookie_is_401(client):
    response = client.post("/auth/refresh_token", headers={"X-CSRF-TOKEN": "x"})
    assert response.status_code == 401 and response.json["code"] == 401


def test_refresh_token_is_not_accepted_from_header_or_body(client, auth):
    auth.signup()
    refresh = auth.refresh_cookie()
    csrf = auth.csrf_cookie()
    client.delete_cookie("refresh_token")
    headers = {"Authorization": f"Bearer {refresh}", "X-CSRF-TOKEN": csrf}
    assert client.post("/auth/refresh_token", headers=headers).status_code == 401
    assert (
        client.post("/auth/refresh_token", json={"refresh_token": refresh}, headers=headers).status_code
        == 401
    )


def test_logout_revokes_the_session_and_deletes_cookies(client, auth):
    auth.signup()
    stolen = auth.refresh_cookie()
    stolen_csrf = auth.csrf_cookie()
    response = auth.logout()
    assert response.status_code in (200, 204)
    cookies = set_cookie_headers(response)
    for name in ("refresh_token", "csrf_refresh_token"):
        assert "Expires=Thu, 01 Jan 1970" in cookies[name] or "Max-Age=0" in cookies[name]
    assert auth.refresh_cookie() is None
    # A copy of the cookie made before logout no longer works.
    client.set_cookie("refresh_token", stolen)
    client.set_cookie("csrf_refresh_token", stolen_csrf)
    assert auth.refresh().status_code == 401
    # Neither does the access token of that session.
    assert auth.me().status_code == 401


def test_logout_is_idempotent(client, auth):
    assert auth.logout().status_code in (200, 204)
    auth.signup()
    assert auth.logout().status_code in (200, 204)
    assert auth.logout().status_code in (200, 204)


def test_logout_without_csrf_header_is_refused_and_keeps_the_session(auth):
    auth.signup()
    response = auth.logout(csrf=None)
    assert response.status_code in (401, 403)
    assert "Set-Cookie" not in response.headers
    assert auth.refresh().status_code == 200


def test_logout_with_a_garbage_cookie_clears_it(client, auth):
    client.set_cookie("refresh_token", "not-a-jwt")
    response = auth.logout(csrf="anything")
    assert response.status_code in (200, 204)
    assert auth.refresh_cookie() is None


def test_access_token_claims(app, auth):
    login = auth.signup()
    token = login.json["access_token"]
    with app.app_context():
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
    assert header["alg"] == "HS256"
    assert claims["sub"] == str(login.json["user_id"]) and isinstance(claims["sub"], str)
    for name in ("exp", "iat", "nbf"):
        assert isinstance(claims[name], int)
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert claims["type"] == "access"
    assert claims["role"] == "customer"
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert isinstance(claims["sid"], str) and claims["sid"]
    assert not {"password", "password_hash", "email"} & set(claims)


def test_refresh_token_claims(app, auth):
    login = auth.signup()
    token = auth.refresh_cookie()
    with app.app_context():
        claims = jwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
        access = jwt.decode(login.json["access_token"], app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
    assert claims["type"] == "refresh"
    assert claims["sub"] == str(login.json["user_id"])
    assert claims["sid"] == access["sid"]
    assert claims["exp"] - claims["iat"] == 30 * 24 * 3600
    assert claims["jti"] != access["jti"]
    assert "role" not in claims
