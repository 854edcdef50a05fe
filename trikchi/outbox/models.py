"""One row per delivery: a webhook to one receiver, one mail, or one SMS."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from trikchi.database import NEVER_REUSE_IDS, UTCDateTime, utcnow
from trikchi.extensions import db

KINDS = ("webhook", "mail", "sms")
# pending → delivering (leased to one worker) → sent | pending (retry later) | dead (gave up).
STATUSES = ("pending", "delivering", "sent", "dead")


class Delivery(db.Model):
    """A webhook, a mail or an SMS waiting for, undergoing or done with delivery."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        NEVER_REUSE_IDS,  # a mail's Message-ID is out_<id>, and /admin/deliveries/<id> names one
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    # The audit event a webhook announces (its webhook-id is ``evt_<event_id>``); none for mails.
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The receiver's URL (webhooks); mails and SMS carry their recipient in the payload.
    target: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    # Webhook: the JSON body. Mail: to, subject, text, html, or a composed mail's compose + values
    # (written by the worker when sent, trikchi.mails); cut down to the subject once sent.
    # SMS: to (E.164) and text; cut down to the masked number and the gateway once sent.
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The worker holding the delivery and until when; an expired lease (a crashed worker) is retried.
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What went wrong last ("HTTP 503", "timeout", an exception's class): never a secret or a body.
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"<Delivery {self.id} {self.kind} {self.status}>"
