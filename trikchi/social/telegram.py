"""Telegram Login: the widget's payload, checked as Telegram documents it.

https://core.telegram.org/widgets/login#checking-authorization:
the data-check-string is every received field but ``hash``, as ``key=value``, sorted by key,
joined by newlines; the expected ``hash`` is its HMAC-SHA256 (hex) under SHA256(bot token).
``auth_date`` must be recent (``TELEGRAM_AUTH_MAX_AGE_SECONDS``), so that an old payload
that leaked (logs, history) does not sign anyone in; and a payload signs in once (SPEC §13):
``claim`` remembers it until it is too old anyway, so a copy taken meanwhile (a proxy's log
or the browser's history, when the widget redirects with it) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from trikchi.auth.digests import sha256_hex
from trikchi.database import utcnow
from trikchi.extensions import db
from trikchi.social.models import UsedTelegramPayload
from trikchi.social.profile import ProviderProfile, clean_name

PROVIDER = "telegram"
# A widget's clock and ours may differ a little; an auth_date further in the future is forged.
# A used payload is also remembered this much longer than it can be accepted: a margin for
# the clocks of several hosts that share the database.
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


def claim(fields: dict[str, Any]) -> None:
    """Remember a payload ``verify`` accepted, in the sign-in's transaction; ``TelegramFailure``
    ("replayed") when it was already used.

    One INSERT keyed by the payload's digest is the claim: of two racing copies one inserts,
    the other waits for its commit (on the uncommitted key in PostgreSQL, on the write lock in
    SQLite) and fails on the key, so exactly one signs in. The row is committed with the
    sign-in; if the sign-in fails before its commit, the claim goes with it and the payload can
    be tried again. One gap: ``services.sign_in`` retries once after a racing first sign-in of
    the same new Telegram user (with another payload) by rolling the whole transaction back,
    this claim included; that payload signs in unclaimed and would be accepted once more.
    """
    now = utcnow()
    # Payloads too old to be accepted are forgotten here rather than in a cron job: one
    # indexed DELETE, so the table holds at most a window's worth of sign-ins.
    db.session.execute(delete(UsedTelegramPayload).where(UsedTelegramPayload.expires_at <= now))
    # ``verify`` bounded auth_date (at most FUTURE_SKEW_SECONDS ahead): a representable time.
    max_age = current_app.config["TELEGRAM_AUTH_MAX_AGE_SECONDS"]
    too_old = int(fields["auth_date"]) + max_age + FUTURE_SKEW_SECONDS
    try:
        db.session.execute(
            insert(UsedTelegramPayload).values(
                hash_digest=payload_digest(fields), expires_at=datetime.fromtimestamp(too_old, UTC)
            )
        )
    except IntegrityError:
        db.session.rollback()
        raise TelegramFailure("replayed") from None


def payload_digest(fields: dict[str, Any]) -> str:
    """The SHA-256 (hex) of the payload's ``hash`` in lowercase: one value per signed payload."""
    return sha256_hex(str(fields["hash"]).lower())
