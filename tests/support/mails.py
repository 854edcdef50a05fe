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


def subjects_to(smtp_server, address: str, settle: float = 0.4) -> list[str]:
    """Every subject mailed to ``address``, after letting queued mails arrive."""
    time.sleep(settle)
    return [str(m["Subject"]) for m in smtp_server.messages_to(address)]


def link_token(message: EmailMessage, path: str) -> str:
    """The token of the ``{FRONTEND}/{path}?token=`` link, in both the text and the HTML part."""
    match = re.search(re.escape(f"{FRONTEND}/{path}?token=") + r"([A-Za-z0-9_.\-]+)", text_of(message))
    assert match, text_of(message)
    assert match.group(1) in html_of(message)
    return match.group(1)
