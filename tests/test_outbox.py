"""SPEC §11: mails leave through the outbox; ``flask worker``; failures are recorded and retried."""

from __future__ import annotations

import socket

from prometheus_client import REGISTRY
from sqlalchemy import event, select

import trikchi.mails
from tests.conftest import AuthActions, make_app
from trikchi.auth.models import User
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


def test_a_reset_request_queues_the_same_mail_row_for_any_address_and_the_worker_decides(app, caplog):
    client = app.test_client()
    AuthActions(client).register(email="ada@example.com")
    assert client.post("/auth/password_reset/request", json={"email": "ada@example.com"}).status_code == 202
    assert client.post("/auth/password_reset/request", json={"email": "eve@example.com"}).status_code == 202
    known, unknown = rows(app)
    for mail in (known, unknown):
        # No address, no link: the worker writes the mail when it sends it.
        assert mail.kind == "mail" and mail.status == "pending" and mail.target is None
        assert set(mail.payload) == {"compose", "values"} and mail.payload["compose"] == "password_reset"
        assert set(mail.payload["values"]) == {"user_id", "locale"}
    assert unknown.payload["values"] == {"user_id": None, "locale": "en"}
    assert "eve@example.com" not in str(unknown.payload) and "token" not in str(known.payload)
    with app.app_context():
        events = db.session.execute(
            select(AuthEvent.user_id, AuthEvent.details).where(AuthEvent.type == "password_reset_requested")
        ).all()
    assert len(events) == 2 and events[1] == (None, {"account": "none"})
    assert "eve@example.com" not in str(events)

    with caplog.at_level("WARNING", logger="trikchi.mail"), app.app_context():
        assert deliver_due() == 2
    (sent,) = rows(app)  # the mail for no account is dropped, not sent
    assert sent.id == known.id and sent.status == "sent" and set(sent.payload) == {"subject"}
    (logged,) = [r.getMessage() for r in caplog.records if "reset-password?token=" in r.getMessage()]
    assert "To: ada@example.com" in logged


def test_a_reset_request_runs_the_same_statements_whether_or_not_the_account_exists(app, monkeypatch):
    """The structure behind equal timing: the same queries and writes, and no mail rendered."""
    client = app.test_client()
    AuthActions(client).register(email="ada@example.com")
    AuthActions(client).register(email="off@example.com")
    with app.app_context():
        db.session.execute(
            User.__table__.update().where(User.email == "off@example.com").values(is_active=False)
        )
        db.session.commit()
        engine = db.engine
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(" ".join(statement.split()))

    rendered = []
    real_render = trikchi.mails.render_mail

    def spy(*args, **kwargs):
        rendered.append(args)
        return real_render(*args, **kwargs)

    def run(email: str) -> tuple[list[str], int]:
        statements.clear()
        rendered.clear()
        assert client.post("/auth/password_reset/request", json={"email": email}).status_code == 202
        return list(statements), len(rendered)

    monkeypatch.setattr(trikchi.mails, "render_mail", spy)
    monkeypatch.setattr("trikchi.account.services.render_mail", spy)
    event.listen(engine, "before_cursor_execute", record)
    try:
        known = run("ada@example.com")
        unknown = run("nobody@example.com")
        inactive = run("off@example.com")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert known[0] and any(s.startswith("INSERT INTO outbox") for s in known[0])
    assert known == unknown == inactive
    assert known[1] == 0  # nothing rendered in the request, for anyone


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
