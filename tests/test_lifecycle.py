"""SPEC §5: email verification and password reset over a real SMTP server."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select, update

from tests.conftest import AuthActions, make_app
from tests.support.mails import FRONTEND, subjects_to
from tests.support.outbox import background_worker
from trikchi.auth.models import User
from trikchi.events import AuthEvent
from trikchi.extensions import db


@pytest.fixture
def mail_app(mail_app_factory):
    return mail_app_factory(
        MAIL_DEFAULT_SENDER="trikchi <no-reply@trikchi.uz>",
        # Security notices have their own tests (test_notices.py): here the mail to an
        # address is the link. Requests write mails to the outbox; the worker sends them.
        NOTIFY_NEW_DEVICE=False,
        NOTIFY_PASSWORD_CHANGED=False,
    )


def link_token(message, path: str) -> str:
    """The token of the ``{FRONTEND}/{path}?token=`` link, checked in both the text and HTML parts."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    match = re.search(re.escape(f"{FRONTEND}/{path}?token=") + r"([A-Za-z0-9_.\-]+)", text)
    assert match, text
    assert match.group(1) in html
    return match.group(1)


def in_the_past(monkeypatch, seconds: int) -> None:
    """Sign the next tokens as if ``seconds`` ago."""
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - seconds)


def unique(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}@example.com"


def test_verification_mail_link_works_once(mail_app, smtp_server):
    email = unique("verify")
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    response = user.client.post("/auth/verify_email/request", headers=user.headers())
    assert response.status_code == 202 and response.json["message"]
    message = smtp_server.wait_for(email)
    assert message["Subject"] and "Ada" in message.get_body(preferencelist=("plain",)).get_content()
    assert "no-reply@trikchi.uz" in message["From"]
    token = link_token(message, "verify-email")

    verified = user.client.post("/auth/verify_email", json={"token": token})
    assert verified.status_code == 200
    assert verified.json["email_verified"] is True and verified.json["email"] == email
    assert user.me().json["email_verified"] is True
    again = user.client.post("/auth/verify_email", json={"token": token})
    assert again.status_code == 401 and again.json["code"] == 401
    assert again.json["error"] == "invalid_link"


def test_verification_needs_sign_in(mail_app):
    assert mail_app.test_client().post("/auth/verify_email/request").status_code == 401


def test_verification_token_is_useless_after_the_email_changes(mail_app, smtp_server):
    email = unique("change")
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    user.client.post("/auth/verify_email/request", headers=user.headers())
    token = link_token(smtp_server.wait_for(email), "verify-email")
    with mail_app.app_context():
        db.session.execute(update(User).values(email=unique("new")))
        db.session.commit()
    assert user.client.post("/auth/verify_email", json={"token": token}).status_code == 401


def test_expired_or_forged_verification_token_is_refused(mail_app, smtp_server, monkeypatch):
    email = unique("expired")
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    in_the_past(monkeypatch, 49 * 3600)
    user.client.post("/auth/verify_email/request", headers=user.headers())
    token = link_token(smtp_server.wait_for(email), "verify-email")
    monkeypatch.undo()
    for candidate in (token, token[:-2] + "xx", "not-a-token"):
        response = user.client.post("/auth/verify_email", json={"token": candidate})
        assert response.status_code == 401 and response.is_json


def test_password_reset_link_resets_once_and_ends_every_session(mail_app, smtp_server):
    email = unique("reset")
    phone, laptop = AuthActions(mail_app.test_client()), AuthActions(mail_app.test_client())
    phone.signup(email=email)
    laptop.login(email=email)
    anonymous = mail_app.test_client()
    response = anonymous.post("/auth/password_reset/request", json={"email": email.upper()})
    assert response.status_code == 202
    token = link_token(smtp_server.wait_for(email), "reset-password")

    new = "a completely new secret"
    reset = anonymous.post("/auth/password_reset", json={"token": token, "new_password": new})
    assert reset.status_code == 204
    for device in (phone, laptop):
        assert device.me().status_code == 401
        assert device.refresh().status_code == 401
    assert AuthActions(mail_app.test_client()).login(email=email).status_code == 401
    assert AuthActions(mail_app.test_client()).login(email=email, password=new).status_code == 200
    reused = anonymous.post(
        "/auth/password_reset", json={"token": token, "new_password": "yet another secret"}
    )
    assert reused.status_code == 401 and reused.json["code"] == 401


def test_reset_request_for_an_unknown_email_looks_the_same_and_sends_nothing(mail_app, smtp_server):
    known = unique("known")
    AuthActions(mail_app.test_client()).register(email=known)
    client = mail_app.test_client()
    unknown_email = unique("unknown")
    a = client.post("/auth/password_reset/request", json={"email": known})
    b = client.post("/auth/password_reset/request", json={"email": unknown_email})
    assert a.status_code == b.status_code == 202
    assert a.get_data() == b.get_data()
    smtp_server.wait_for(known)
    assert subjects_to(mail_app, smtp_server, unknown_email) == []


def test_expired_reset_token_is_refused(mail_app, smtp_server, monkeypatch):
    email = unique("old")
    AuthActions(mail_app.test_client()).register(email=email)
    client = mail_app.test_client()
    in_the_past(monkeypatch, 31 * 60)
    client.post("/auth/password_reset/request", json={"email": email})
    token = link_token(smtp_server.wait_for(email), "reset-password")
    monkeypatch.undo()
    response = client.post(
        "/auth/password_reset", json={"token": token, "new_password": "a completely new secret"}
    )
    assert response.status_code == 401
    assert AuthActions(mail_app.test_client()).login(email=email).status_code == 200


def test_reset_applies_the_password_policy(mail_app, smtp_server):
    email = unique("policy")
    AuthActions(mail_app.test_client()).register(email=email)
    client = mail_app.test_client()
    client.post("/auth/password_reset/request", json={"email": email})
    token = link_token(smtp_server.wait_for(email), "reset-password")
    for weak in ("password1", email):
        response = client.post("/auth/password_reset", json={"token": token, "new_password": weak})
        assert response.status_code == 422 and "new_password" in response.json["errors"]
    assert (
        client.post(
            "/auth/password_reset", json={"token": token, "new_password": "fine new secret"}
        ).status_code
        == 204
    )


def test_reset_requests_are_rate_limited(database_url):
    app = make_app(database_url, RATELIMIT_PASSWORD_RESET_PER_EMAIL="2 per hour")
    client = app.test_client()
    for _ in range(2):
        assert client.post("/auth/password_reset/request", json={"email": "x@example.com"}).status_code == 202
    limited = client.post("/auth/password_reset/request", json={"email": "x@example.com"})
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    with app.app_context():
        db.engine.dispose()


def test_without_mail_server_development_logs_the_mail(database_url, caplog):
    app = make_app(database_url, MAIL_SERVER=None, LOG_LEVEL="INFO")
    user = AuthActions(app.test_client())
    user.signup()
    with caplog.at_level("WARNING", logger="trikchi.mail"), background_worker(app):
        assert user.client.post("/auth/verify_email/request", headers=user.headers()).status_code == 202
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            "verify-email?token=" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.02)
    assert any("verify-email?token=" in r.getMessage() for r in caplog.records)
    with app.app_context():
        events = db.session.scalars(select(AuthEvent.type)).all()
        assert "email_verification_requested" in events
        db.session.remove()
        db.engine.dispose()
