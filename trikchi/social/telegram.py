"""Telegram Login: the widget's payload, checked as Telegram documents it.

https://core.telegram.org/widgets/login#checking-authorization:
the data-check-string is every received field but ``hash``, as ``key=value``, sorted by key,
joined by newlines; the expected ``hash`` is its HMAC-SHA256 (hex) under SHA256(bot token).
``auth_date`` must be recent (``TELEGRAM_AUTH_MAX_AGE_SECONDS``), so that an old payload
that leaked (logs, history) does not sign anyone in.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from flask import current_app

from trikchi.social.profile import ProviderProfile, clean_name

PROVIDER = "telegram"
# A widget's clock and ours may differ a little; an auth_date further in the future is forged.
FUTURE_SKEW_SECONDS = 60


class TelegramFailure(Exception):
    """The payload is not a genuine, recent Telegram Login; ``reason`` is for the audit log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def data_check_string(fields: dict[str, Any]) -> str:
    """Every field but ``hash`` as ``key=value``, sorted by key, joined with newlines."""
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def signature(bot_token: str, fields: dict[str, Any]) -> str:
    """The hex HMAC-SHA256 of the data-check-string under SHA256(bot token)."""
    secret = hashlib.sha256(bot_token.encode()).digest()
    return hmac.new(secret, data_check_string(fields).encode(), hashlib.sha256).hexdigest()


def verify(fields: dict[str, Any], now: float | None = None) -> ProviderProfile:
    """The Telegram user the payload proves, or ``TelegramFailure``."""
    bot_token = current_app.config["TELEGRAM_BOT_TOKEN"]
    if not bot_token:
        raise TelegramFailure("not_configured")
    expected = signature(bot_token, fields)
    if not hmac.compare_digest(expected.encode(), str(fields.get("hash", "")).lower().encode()):
        raise TelegramFailure("bad_signature")
    age = (time.time() if now is None else now) - int(fields["auth_date"])
    if age > current_app.config["TELEGRAM_AUTH_MAX_AGE_SECONDS"] or age < -FUTURE_SKEW_SECONDS:
        raise TelegramFailure("stale")
    full_name = " ".join(str(fields[key]) for key in ("first_name", "last_name") if fields.get(key))
    return ProviderProfile(
        provider=PROVIDER,
        subject=str(fields["id"]),
        method=PROVIDER,
        name=clean_name(full_name, fields.get("username"), default="Telegram user"),
    )
