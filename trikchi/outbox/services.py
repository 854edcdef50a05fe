"""Writing deliveries into the current transaction, and the admin's view of them.

Composed mails: a request that may or may not mail (a password reset for an address that may
have no account) queues only the name of its composer and a few secret-free values; the
composer, registered by the feature with ``@composer``, writes the mail in the worker at
sending time, or decides there is nothing to send. The request does the same work either
way, and no live link waits in the outbox.

Webhooks: ``queue_webhooks`` receives every recorded audit event (``signals.event_recorded``)
and adds a delivery per receiver to the event's own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, current_app
from sqlalchemy import delete, func, insert, select

from trikchi import signals
from trikchi.auth.models import MAX_ID
from trikchi.database import utcnow
from trikchi.errors import Conflict, NotFound
from trikchi.events import RecordedEvent
from trikchi.extensions import db
from trikchi.outbox.models import Delivery

_INSERT = insert(Delivery.__table__)


def init_app(_app: Flask) -> None:
    """Queue the webhooks of every recorded event (connected once, whatever the app)."""
    signals.event_recorded.connect(queue_webhooks)


def queue_webhooks(_app: Flask, event: RecordedEvent) -> None:
    """Add the webhook deliveries of a recorded event to its transaction, if it is announced."""
    if webhooks_wanted(event.type):
        body = webhook_body(event.type, event.created_at, event.user_id, event.session_id, event.details)
        enqueue_webhooks(event.id, event.type, body, event.created_at)


def webhooks_wanted(type_: str) -> bool:
    """Whether an event of this type is announced to the configured receivers."""
    config = current_app.config
    if not config["WEBHOOK_URLS"]:
        return False
    wanted = config["WEBHOOK_EVENTS"]
    return not wanted or type_ in wanted


def webhook_body(
    type_: str, created_at: datetime, user_id: int | None, session_id: str | None, details: dict | None
) -> dict[str, Any]:
    """The Standard Webhooks body: ids and the event's (secret-free) details, no personal data."""
    data: dict[str, Any] = {"user_id": user_id, "session_id": session_id}
    for key, value in (details or {}).items():
        data.setdefault(key, value)
    return {"type": type_, "timestamp": created_at.isoformat(), "data": data}


def enqueue_webhooks(event_id: int, type_: str, body: dict[str, Any], now: datetime) -> None:
    """Add one delivery per receiver to the current transaction (the caller commits)."""
    rows = [
        {
            "kind": "webhook",
            "event_id": event_id,
            "event_type": type_,
            "target": url,
            "payload": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for url in current_app.config["WEBHOOK_URLS"]
    ]
    db.session.connection().execute(_INSERT, rows)


def enqueue_mail(to: str, subject: str, text: str, html: str) -> None:
    """Add a mail to the current transaction; the worker sends it once the caller commits."""
    now = utcnow()
    db.session.connection().execute(
        _INSERT,
        {
            "kind": "mail",
            "payload": {"to": to, "subject": subject, "text": text, "html": html},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )


def enqueue_sms(to: str, text: str) -> None:
    """Add an SMS to ``to`` (E.164) to the current transaction; the worker sends it once the caller
    commits, through ``SMS_PROVIDER`` (and ``SMS_FALLBACK_PROVIDER``). The text (a sign-in code)
    is kept only until it is sent."""
    now = utcnow()
    db.session.connection().execute(
        _INSERT,
        {
            "kind": "sms",
            "payload": {"to": to, "text": text},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )


def enqueue_composed_mail(name: str, values: dict[str, Any]) -> None:
    """Add a mail that the worker composes (``composer``) when it sends it."""
    now = utcnow()
    db.session.connection().execute(
        _INSERT,
        {
            "kind": "mail",
            "payload": {"compose": name, "values": values},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )


class ComposedMail(NamedTuple):
    """What a composer makes: the recipient and the rendered mail."""

    to: str
    subject: str
    text: str
    html: str


# name -> composer(values) -> the mail, or None when there is nothing to send.
Composer = Callable[[dict[str, Any]], ComposedMail | None]
_COMPOSERS: dict[str, Composer] = {}


def composer(name: str) -> Callable[[Composer], Composer]:
    """Register the function that writes composed mail ``name`` in the worker (a feature's mail)."""

    def register(function: Composer) -> Composer:
        _COMPOSERS[name] = function
        return function

    return register


def queue_composed_mail(name: str, **values: Any) -> None:
    """Queue mail ``name`` for the worker to compose, in the current transaction (the caller commits).

    ``values`` (JSON, stored until the mail is sent) must hold no secret and no address.
    """
    if name not in _COMPOSERS:
        raise ValueError(f"no composer for mail {name!r}")
    enqueue_composed_mail(name, values)


def compose_mail(payload: dict[str, Any]) -> ComposedMail | None:
    """The worker's side: the mail a queued payload stands for, or None (nothing to send)."""
    return _COMPOSERS[payload["compose"]](payload.get("values") or {})


def forget_mails_to(address: str) -> int:
    """Delete the unsent mails (pending or dead) to ``address`` in the current transaction.

    Account deletion: a mail waiting for a retry would keep the address and the name in its
    body. Sent mails keep only their subject already (the worker strips them).
    """
    return db.session.execute(
        delete(Delivery)
        .where(
            Delivery.kind == "mail",
            Delivery.status != "sent",
            Delivery.payload["to"].as_string() == address,
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def forget_sms_to(number: str) -> int:
    """Delete the unsent SMS (pending or dead) to ``number`` (E.164) in the current transaction.

    Account deletion or a number given up: a waiting SMS keeps the whole number and its text.
    Sent SMS keep only the masked number already (the worker strips them).
    """
    return db.session.execute(
        delete(Delivery)
        .where(
            Delivery.kind == "sms",
            Delivery.status != "sent",
            Delivery.payload["to"].as_string() == number,
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def public_target(url: str | None) -> str | None:
    """A receiver URL without credentials or query string (which may hold a token)."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def list_deliveries(status: str | None, kind: str | None, page: int, per_page: int) -> dict[str, Any]:
    """Deliveries, newest first, optionally of one status and/or kind."""
    stmt = select(Delivery).order_by(Delivery.id.desc())
    if status:
        stmt = stmt.where(Delivery.status == status)
    if kind:
        stmt = stmt.where(Delivery.kind == kind)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def retry_delivery(delivery_id: int) -> Delivery:
    """Give a dead delivery a fresh set of attempts, due now."""
    delivery = (
        db.session.get(Delivery, delivery_id, with_for_update=True) if 1 <= delivery_id <= MAX_ID else None
    )
    if delivery is None:
        raise NotFound("No such delivery.")
    if delivery.status != "dead":
        raise Conflict("Only a dead delivery can be retried.")
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.locked_by = None
    delivery.locked_until = None
    db.session.commit()
    return delivery
