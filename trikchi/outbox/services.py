"""Writing deliveries into the current transaction, and the admin's view of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import current_app
from sqlalchemy import delete, func, insert, select

from trikchi.auth.models import MAX_ID
from trikchi.database import utcnow
from trikchi.errors import Conflict, NotFound
from trikchi.extensions import db
from trikchi.outbox.models import Delivery

_INSERT = insert(Delivery.__table__)


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


def enqueue_composed_mail(name: str, values: dict[str, Any]) -> None:
    """Add a mail that the worker composes (``trikchi.mails.composer``) when it sends it."""
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
