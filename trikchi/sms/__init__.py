"""Sending one SMS through the configured gateway, and the fallback when it fails (SPEC §14).

Only the outbox worker calls ``send`` (``trikchi.outbox.worker``): requests queue an SMS with
``trikchi.outbox.services.enqueue_sms`` in their transaction, never talk to a gateway. The
gateways themselves are in ``trikchi.sms.gateways``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx

from trikchi.sms.gateways import GatewayFailed, gateway

__all__ = ["GatewayFailed", "Sent", "SmsFailed", "SmsNotConfigured", "budget", "mask_number", "send"]

# Shown of a number: the country code and operator prefix (+99890), and the last two digits.
_SHOWN_HEAD = 6
_SHOWN_TAIL = 2


class SmsNotConfigured(RuntimeError):
    """No ``SMS_PROVIDER`` (production's default): the SMS stays in the outbox and is retried."""


class SmsFailed(Exception):
    """No gateway took the message; ``failures`` names each one tried and why (no secrets)."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{provider}: {reason}" for provider, reason in failures))


class Sent(NamedTuple):
    """The gateway that took the message, and those that failed before it."""

    provider: str
    failures: list[tuple[str, str]]


def providers(config: Mapping[str, Any]) -> list[str]:
    """The gateways to try, in order: ``SMS_PROVIDER``, then ``SMS_FALLBACK_PROVIDER``."""
    return [name for name in (config.get("SMS_PROVIDER"), config.get("SMS_FALLBACK_PROVIDER")) if name]


def budget(config: Mapping[str, Any], timeout: float) -> float:
    """The longest one SMS can take to send: ``timeout`` for each gateway tried."""
    return timeout * max(1, len(providers(config)))


def send(
    client: httpx.Client,
    config: Mapping[str, Any],
    to: str,
    text: str,
    message_id: str,
    timeout: float,
) -> Sent:
    """Send ``text`` to ``to`` (E.164) through the first gateway that takes it.

    ``message_id`` stays the same on every attempt of one outbox delivery (Play Mobile's
    ``message-id``). Each gateway has ``timeout`` seconds for all its requests, so the whole
    takes at most ``budget(config, timeout)``. Raises ``SmsNotConfigured`` without a gateway,
    ``SmsFailed`` when every gateway failed.
    """
    names = providers(config)
    if not names:
        raise SmsNotConfigured("SMS_PROVIDER is not set")
    failures: list[tuple[str, str]] = []
    for name in names:
        try:
            gateway(name, config).send(client, to, text, message_id, time.monotonic() + timeout)
        except GatewayFailed as error:
            failures.append((name, str(error)[:80]))
            continue
        return Sent(name, failures)
    raise SmsFailed(failures)


def mask_number(number: str | None) -> str | None:
    """A number as staff may see it: ``+99890*****67`` (the digits between hidden)."""
    if not number:
        return None
    if len(number) <= _SHOWN_HEAD + _SHOWN_TAIL:
        return "*" * (len(number) - _SHOWN_TAIL) + number[-_SHOWN_TAIL:]
    hidden = len(number) - _SHOWN_HEAD - _SHOWN_TAIL
    return number[:_SHOWN_HEAD] + "*" * hidden + number[-_SHOWN_TAIL:]
