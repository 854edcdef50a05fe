"""Standard Webhooks (standardwebhooks.com): signing and sending one webhook.

``webhook-signature`` is ``v1,`` + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")),
where the key is the base64 after ``whsec_`` in ``WEBHOOK_SECRET``. The id stays the same
across retries (receivers deduplicate on it); the timestamp is that of the attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx


class WebhookFailed(Exception):
    """The receiver did not take the webhook; the message is safe to store (no URL, no body)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def send(client: httpx.Client, url: str, key: bytes, message_id: str, payload: dict[str, Any]) -> None:
    """POST one signed webhook; any answer but 2xx, a timeout or a network error raises ``WebhookFailed``."""
    body = encode(payload)
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "trikchi-webhooks",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id, timestamp, body),
    }
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise WebhookFailed("timeout") from None
    except httpx.HTTPError as error:
        raise WebhookFailed(type(error).__name__) from None
    if not 200 <= response.status_code < 300:
        raise WebhookFailed(f"HTTP {response.status_code}")
