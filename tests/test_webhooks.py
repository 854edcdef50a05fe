"""SPEC §11: signed webhooks through the outbox, checked by the Standard Webhooks reference package."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD, AuthActions, make_app
from tests.support.webhooks import SECRET, Receiver, body_of
from trikchi.auth.models import User
from trikchi.database import utcnow
from trikchi.events import AuthEvent, Events, record_event
from trikchi.extensions import db
from trikchi.outbox.models import Delivery
from trikchi.outbox.worker import deliver_due


@pytest.fixture
def hook_app(database_url, receiver):
    app = make_app(
        database_url,
        NOTIFY_NEW_DEVICE=False,
        MFA_REQUIRED_ROLES=[],
        WEBHOOK_URLS=[receiver.url],
        WEBHOOK_SECRET=SECRET,
        OUTBOX_RETRY_BASE_SECONDS=30,
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def auth(hook_app):
    """A browser of the webhook-sending app."""
    return AuthActions(hook_app.test_client())


def deliver(app) -> int:
    with app.app_context():
        return deliver_due()


def deliveries(app) -> list[Delivery]:
    with app.app_context():
        rows = db.session.scalars(select(Delivery).order_by(Delivery.id)).all()
        db.session.expunge_all()
        return list(rows)


def make_due(app) -> None:
    """Skip the back-off: every pending delivery is due now."""
    with app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def admin_of(app) -> AuthActions:
    admin = AuthActions(app.test_client())
    admin.register(email="boss@example.com", name="Boss")
    with app.app_context():
        db.session.execute(update(User).where(User.email == "boss@example.com").values(role="admin"))
        db.session.commit()
    assert admin.login(email="boss@example.com").status_code == 200
    return admin


def test_events_are_delivered_signed_with_ids_and_no_personal_data(hook_app, auth, receiver):
    auth.signup(email="ada@example.com")
    assert receiver.received == []  # nothing leaves during the request
    assert deliver(hook_app) == 2

    delivered = receiver.delivered()
    with hook_app.app_context():
        events = {e.type: e for e in db.session.scalars(select(AuthEvent))}
    registered, signed_in = events["registered"], events["login_succeeded"]
    assert set(delivered) == {f"evt_{registered.id}", f"evt_{signed_in.id}"}
    login = delivered[f"evt_{signed_in.id}"]
    assert login.verified and login.headers["content-type"] == "application/json"
    body = body_of(login)
    assert body["type"] == "login_succeeded" and body["timestamp"]
    assert body["data"] == {
        "user_id": signed_in.user_id,
        "session_id": signed_in.session_id,
        "method": "password",
    }
    assert b"ada@example.com" not in login.body and b"Ada" not in login.body
    assert all(d.status == "sent" and d.attempts == 1 and d.sent_at for d in deliveries(hook_app))
    assert deliver(hook_app) == 0  # delivered once, not again


def test_a_receiver_with_another_secret_refuses_the_signature(database_url, receiver):
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    app = make_app(
        database_url,
        NOTIFY_NEW_DEVICE=False,
        MFA_REQUIRED_ROLES=[],
        WEBHOOK_URLS=[receiver.url],
        WEBHOOK_SECRET=other,
    )
    AuthActions(app.test_client()).register()
    deliver(app)
    assert [r.verified for r in receiver.received] == [False]
    (delivery,) = deliveries(app)
    assert delivery.status == "pending" and delivery.last_error == "HTTP 400"
    with app.app_context():
        db.engine.dispose()


def test_retry_after_a_5xx_with_backoff_and_the_same_webhook_id(hook_app, auth, receiver):
    receiver.answer = lambda _id, attempt: 503 if attempt == 1 else 204
    auth.register()
    before = utcnow()
    deliver(hook_app)
    after = utcnow()
    (delivery,) = deliveries(hook_app)
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_error == "HTTP 503"
    # The first retry waits OUTBOX_RETRY_BASE_SECONDS, give or take the jitter (half to all of it),
    # from the attempt, which was between before and after.
    assert before + timedelta(seconds=15) <= delivery.next_attempt_at <= after + timedelta(seconds=30)
    assert deliver(hook_app) == 0  # not due yet

    make_due(hook_app)
    assert deliver(hook_app) == 1
    (delivery,) = deliveries(hook_app)
    assert delivery.status == "sent" and delivery.attempts == 2
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id == f"evt_{delivery.event_id}"
    assert first.verified and second.verified
    assert [r.status for r in receiver.received] == [503, 204]


def test_dead_letter_after_the_last_attempt_then_an_admin_retries_it(hook_app, receiver):
    hook_app.config.update(WEBHOOK_MAX_ATTEMPTS=3)
    admin = admin_of(hook_app)
    with hook_app.app_context():
        db.session.execute(update(Delivery).values(status="sent"))  # the admin's own sign-up events
        db.session.commit()
    receiver.received.clear()
    receiver.answer = lambda _id, _attempt: 500
    AuthActions(hook_app.test_client()).register(email="c@example.com")
    for _ in range(3):
        make_due(hook_app)
        assert deliver(hook_app) == 1
    make_due(hook_app)
    assert deliver(hook_app) == 0
    dead = [d for d in deliveries(hook_app) if d.status == "dead"]
    assert len(dead) == 1 and dead[0].attempts == 3 and dead[0].last_error == "HTTP 500"
    assert len(receiver.received) == 3

    listed = admin.client.get("/admin/deliveries?status=dead", headers=admin.headers())
    assert listed.status_code == 200
    assert listed.json["total"] == 1
    item = listed.json["items"][0]
    assert item["id"] == dead[0].id and item["kind"] == "webhook" and item["event_type"] == "registered"
    assert item["target"] == receiver.url and item["last_error"] == "HTTP 500" and "payload" not in item

    receiver.answer = lambda _id, _attempt: 200
    retried = admin.client.post(f"/admin/deliveries/{dead[0].id}/retry", headers=admin.headers())
    assert (
        retried.status_code == 200 and retried.json["status"] == "pending" and retried.json["attempts"] == 0
    )
    assert deliver(hook_app) == 1
    assert f"evt_{dead[0].event_id}" in receiver.delivered()
    again = admin.client.post(f"/admin/deliveries/{dead[0].id}/retry", headers=admin.headers())
    assert again.status_code == 409 and again.json["error"] == "conflict"
    missing = admin.client.post("/admin/deliveries/999999/retry", headers=admin.headers())
    assert missing.status_code == 404 and missing.json["error"] == "not_found"


def test_deliveries_api_is_for_admins_only(hook_app, auth):
    auth.signup()
    assert auth.client.get("/admin/deliveries").status_code == 401
    response = auth.client.get("/admin/deliveries", headers=auth.headers())
    assert response.status_code == 403 and response.json["error"] == "forbidden"
    assert auth.client.post("/admin/deliveries/1/retry", headers=auth.headers()).status_code == 403
    admin = admin_of(hook_app)
    bad = admin.client.get("/admin/deliveries?status=lost", headers=admin.headers())
    assert bad.status_code == 422 and "status" in bad.json["errors"]


def test_a_rolled_back_event_sends_no_webhook(hook_app, receiver):
    with hook_app.app_context():
        record_event(Events.LOGOUT, None, user_id=None)
        db.session.rollback()
        assert db.session.scalars(select(Delivery)).all() == []
        record_event(Events.LOGOUT, None, user_id=None)
        db.session.commit()
    assert deliver(hook_app) == 1 and len(receiver.delivered()) == 1


def test_webhook_events_filter_and_one_delivery_per_receiver(database_url, receiver):
    second = Receiver().start()
    try:
        app = make_app(
            database_url,
            NOTIFY_NEW_DEVICE=False,
            MFA_REQUIRED_ROLES=[],
            WEBHOOK_URLS=[receiver.url, second.url + "?token=abc"],
            WEBHOOK_SECRET=SECRET,
            WEBHOOK_EVENTS=["login_succeeded"],
        )
        AuthActions(app.test_client()).signup()
        assert deliver(app) == 2
        assert [body_of(r)["type"] for r in receiver.received] == ["login_succeeded"]
        assert [body_of(r)["type"] for r in second.received] == ["login_succeeded"]
        assert receiver.received[0].webhook_id == second.received[0].webhook_id
        with app.app_context():
            db.engine.dispose()
    finally:
        second.stop()


def test_password_is_never_in_a_webhook(hook_app, auth, receiver):
    auth.signup()
    auth.client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long secret"},
        headers=auth.headers(),
    )
    deliver(hook_app)
    assert receiver.received and all(PASSWORD.encode() not in r.body for r in receiver.received)
