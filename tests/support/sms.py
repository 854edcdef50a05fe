"""SMS codes as a test reads them.

- ``code_from_gateway``: from what a gateway stand-in (tests/support/sms_gateways.py: Eskiz, Play
  Mobile) received — the SMS went through the outbox and the real worker, as a customer's phone
  would get it. The tests that run trikchi as processes (gunicorn and ``flask worker``) read
  codes so.
- ``sms_code_for``: from what trikchi queued (the newest SMS delivery of the outbox to the number:
  trikchi's own data, not a mock), for the in-process tests, where no worker runs.
"""

from __future__ import annotations

import re
import time

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


def gateway_texts_to(standin, phone: str) -> list[str]:
    """The texts a gateway stand-in took (answered 2xx) for ``phone`` (E.164), oldest first."""
    digits = phone.removeprefix("+")
    return [message.text for message in standin.delivered() if message.phone == digits]


def code_from_gateway(standin, phone: str, timeout: float = 30, seen: int = 0) -> str:
    """The 6 digits of the newest SMS the stand-in took for ``phone`` (E.164), once it has taken more
    than ``seen`` (how many the test had read before asking again) — within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        texts = gateway_texts_to(standin, phone)
        if len(texts) > seen:
            match = CODE.search(texts[-1])
            assert match, texts[-1]
            return match.group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway took no new SMS to {phone} within {timeout}s")
        time.sleep(0.05)
