"""Signed link tokens for mailed links (verification, reset, email change): nothing is stored.

Each token is signed with ``SECRET_KEY`` under its own salt per purpose, expires, and
carries a keyed fingerprint of the state it changes (the email, the password hash), so
it is spent the moment that state changes — by the link or any other way.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from trikchi.auth.digests import keyed_digest
from trikchi.errors import ErrorCode, Unauthorized
from trikchi.i18n import N_

INVALID_LINK = N_("This link is invalid, expired or already used.")


def dump_link(salt: str, data: dict[str, Any]) -> str:
    """A signed, timestamped token of ``data`` for the purpose ``salt``."""
    return _serializer(salt).dumps(data)


def load_link(token: str, salt: str, max_age: int) -> dict[str, Any]:
    """The data of a valid, unexpired token with a user id (``uid``); ``Unauthorized`` otherwise."""
    try:
        data = _serializer(salt).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK) from None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    return data


def fingerprint(value: str) -> str:
    """A keyed digest of the state a token is bound to (never the value itself)."""
    return keyed_digest(current_app.config["SECRET_KEY"], value)


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)
