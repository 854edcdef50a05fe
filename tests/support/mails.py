"""Helpers for tests that read mails from the SMTP server fixture."""

from __future__ import annotations

import re
import time
from email.message import EmailMessage

FRONTEND = "https://shop.trikchi.uz"


def unique(tag: str) -> str:
    """An address no other test uses (the SMTP server lives for the whole run)."""
    return f"{tag}-{time.monotonic_ns()}@example.com"


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def wait_for_subject(
    smtp_server, address: str, subject: str, count: int = 1, timeout: float = 30
) -> EmailMessage:
    """The ``count``-th mail to ``address`` whose subject contains ``subject``, once it has come."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        matching = [m for m in smtp_server.messages_to(address) if subject in str(m["Subject"])]
        if len(matching) >= count:
            return matching[count - 1]
        time.sleep(0.02)
    seen = [str(m["Subject"]) for m in smtp_server.messages_to(address)]
    raise AssertionError(f"no mail #{count} {subject!r} to {address} within {timeout}s (got {seen})")


def subjects_to(app, smtp_server, address: str, timeout: float = 30) -> list[str]:
    """Every subject mailed to ``address`` once the outbox holds no mail still to send: whatever
    was going to reach the SMTP server has (no fixed wait, and a negative check means something)."""
    from sqlalchemy import func, select

    from trikchi.extensions import db
    from trikchi.outbox.models import Delivery

    deadline = time.monotonic() + timeout
    with app.app_context():
        while True:
            waiting = db.session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.kind == "mail", Delivery.status.in_(("pending", "delivering")))
            )
            db.session.rollback()
            if waiting == 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{waiting} mail(s) still in the outbox after {timeout}s")
            time.sleep(0.02)
    return [str(m["Subject"]) for m in smtp_server.messages_to(address)]


def link_token(message: EmailMessage, path: str) -> str:
    """The token of the ``{FRONTEND}/{path}?token=`` link, in both the text and the HTML part."""
    match = re.search(re.escape(f"{FRONTEND}/{path}?token=") + r"([A-Za-z0-9_.\-]+)", text_of(message))
    assert match, text_of(message)
    assert match.group(1) in html_of(message)
    return match.group(1)
