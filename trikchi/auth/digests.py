"""The one keyed digest used to bind cookies, links and CSRF values to server secrets."""

from __future__ import annotations

import hashlib
import hmac


def keyed_digest(key: str, message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``key``, shortened to 32 hex characters."""
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()[:32]


def sha256_hex(value: str) -> str:
    """SHA-256 hex of a high-entropy random value (tokens, challenges, codes): how they are stored."""
    return hashlib.sha256(value.encode()).hexdigest()
