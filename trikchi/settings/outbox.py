"""The outbox: mails and webhooks written with the request, delivered by ``flask worker`` (SPEC §11)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlsplit

from trikchi.settings.base import ConfigError, Derived, Integer, Items, Section, Text

HOW_TO_MAKE_A_WEBHOOK_KEY = (
    "generate one with: python -c 'import base64,secrets;"
    ' print("whsec_"+base64.b64encode(secrets.token_bytes(32)).decode())\''
)


class Receivers(Items):
    """http(s) URLs of webhook receivers."""

    def check_item(self, item: str, raw: str, default: Any) -> None:
        parts = urlsplit(item)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise self.refuse(raw, default, "comma-separated http(s) URLs")


class Outbox(Section):
    """Webhook receivers and the worker's attempts, timeouts and retries."""

    title = "Webhooks and the outbox"

    WEBHOOK_URLS = Receivers(None, "comma-separated http(s) receivers; one delivery per receiver and event")
    WEBHOOK_SECRET = Text(
        None,
        "`whsec_` + base64 of ≥ 24 random bytes, signing every delivery (Standard Webhooks); required with"
        " `WEBHOOK_URLS`",
        secret=True,
    )
    WEBHOOK_EVENTS = Items(
        Derived("every event", lambda v: []),
        "comma-separated event types to send (`registered`, `login_succeeded`, `login_failed`,"
        " `refresh_reuse_detected`, …)",
    )
    OUTBOX_MAX_ATTEMPTS = Integer(8, "attempts before a mail is dead", minimum=1)
    WEBHOOK_MAX_ATTEMPTS = Integer(
        Derived("`OUTBOX_MAX_ATTEMPTS`", lambda v: v["OUTBOX_MAX_ATTEMPTS"]),
        "attempts before a webhook delivery is dead",
        minimum=1,
    )
    OUTBOX_TIMEOUT_SECONDS = Integer(10, "one HTTP request or SMTP conversation, seconds", minimum=1)
    # A crashed worker's deliveries are retried when their lease ends.
    OUTBOX_LEASE_SECONDS = Integer(
        60, "how long a claimed delivery stays with its worker (≥ `OUTBOX_TIMEOUT_SECONDS` + 2)", minimum=2
    )
    OUTBOX_RETRY_BASE_SECONDS = Integer(30, "retry *n* waits ½–1 × base × 2ⁿ⁻¹ seconds")
    OUTBOX_RETRY_MAX_SECONDS = Integer(3600, "the longest wait between two attempts, seconds", minimum=1)
    OUTBOX_POLL_SECONDS = Integer(1, "the worker's idle poll interval, seconds", minimum=1)

    def check(self) -> None:
        if self.WEBHOOK_URLS:
            secret = self.WEBHOOK_SECRET or ""
            if not secret.startswith("whsec_"):
                raise ConfigError(
                    "WEBHOOK_SECRET must be set to a whsec_... secret when WEBHOOK_URLS is set;"
                    f" {HOW_TO_MAKE_A_WEBHOOK_KEY}"
                )
            try:
                key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(
                    f"WEBHOOK_SECRET must be whsec_ followed by base64; {HOW_TO_MAKE_A_WEBHOOK_KEY}"
                ) from None
            if len(key) < 24:
                raise ConfigError(
                    f"WEBHOOK_SECRET must hold at least 24 random bytes; {HOW_TO_MAKE_A_WEBHOOK_KEY}"
                )
        # A delivery starts only if it can time out a second before its lease ends.
        if self.OUTBOX_LEASE_SECONDS < self.OUTBOX_TIMEOUT_SECONDS + 2:
            raise ConfigError(
                f"OUTBOX_LEASE_SECONDS must be at least OUTBOX_TIMEOUT_SECONDS + 2"
                f" ({self.OUTBOX_TIMEOUT_SECONDS + 2}); raise it, or lower OUTBOX_TIMEOUT_SECONDS"
            )
