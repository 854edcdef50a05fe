"""The outbox worker: claim due deliveries, deliver them outside any transaction, record the outcome.

Claiming is one short transaction that leases a batch to this worker (``status =
delivering``, ``locked_until``). On PostgreSQL it takes the rows with ``FOR UPDATE SKIP
LOCKED``, so workers on several hosts share the work and never hold one row together; on
SQLite one worker runs at a time (``worker_slot``). A worker killed mid-delivery leaves
its rows leased: once ``locked_until`` passes, another claim takes them again — so a
receiver sees each delivery at least once, and a crash loses nothing.

A composed mail (``trikchi.outbox.services.composer``) is written here, just before it is sent; one
whose composer finds nothing to send (a reset for an address with no account) is deleted.
An SMS goes through ``SMS_PROVIDER``, then ``SMS_FALLBACK_PROVIDER`` when the first fails
(``trikchi.sms``). What a delivered row keeps is cut down: a mail its subject (the link in it
is gone), an SMS its masked number and the gateway that took it (the code in it is gone).

Every failure (a non-2xx answer, a timeout, an SMTP error) is retried after an
exponential back-off with jitter, until the kind's maximum number of attempts; then
the delivery is ``dead`` and waits for an admin (``POST /admin/deliveries/<id>/retry``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
from flask import current_app
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from trikchi import sms
from trikchi.database import utcnow
from trikchi.extensions import db
from trikchi.mail import deliver_mail
from trikchi.metrics import count_delivery, count_sms
from trikchi.outbox import webhooks
from trikchi.outbox.models import Delivery
from trikchi.outbox.services import compose_mail
from trikchi.signals import database_failed

log = logging.getLogger(__name__)

_TABLE = Delivery.__table__
# Never start a delivery that could outlive the lease by less than this margin.
LEASE_MARGIN_SECONDS = 1.0
# After a database error, wait at least this long before the next claim.
DATABASE_RETRY_SECONDS = 5.0


class NothingToSend(Exception):  # noqa: N818 - an outcome, not an error
    """A composed mail's composer found nobody to write to: the delivery is dropped."""


class Worker:
    """Delivers the outbox; ``run`` loops, ``deliver_due`` does one claim-and-deliver pass."""

    def __init__(self, batch: int = 10, worker_id: str | None = None) -> None:
        self.batch = batch
        self.id = (worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")[:64]
        self.stopping = threading.Event()
        self._http: httpx.Client | None = None

    def stop(self) -> None:
        """Finish the delivery under way, hand back the rest of the batch, then stop."""
        self.stopping.set()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def run(self, once: bool = False, poll_seconds: float | None = None) -> None:
        """Deliver until stopped (or, with ``once``, until nothing is due)."""
        poll = poll_seconds if poll_seconds is not None else current_app.config["OUTBOX_POLL_SECONDS"]
        try:
            with worker_slot(db.engine, self.stopping, poll):
                while not self.stopping.is_set():
                    try:
                        claimed = self.deliver_due()
                    except SQLAlchemyError:
                        # The database is away: keep the process, try again a little later.
                        log.exception("outbox worker: database error; retrying")
                        database_failed.send(current_app._get_current_object(), kind="worker")  # type: ignore[attr-defined]
                        db.session.remove()
                        if once:
                            raise
                        self.stopping.wait(max(poll, DATABASE_RETRY_SECONDS))
                        continue
                    if once and claimed == 0:
                        break
                    if claimed == 0:
                        self.stopping.wait(poll)
        finally:
            self.close()
            db.session.remove()

    def deliver_due(self) -> int:
        """Claim up to ``batch`` due deliveries and deliver them; returns how many were claimed."""
        config = current_app.config
        lease = config["OUTBOX_LEASE_SECONDS"]
        timeout = config["OUTBOX_TIMEOUT_SECONDS"]
        lease_ends = time.monotonic() + lease
        rows = self._claim(lease)
        for index, row in enumerate(rows):
            longest = sms.budget(config, timeout) if row.kind == "sms" else timeout
            if self.stopping.is_set() or time.monotonic() + longest + LEASE_MARGIN_SECONDS > lease_ends:
                self._release(rows[index:])
                break
            if row.attempts > _max_attempts(row.kind):  # leased by a worker that died on its last attempt
                self._finish(row, "lease expired on the last attempt", retry=False)
                continue
            try:
                kept = self._deliver(row, timeout)
            except NothingToSend:
                self._drop(row)
            except Exception as error:  # noqa: BLE001 - any failure is recorded and retried, never fatal
                self._finish(row, _describe(error))
            else:
                self._finish(row, None, kept=kept)
        return len(rows)

    def _claim(self, lease_seconds: float) -> Sequence[Row[Any]]:
        now = utcnow()
        due = or_(
            and_(_TABLE.c.status == "pending", _TABLE.c.next_attempt_at <= now),
            and_(_TABLE.c.status == "delivering", _TABLE.c.locked_until < now),
        )
        try:
            ids = (
                db.session.execute(
                    select(_TABLE.c.id)
                    .where(due)
                    .order_by(_TABLE.c.next_attempt_at, _TABLE.c.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            if not ids:
                db.session.rollback()
                return []
            # ``due`` again: on SQLite (no row locks) a row taken meanwhile is not taken twice.
            rows = db.session.execute(
                update(_TABLE)
                .where(_TABLE.c.id.in_(ids), due)
                .values(
                    status="delivering",
                    locked_by=self.id,
                    locked_until=now + timedelta(seconds=lease_seconds),
                    attempts=_TABLE.c.attempts + 1,
                )
                .returning(
                    _TABLE.c.id,
                    _TABLE.c.kind,
                    _TABLE.c.target,
                    _TABLE.c.payload,
                    _TABLE.c.attempts,
                    _TABLE.c.event_id,
                )
            ).all()
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return sorted(rows, key=lambda row: row.id)

    def _client(self, timeout: float) -> httpx.Client:
        """This worker's HTTP connection pool (webhook receivers, SMS gateways)."""
        if self._http is None:
            self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        return self._http

    def _deliver(self, row: Row[Any], timeout: float) -> dict[str, Any] | None:
        """Deliver one row; returns what its payload is cut down to once sent (None: kept whole)."""
        config = current_app.config
        if row.kind == "sms":
            return self._send_sms(row, timeout)
        if row.kind == "mail":
            payload = row.payload
            if "compose" in payload:
                try:
                    composed = compose_mail(payload)
                finally:
                    db.session.rollback()  # the composer's reads end here: SMTP runs outside a transaction
                if composed is None:
                    raise NothingToSend
                payload = composed._asdict()
            deliver_mail(payload["to"], payload["subject"], payload["text"], payload["html"], timeout)
            return {"subject": payload["subject"]}  # the link in a sent mail stays out of the database
        if not config.get("WEBHOOK_SECRET"):
            raise webhooks.WebhookFailed("WEBHOOK_SECRET is not set")
        message_id = f"evt_{row.event_id}" if row.event_id is not None else f"out_{row.id}"
        webhooks.send(
            self._client(timeout),
            row.target,
            webhooks.secret_key(config["WEBHOOK_SECRET"]),
            message_id,
            row.payload,
        )
        return None

    def _send_sms(self, row: Row[Any], timeout: float) -> dict[str, Any]:
        """Send an SMS through the gateways, counting each one's outcome; returns what a sent SMS keeps."""
        payload = row.payload
        try:
            sent = sms.send(
                self._client(timeout),
                current_app.config,
                payload["to"],
                payload["text"],
                # The same on every attempt: a gateway that keeps message ids can tell a retry.
                message_id=f"trikchi{row.id}",
                timeout=timeout,
            )
        except sms.SmsFailed as error:
            for provider, _reason in error.failures:
                count_sms(provider, "failed")
            raise
        for provider, _reason in sent.failures:
            count_sms(provider, "failed")
        count_sms(sent.provider, "sent")
        # The text (a sign-in code) and the whole number stay out of the database once sent.
        return {"to": sms.mask_number(payload["to"]), "provider": sent.provider}

    def _finish(
        self, row: Row[Any], error: str | None, retry: bool = True, kept: dict[str, Any] | None = None
    ) -> None:
        """Record the outcome, unless the lease was lost to another worker meanwhile.

        ``kept`` replaces the payload of a sent delivery (a mail's subject, an SMS's masked number).
        """
        now = utcnow()
        values: dict[str, Any] = {"locked_by": None, "locked_until": None}
        if error is None:
            result = "sent"
            values.update(status="sent", sent_at=now, last_error=None)
            if kept is not None:
                values["payload"] = kept
        elif retry and row.attempts < _max_attempts(row.kind):
            result = "failed"
            values.update(status="pending", last_error=error, next_attempt_at=now + backoff(row.attempts))
        else:
            result = "dead"
            values.update(status="dead", last_error=error)
        self._update(row.id, values)
        count_delivery(row.kind, result)
        if error is not None:
            log.warning(
                "delivery %s (%s) %s after attempt %s: %s",
                row.id,
                row.kind,
                "will be retried" if result == "failed" else "is dead",
                row.attempts,
                error,
                extra={"delivery_id": row.id, "kind": row.kind, "result": result},
            )

    def _drop(self, row: Row[Any]) -> None:
        """Delete a composed mail with nothing to send (unless the lease was lost meanwhile)."""
        try:
            db.session.execute(delete(_TABLE).where(_TABLE.c.id == row.id, _TABLE.c.locked_by == self.id))
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        count_delivery(row.kind, "dropped")

    def _release(self, rows: Sequence[Row[Any]]) -> None:
        """Hand back claimed rows not attempted (stopping, or the lease is running out)."""
        for row in rows:
            self._update(
                row.id,
                {"status": "pending", "locked_by": None, "locked_until": None, "attempts": row.attempts - 1},
            )

    def _update(self, delivery_id: int, values: dict[str, Any]) -> None:
        try:
            db.session.execute(
                update(_TABLE)
                .where(_TABLE.c.id == delivery_id, _TABLE.c.locked_by == self.id)
                .values(**values)
            )
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise


def deliver_due(batch: int = 10) -> int:
    """One pass of a fresh worker in the current app context; returns how many were claimed."""
    worker = Worker(batch=batch)
    try:
        return worker.deliver_due()
    finally:
        worker.close()


def backoff(attempts: int) -> timedelta:
    """The wait after failed attempt number ``attempts``: exponential, capped, with jitter."""
    config = current_app.config
    delay = min(config["OUTBOX_RETRY_MAX_SECONDS"], config["OUTBOX_RETRY_BASE_SECONDS"] * 2 ** (attempts - 1))
    # "Equal jitter": between half and all of the delay, so retries of a burst spread out.
    return timedelta(seconds=delay * random.uniform(0.5, 1.0))  # noqa: S311 - not a secret


_MAX_ATTEMPTS = {"webhook": "WEBHOOK_MAX_ATTEMPTS", "sms": "SMS_MAX_ATTEMPTS"}


def _max_attempts(kind: str) -> int:
    return current_app.config[_MAX_ATTEMPTS.get(kind, "OUTBOX_MAX_ATTEMPTS")]


def _describe(error: BaseException) -> str:
    """A short, secret-free description of a failure (never a URL, a body, an address or a number)."""
    if isinstance(error, webhooks.WebhookFailed | sms.SmsFailed | sms.SmsNotConfigured):
        return str(error)[:200]
    code = getattr(error, "smtp_code", None)
    return f"{type(error).__name__} {code}" if code else type(error).__name__


@contextmanager
def worker_slot(engine: Engine, stopping: threading.Event, poll: float) -> Iterator[None]:
    """On an SQLite file, wait for this database's one worker slot (an ``flock``); elsewhere, nothing.

    The kernel drops the lock when the process dies, so a killed worker never blocks the next.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    descriptor = os.open(database + ".worker-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        waiting_logged = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting_logged:
                    log.info("another worker delivers this SQLite database's outbox; waiting")
                    waiting_logged = True
                if stopping.wait(poll):
                    break  # the caller sees ``stopping`` and delivers nothing
        yield
    finally:
        os.close(descriptor)  # releases the lock
