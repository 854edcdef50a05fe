"""SPEC §11: a crash loses nothing. Real ``flask worker`` processes, killed with SIGKILL.

Each delivery is leased to the worker that claimed it; a killed worker's lease runs out
and the next worker delivers again — at least once, never lost. Two workers on
PostgreSQL never hold one delivery together; on SQLite they take turns.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest
from sqlalchemy import select

from tests.conftest import AuthActions, make_app
from tests.support.webhooks import SECRET
from tests.support.workers import LEASE, Workers
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.outbox.models import Delivery

pytestmark = pytest.mark.slow


@pytest.fixture
def workers(database_url, tmp_path):
    group = Workers(database_url, tmp_path)
    yield group
    group.stop_all()


@pytest.fixture
def events_app(database_url, receiver):
    app = make_app(database_url, WEBHOOK_URLS=[receiver.url], WEBHOOK_SECRET=SECRET)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def add_events(app, count: int) -> None:
    with app.app_context():
        for _ in range(count):
            record_event(Events.LOGOUT, None)
        db.session.commit()


def statuses(app) -> list[str]:
    with app.app_context():
        result = list(db.session.scalars(select(Delivery.status).order_by(Delivery.id)))
        db.session.rollback()
        return result


def wait_until(condition, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not met within {timeout}s")


def test_a_worker_killed_mid_delivery_loses_no_event(events_app, receiver, workers):
    add_events(events_app, 3)
    release = threading.Event()
    first_seen = threading.Event()

    def answer(_webhook_id: str, _attempt: int) -> int:
        if not first_seen.is_set():
            first_seen.set()
            release.wait(30)  # hold the first delivery until its worker is dead
        return 200

    receiver.answer = answer
    doomed = workers.start(WEBHOOK_URLS=receiver.url, WEBHOOK_SECRET=SECRET)
    assert first_seen.wait(30), workers.log(0)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    release.set()
    assert statuses(events_app).count("delivering") >= 1  # leased to a dead worker

    survivor = workers.start(WEBHOOK_URLS=receiver.url, WEBHOOK_SECRET=SECRET)
    wait_until(lambda: statuses(events_app) == ["sent"] * 3, timeout=LEASE + 30, what="all sent")
    with events_app.app_context():
        event_ids = {f"evt_{i}" for i in db.session.scalars(select(Delivery.event_id))}
    assert set(receiver.delivered()) == event_ids  # every event arrived (verified, answered 2xx)
    first_id = receiver.received[0].webhook_id
    assert sum(r.webhook_id == first_id for r in receiver.received) == 2  # at least once: delivered again
    assert receiver.max_in_flight_per_id == 1

    survivor.send_signal(signal.SIGTERM)  # graceful stop
    assert survivor.wait(timeout=15) == 0
    assert "SIGTERM" in workers.log(1)


def test_a_worker_killed_before_a_mail_is_sent_loses_no_mail(database_url, smtp_server, workers):
    # An SMTP server that accepts the connection and then says nothing: the worker waits in it.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    silent.settimeout(30)
    app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    email = f"crash-{time.monotonic_ns()}@example.com"
    client = app.test_client()
    AuthActions(client).register(email=email)
    assert client.post("/auth/password_reset/request", json={"email": email}).status_code == 202
    assert smtp_server.messages_to(email) == []  # the request sent nothing itself

    doomed = workers.start(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=str(silent.getsockname()[1]), MAIL_USE_TLS="false"
    )
    connection, _ = silent.accept()  # the worker is in the SMTP conversation, the mail not sent
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    connection.close()
    silent.close()
    assert statuses(app) == ["delivering"]

    workers.start(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_server.port), MAIL_USE_TLS="false")
    message = smtp_server.wait_for(email, timeout=LEASE + 30)
    assert "reset-password?token=" in message.get_body(preferencelist=("plain",)).get_content()
    wait_until(lambda: statuses(app) == ["sent"], what="mail marked sent")
    with app.app_context():
        (payload,) = db.session.scalars(select(Delivery.payload))
        assert set(payload) == {"subject"}  # the sent link is not kept
        db.session.remove()
        db.engine.dispose()


def test_two_workers_never_deliver_one_item_together(backend, events_app, receiver, workers):
    def answer(_webhook_id: str, _attempt: int) -> int:
        time.sleep(0.1)
        return 200

    receiver.answer = answer
    # A lease far longer than the run: no item may be delivered twice by an expired lease.
    for _ in range(2):
        workers.start(WEBHOOK_URLS=receiver.url, WEBHOOK_SECRET=SECRET, OUTBOX_LEASE_SECONDS="60")
    for index in range(2):  # both running before there is work, so they can overlap
        wait_until(lambda i=index: "delivering the outbox" in workers.log(i), what=f"worker {index} up")
    add_events(events_app, 24)
    wait_until(lambda: statuses(events_app) == ["sent"] * 24, timeout=60, what="all sent")
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == len(set(ids)) == 24  # each once: no lease expired, no item taken twice
    assert receiver.max_in_flight_per_id == 1
    if backend == "postgresql":
        assert receiver.max_in_flight == 2  # both delivered at the same time, different items
    else:
        assert receiver.max_in_flight == 1  # SQLite: one worker at a time
