"""SPEC §11: mails leave through the outbox; ``flask worker``; failures are recorded and retried."""

from __future__ import annotations

import socket

from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.conftest import AuthActions, make_app
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.outbox.models import Delivery
from trikchi.outbox.worker import deliver_due


def rows(app) -> list[Delivery]:
    with app.app_context():
        found = list(db.session.scalars(select(Delivery).order_by(Delivery.id)))
        db.session.expunge_all()
        return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_reset_request_writes_a_mail_row_and_an_unknown_address_only_an_event(app):
    client = app.test_client()
    AuthActions(client).register(email="ada@example.com")
    assert client.post("/auth/password_reset/request", json={"email": "ada@example.com"}).status_code == 202
    assert client.post("/auth/password_reset/request", json={"email": "eve@example.com"}).status_code == 202
    (mail,) = rows(app)
    assert mail.kind == "mail" and mail.status == "pending" and mail.payload["to"] == "ada@example.com"
    assert "reset-password?token=" in mail.payload["text"]
    with app.app_context():
        events = db.session.execute(
            select(AuthEvent.user_id, AuthEvent.details).where(AuthEvent.type == "password_reset_requested")
        ).all()
    assert len(events) == 2 and events[1] == (None, {"account": "none"})
    assert "eve@example.com" not in str(events)


def test_a_failed_smtp_delivery_is_retried_later_without_secrets_in_the_error(database_url):
    app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=closed_port(), MAIL_USE_TLS=False)
    failed_before = REGISTRY.get_sample_value(
        "trikchi_outbox_deliveries_total", {"kind": "mail", "result": "failed"}
    )
    client = app.test_client()
    AuthActions(client).register(email="ada@example.com")
    client.post("/auth/password_reset/request", json={"email": "ada@example.com"})
    with app.app_context():
        assert deliver_due() == 1
    (mail,) = rows(app)
    assert mail.status == "pending" and mail.attempts == 1 and mail.last_error == "ConnectionRefusedError"
    assert mail.next_attempt_at > mail.created_at
    failed_after = REGISTRY.get_sample_value(
        "trikchi_outbox_deliveries_total", {"kind": "mail", "result": "failed"}
    )
    assert failed_after - (failed_before or 0) == 1
    with app.app_context():
        db.engine.dispose()


def test_production_without_mail_server_keeps_the_mail(database_url):
    app = make_app(database_url)
    app.config.update(TRIKCHI_CONFIG="production", MAIL_SERVER=None)
    client = app.test_client()
    AuthActions(client).register(email="ada@example.com")
    client.post("/auth/password_reset/request", json={"email": "ada@example.com"})
    with app.app_context():
        deliver_due()
    (mail,) = rows(app)
    assert mail.status == "pending" and mail.last_error == "MailNotConfigured"
    with app.app_context():
        db.engine.dispose()


def test_flask_worker_once_delivers_what_is_due(app, runner, caplog):
    client = app.test_client()
    AuthActions(client).register(email="ada@example.com")
    client.post("/auth/password_reset/request", json={"email": "ada@example.com"})
    with caplog.at_level("WARNING", logger="trikchi.mail"):
        result = runner.invoke(args=["worker", "--once", "--poll-interval", "0.05"])
    assert result.exit_code == 0, result.output
    assert "stopped" in result.output
    assert any("reset-password?token=" in record.getMessage() for record in caplog.records)
    (mail,) = rows(app)
    assert mail.status == "sent" and set(mail.payload) == {"subject"}


def test_database_errors_are_counted(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/missing/dir/trikchi.db")
    before = REGISTRY.get_sample_value("trikchi_database_errors_total", {"kind": "unavailable"}) or 0
    response = app.test_client().post("/auth/login", json={"email": "a@example.com", "password": "x" * 12})
    assert response.status_code == 503
    assert REGISTRY.get_sample_value("trikchi_database_errors_total", {"kind": "unavailable"}) - before == 1
