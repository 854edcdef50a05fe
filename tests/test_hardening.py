"""CORS for real frontends, security headers, structured logs without secrets."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORD, AuthActions, make_app
from trikchi.extensions import db

FRONTEND = "https://shop.trikchi.uz"


@pytest.fixture
def cors_app(database_url):
    app = make_app(database_url, CORS_ORIGINS=[FRONTEND, "http://localhost:3000"])
    yield app
    with app.app_context():
        db.engine.dispose()


def preflight(client, origin: str, method: str = "POST", headers: str = "content-type, x-csrf-token"):
    return client.options(
        "/auth/refresh_token",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def test_preflight_from_an_allowed_origin(cors_app):
    response = preflight(cors_app.test_client(), FRONTEND)
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "x-csrf-token" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    auth = preflight(cors_app.test_client(), FRONTEND, "GET", "authorization")
    assert "authorization" in auth.headers["Access-Control-Allow-Headers"].lower()


def test_credentialed_request_from_an_allowed_origin(cors_app):
    actions = AuthActions(cors_app.test_client())
    actions.register()
    response = actions.client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}, headers={"Origin": FRONTEND}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers.get("Vary", "")


def test_another_origin_gets_no_cors_headers(cors_app):
    client = cors_app.test_client()
    response = preflight(client, "https://evil.example")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers
    login = client.post(
        "/auth/login", json={"email": "a@example.com", "password": "x"}, headers={"Origin": "null"}
    )
    assert "Access-Control-Allow-Origin" not in login.headers


def test_no_cors_headers_when_no_origins_are_configured(client):
    response = preflight(client, FRONTEND)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_wildcard_origin_is_refused(monkeypatch):
    from config import ConfigError, load_config

    monkeypatch.setenv("CORS_ORIGINS", "*")
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_config("testing")


@pytest.mark.parametrize("path", ["/healthz", "/auth/me", "/nope", "/openapi.json"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # not in plain-HTTP testing


def test_docs_csp_lets_swagger_ui_load_its_own_assets(client):
    csp = client.get("/docs").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp


def test_hsts_in_production(database_url, monkeypatch):
    from trikchi import create_app

    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 40)
    app = create_app({"TRIKCHI_CONFIG": "production", "SQLALCHEMY_DATABASE_URI": database_url})
    response = app.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_request_lines_are_off_by_default_and_auth_events_are_still_logged(database_url, capsys):
    app = make_app(database_url, LOG_FORMAT="json", LOG_LEVEL="INFO")
    try:
        AuthActions(app.test_client()).signup()
        err = capsys.readouterr().err
    finally:
        with app.app_context():
            db.engine.dispose()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert not any("path" in line for line in lines)
    assert {"registered", "login_succeeded"} <= {line.get("event") for line in lines}


def test_json_logs_carry_requests_and_auth_events_but_no_secrets(database_url, capsys):
    # LOG_REQUESTS: a line per request besides the auth events; logs go to the captured stderr.
    app = make_app(database_url, LOG_FORMAT="json", LOG_LEVEL="INFO", LOG_REQUESTS=True)
    try:
        actions = AuthActions(app.test_client())
        login = actions.signup()
        actions.login(password="a wrong password")
        actions.refresh()
        actions.me()
        err = capsys.readouterr().err
    finally:
        with app.app_context():
            db.engine.dispose()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/auth/login" and line.get("status") == 200 for line in lines)
    assert any(line.get("path") == "/auth/refresh_token" and line.get("status") == 200 for line in lines)
    events = {line.get("event") for line in lines}
    assert {"registered", "login_succeeded", "login_failed"} <= events
    for secret in (PASSWORD, "a wrong password", login.json["access_token"], login.json["csrf_token"]):
        assert secret not in err
    assert actions.refresh_cookie() not in err
