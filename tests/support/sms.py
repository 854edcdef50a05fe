"""SMS codes as a test reads them.

Until the gateways' stand-ins (Eskiz, Play Mobile) are wired, the code is read from what trikchi
queued: the newest SMS delivery of the outbox to the number (trikchi's own data, not a mock).
Switch ``sms_code_for`` to the gateway stand-in's received messages, and every test follows.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from trikchi.extensions import db
from trikchi.outbox.models import Delivery

CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def sms_texts_to(app, phone: str) -> list[str]:
    """The texts of every SMS queued to ``phone`` (E.164), oldest first."""
    with app.app_context():
        payloads = db.session.scalars(
            select(Delivery.payload).where(Delivery.kind == "sms").order_by(Delivery.id)
        ).all()
        db.session.remove()
    return [payload["text"] for payload in payloads if payload.get("to") == phone]


def sms_code_for(app, phone: str) -> str:
    """The 6 digits of the newest SMS queued to ``phone`` (E.164)."""
    texts = sms_texts_to(app, phone)
    assert texts, f"no SMS to {phone}"
    match = CODE.search(texts[-1])
    assert match, texts[-1]
    return match.group(1)
