"""SPEC §14: CAPTCHA (Turnstile or hCaptcha) on registration and password-reset requests, checked
against a siteverify stand-in (tests/support/captcha.py) over real HTTP; off unless configured."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from config import ConfigError, load_config
from tests.conftest import PASSWORD, make_app
from tests.support.captcha import SECRET, Siteverify
from tests.support.sms_gateways import closed_url
from trikchi.auth.models import User
from trikchi.extensions import db
from trikchi.outbox.models import Delivery

BODY = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}


@pytest.fixture
def siteverify():
    server = Siteverify().start()
    yield server
    server.stop()


@pytest.fixture
def captcha_app(database_url, siteverify):
    """Apps with a CAPTCHA provider checking against the stand-in (settings may be overridden)."""
    apps = []

    def make(**settings: object):
        app = make_app(
            database_url,
            **{
                "CAPTCHA_PROVIDER": "turnstile",
                "CAPTCHA_SECRET": SECRET,
                "CAPTCHA_VERIFY_URL": siteverify.url,
                "RATELIMIT_ENABLED": False,
                **settings,
            },
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def users(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(User))
        db.session.remove()
        return count


def mails(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.kind == "mail"))
        db.session.remove()
        return count


def test_without_a_provider_nothing_changes(database_url, siteverify):
    # The seed's body registers as before, a token is ignored, and siteverify is never called.
    app = make_app(database_url, CAPTCHA_VERIFY_URL=siteverify.url, CAPTCHA_SECRET=SECRET)
    client = app.test_client()
    assert client.post("/auth/register", json=BODY).status_code == 201
    other = {**BODY, "email": "bob@example.com", "captcha_token": "anything"}
    assert client.post("/auth/register", json=other).status_code == 201
    assert client.post("/auth/password_reset/request", json={"email": "ada@example.com"}).status_code == 202
    assert siteverify.received == []
    # The field is still checked like any other: a token is printable ASCII.
    bad = client.post("/auth/register", json={**BODY, "email": "eve@example.com", "captcha_token": "a b"})
    assert bad.status_code == 422 and "captcha_token" in bad.json["errors"]
    assert users(app) == 2
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("provider", ["turnstile", "hcaptcha"])
def test_registration_needs_a_token_the_provider_accepts(captcha_app, siteverify, provider):
    app = captcha_app(CAPTCHA_PROVIDER=provider)
    client = app.test_client()

    missing = client.post("/auth/register", json=BODY)
    assert missing.status_code == 403 and missing.json["error"] == "captcha_failed"
    assert siteverify.received == []  # no token: nothing to ask
    empty = client.post("/auth/register", json={**BODY, "captcha_token": ""})
    assert empty.status_code == 403 and empty.json["error"] == "captcha_failed"

    refused = client.post("/auth/register", json={**BODY, "captcha_token": "XXXX.forged"})
    assert refused.status_code == 403 and refused.json["error"] == "captcha_failed"
    assert siteverify.received == [{"secret": SECRET, "response": "XXXX.forged", "remoteip": "127.0.0.1"}]
    assert users(app) == 0  # refused before anything was written

    token = siteverify.issue("0.solved-by-a-person")
    created = client.post("/auth/register", json={**BODY, "captcha_token": token})
    assert created.status_code == 201 and created.json["email"] == "ada@example.com"
    # A token works once (the provider says so): the same token again is refused.
    again = client.post("/auth/register", json={**BODY, "email": "bob@example.com", "captcha_token": token})
    assert again.status_code == 403 and again.json["error"] == "captcha_failed"
    assert users(app) == 1


def test_the_token_may_come_in_the_header(captcha_app, siteverify):
    app = captcha_app()
    client = app.test_client()
    token = siteverify.issue("0.from-the-header")
    created = client.post("/auth/register", json=BODY, headers={"X-Captcha-Token": token})
    assert created.status_code == 201
    assert siteverify.received[-1]["response"] == token
    refused = client.post(
        "/auth/register", json={**BODY, "email": "bob@example.com"}, headers={"X-Captcha-Token": "stale"}
    )
    assert refused.status_code == 403 and refused.json["error"] == "captcha_failed"


def test_a_page_on_another_origin_may_send_the_header(captcha_app):
    client = captcha_app(CORS_ORIGINS=["https://shop.trikchi.uz"]).test_client()
    preflight = client.options(
        "/auth/register",
        headers={
            "Origin": "https://shop.trikchi.uz",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-captcha-token",
        },
    )
    assert preflight.status_code in (200, 204)
    assert "x-captcha-token" in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_a_password_reset_request_needs_the_captcha(captcha_app, siteverify):
    app = captcha_app()
    client = app.test_client()
    assert (
        client.post("/auth/register", json={**BODY, "captcha_token": siteverify.issue("t1")}).status_code
        == 201
    )
    before = mails(app)

    missing = client.post("/auth/password_reset/request", json={"email": "ada@example.com"})
    assert missing.status_code == 403 and missing.json["error"] == "captcha_failed"
    refused = client.post(
        "/auth/password_reset/request", json={"email": "ada@example.com", "captcha_token": "guess"}
    )
    assert refused.status_code == 403
    assert mails(app) == before  # no reset mail queued

    accepted = client.post(
        "/auth/password_reset/request",
        json={"email": "ada@example.com"},
        headers={"X-Captcha-Token": siteverify.issue("t2")},
    )
    assert accepted.status_code == 202 and mails(app) == before + 1
    body = client.post(
        "/auth/password_reset/request",
        json={"email": "ada@example.com", "captcha_token": siteverify.issue("t3")},
    )
    assert body.status_code == 202


@pytest.mark.parametrize("outage", ["5xx", "404", "unreachable", "too slow"])
def test_a_provider_that_cannot_answer_is_503_and_nothing_is_written(captcha_app, siteverify, outage, caplog):
    settings: dict[str, object] = {}
    if outage == "5xx":
        siteverify.status = 502
    elif outage == "404":
        settings["CAPTCHA_VERIFY_URL"] = siteverify.url.replace("/siteverify", "/elsewhere")
    elif outage == "unreachable":
        settings["CAPTCHA_VERIFY_URL"] = closed_url()
    else:
        siteverify.delay = 2.5
        settings["CAPTCHA_TIMEOUT_SECONDS"] = 1
    app = captcha_app(**settings)
    client = app.test_client()
    token = siteverify.issue("0.valid")
    with caplog.at_level(logging.WARNING, logger="trikchi.captcha"):
        response = client.post("/auth/register", json={**BODY, "captcha_token": token})
    assert response.status_code == 503 and response.json["error"] == "captcha_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert users(app) == 0
    assert caplog.records and token not in caplog.text and SECRET not in caplog.text


def test_a_secret_the_provider_refuses_is_our_fault_not_the_visitors(captcha_app, siteverify, caplog):
    app = captcha_app(CAPTCHA_SECRET="0x-a-mistyped-secret")
    with caplog.at_level(logging.ERROR, logger="trikchi.captcha"):
        response = app.test_client().post(
            "/auth/register", json={**BODY, "captcha_token": siteverify.issue("0.valid")}
        )
    assert response.status_code == 503 and response.json["error"] == "captcha_unavailable"
    assert "invalid-input-secret" in caplog.text and "0x-a-mistyped-secret" not in caplog.text
    assert users(app) == 0


def test_the_refusal_is_in_the_visitors_language(captcha_app):
    client = captcha_app().test_client()
    english = client.post("/auth/register", json=BODY)
    russian = client.post("/auth/register", json=BODY, headers={"Accept-Language": "ru"})
    assert english.json["error"] == russian.json["error"] == "captcha_failed"
    assert english.json["message"] != russian.json["message"]


def test_the_document_describes_the_token_and_the_refusals(captcha_app):
    document = captcha_app().test_client().get("/openapi.json").json
    for path in ("/auth/register", "/auth/password_reset/request"):
        operation = document["paths"][path]["post"]
        assert {"403", "503"} <= set(operation["responses"])
        assert any(p["name"] == "X-Captcha-Token" and p["in"] == "header" for p in operation["parameters"])
    schema = document["components"]["schemas"]["Register"]
    assert "captcha_token" in schema["properties"] and "captcha_token" not in schema.get("required", [])


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"CAPTCHA_PROVIDER": "recaptcha"}, "CAPTCHA_PROVIDER"),
        ({"CAPTCHA_PROVIDER": "turnstile"}, "CAPTCHA_SECRET"),
        ({"CAPTCHA_VERIFY_URL": "challenges.cloudflare.com"}, "CAPTCHA_VERIFY_URL"),
        ({"CAPTCHA_TIMEOUT_SECONDS": "0"}, "CAPTCHA_TIMEOUT_SECONDS"),
    ],
)
def test_unusable_captcha_settings_are_refused(monkeypatch, environ, variable):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=variable):
        load_config("testing")


@pytest.mark.parametrize(
    ("provider", "url"),
    [
        ("turnstile", "https://challenges.cloudflare.com/turnstile/v0/siteverify"),
        ("hcaptcha", "https://api.hcaptcha.com/siteverify"),
    ],
)
def test_each_provider_has_its_siteverify_by_default(monkeypatch, provider, url):
    monkeypatch.setenv("CAPTCHA_PROVIDER", provider)
    monkeypatch.setenv("CAPTCHA_SECRET", "secret")
    assert load_config("testing").CAPTCHA_VERIFY_URL == url
