"""Every auth event of SPEC §4 is recorded — without passwords or tokens."""

from __future__ import annotations

import json
from datetime import timedelta

import jwt
from sqlalchemy import select

from tests.conftest import PASSWORD
from trikchi.auth.models import AuthSession, RefreshToken
from trikchi.events import AuthEvent
from trikchi.extensions import db


def test_every_event_kind_is_recorded_without_secrets(app, make_auth):
    secrets: set[str] = {PASSWORD, "a brand new secret", "wrong password here"}
    main, other, thief = make_auth(), make_auth(), make_auth()
    main.client.environ_base["HTTP_USER_AGENT"] = "Browser/1.0"

    secrets.add(main.signup().json["access_token"])  # registered, login_succeeded
    assert main.login(password="wrong password here").status_code == 401  # login_failed
    main.login()
    stolen = (main.refresh_cookie(), main.csrf_cookie())
    secrets.update(stolen)
    assert main.refresh().status_code == 200  # on the session row, not an event (SPEC §4)
    secrets.update({main.refresh_cookie(), main.access_token})
    refreshed_sid = jwt.decode(main.access_token, options={"verify_signature": False})["sid"]
    with app.app_context():
        for token in db.session.scalars(select(RefreshToken).where(RefreshToken.used_at.is_not(None))):
            token.used_at -= timedelta(seconds=60)
        db.session.commit()
    thief.client.set_cookie("refresh_token", stolen[0])
    thief.client.set_cookie("csrf_refresh_token", stolen[1])
    assert thief.refresh().status_code == 401  # refresh_reuse_detected

    main.login()
    other.login()
    assert other.logout().status_code == 200  # logout
    third = make_auth()
    third.login()
    sid = jwt.decode(third.access_token, options={"verify_signature": False})["sid"]
    assert main.client.delete(f"/auth/sessions/{sid}", headers=main.headers()).status_code == 204
    assert (
        main.client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new secret"},
            headers=main.headers(),
        ).status_code
        == 204
    )
    assert main.client.post("/auth/logout_all", headers=main.headers()).status_code == 204

    with app.app_context():
        events = db.session.scalars(select(AuthEvent).order_by(AuthEvent.id)).all()
        kinds = {event.type for event in events}
        assert kinds >= {
            "registered",
            "login_succeeded",
            "login_failed",
            "refresh_reuse_detected",
            "logout",
            "session_revoked",
            "password_changed",
            "logout_all",
        }
        for event in events:
            assert event.created_at is not None and event.created_at.tzinfo is not None
            assert event.ip == "127.0.0.1"
            assert event.user_id == 1
            dump = json.dumps(
                [event.type, event.session_id, event.ip, event.user_agent, event.details], default=str
            )
            for secret in secrets:
                assert secret not in dump
        assert any(event.user_agent == "Browser/1.0" for event in events)
        assert "refresh" not in kinds
        refreshed = db.session.get(AuthSession, refreshed_sid)
        assert refreshed.rotation_count == 1
        assert (refreshed.last_ip, refreshed.last_user_agent) == ("127.0.0.1", "Browser/1.0")


def test_failed_login_for_an_unknown_email_is_recorded_without_the_email_or_password(app, client):
    client.post("/auth/login", json={"email": "ghost@example.com", "password": "some password 1"})
    with app.app_context():
        event = db.session.scalar(select(AuthEvent))
        assert event.type == "login_failed" and event.user_id is None
        assert "some password 1" not in json.dumps(event.details)
