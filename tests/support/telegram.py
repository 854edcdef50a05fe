"""Telegram Login widget payloads, signed as Telegram documents it, written out here independently
of trikchi.social.telegram."""

from __future__ import annotations

import hashlib
import hmac
import time

BOT_TOKEN = "123456789:AAF-test-bot-token-for-trikchi-tests"  # noqa: S105 - a test value


def sign(fields: dict, bot_token: str = BOT_TOKEN) -> dict:
    """Sign like Telegram (https://core.telegram.org/widgets/login#checking-authorization),
    written out here independently of trikchi.social.telegram."""
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret = hashlib.sha256(bot_token.encode()).digest()
    return {**fields, "hash": hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()}


def payload(**overrides) -> dict:
    fields = {
        "id": 987654321,
        "first_name": "Alisher",
        "last_name": "Navoiy",
        "username": "alisher",
        "photo_url": "https://t.me/i/userpic/320/alisher.jpg",
        "auth_date": int(time.time()),
    }
    fields.update(overrides)
    return sign({key: value for key, value in fields.items() if value is not None})
