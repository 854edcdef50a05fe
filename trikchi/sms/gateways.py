"""The SMS gateways: small adapters over an httpx client, each speaking its provider's documented HTTP.

- ``log``: writes the message to the log and sends nothing (development only; production refuses it).
- ``eskiz`` (notify.eskiz.uz): a token from ``POST {base}/auth/login`` (form ``email``,
  ``password`` → ``{"data": {"token"}}``), kept for the process and shared by its threads,
  renewed when a send answers 401; a message is ``POST {base}/message/sms/send`` with
  ``Authorization: Bearer`` and form ``mobile_phone`` (digits, no ``+``), ``message``, ``from``.
- ``playmobile`` (send.smsxabar.uz): HTTP Basic, JSON ``{"messages": [{"recipient",
  "message-id", "sms": {"originator", "content": {"text"}}}]}``.

A gateway that does not take the message raises ``GatewayFailed`` with a short, secret-free
reason ("HTTP 503", "timeout", "ConnectError"): never a number, a text, a token or a body. All
the requests of one gateway's try (a login, the send, a renewal and the send again) share one
deadline, so that a delivery fits in the worker's lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)


class GatewayFailed(Exception):
    """The gateway did not take the message; the message is safe to store and show."""


class Gateway(Protocol):
    """One way of sending an SMS."""

    name: str

    def send(self, client: httpx.Client, to: str, text: str, message_id: str, deadline: float) -> None:
        """Hand one message to the gateway before ``deadline`` (``time.monotonic()``), or raise
        ``GatewayFailed``."""


def digits(number: str) -> str:
    """An E.164 number as the gateways want it: the digits alone (``998901234567``)."""
    return "".join(character for character in number if character.isdigit())


def remaining(deadline: float) -> float:
    """Seconds left before ``deadline``; none left is a timeout."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise GatewayFailed("timeout")
    return left


def _post(client: httpx.Client, url: str, deadline: float, **kwargs: Any) -> httpx.Response:
    """POST within the deadline, transport failures turned into a ``GatewayFailed`` naming their kind."""
    try:
        return client.post(url, timeout=remaining(deadline), **kwargs)
    except httpx.TimeoutException:
        raise GatewayFailed("timeout") from None
    except httpx.HTTPError as error:
        raise GatewayFailed(type(error).__name__) from None


def _accepted(response: httpx.Response) -> bool:
    return 200 <= response.status_code < 300


class LogGateway:
    """Development: the message, code included, is written to the log instead of being sent."""

    name = "log"

    def send(self, client: httpx.Client, to: str, text: str, message_id: str, deadline: float) -> None:
        # The one place a sign-in code may reach a log: production refuses SMS_PROVIDER=log.
        log.warning("SMS (not sent: SMS_PROVIDER=log, for development)\nTo: %s\n\n%s", to, text)


# Eskiz tokens of this process, by (API, account); one login at a time renews them.
_ESKIZ_TOKENS: dict[tuple[str, str], str] = {}
_ESKIZ_LOGIN = threading.Lock()


class EskizGateway:
    """notify.eskiz.uz: a Bearer token kept per process, renewed once when a send answers 401."""

    name = "eskiz"

    def __init__(self, base_url: str, email: str, password: str, sender: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.email = email
        self.password = password
        self.sender = sender

    def send(self, client: httpx.Client, to: str, text: str, message_id: str, deadline: float) -> None:
        token = self.token(client, deadline)
        response = self._send(client, token, to, text, deadline)
        if response.status_code == 401:  # the token expired (Eskiz's last 30 days): log in again, once
            response = self._send(client, self.token(client, deadline, stale=token), to, text, deadline)
        if not _accepted(response):
            raise GatewayFailed(f"HTTP {response.status_code}")

    def token(self, client: httpx.Client, deadline: float, stale: str | None = None) -> str:
        """The kept token; a new one when there is none or it is ``stale`` (refused a moment ago).

        Under the lock, a thread that finds the token renewed by another since it was refused uses
        that one instead of logging in again.
        """
        key = (self.base_url, self.email)
        if not _ESKIZ_LOGIN.acquire(timeout=remaining(deadline)):  # another thread's login hangs
            raise GatewayFailed("timeout")
        try:
            token = _ESKIZ_TOKENS.get(key)
            if token is None or token == stale:
                token = self._login(client, deadline)
                _ESKIZ_TOKENS[key] = token
            return token
        finally:
            _ESKIZ_LOGIN.release()

    def _login(self, client: httpx.Client, deadline: float) -> str:
        response = _post(
            client,
            f"{self.base_url}/auth/login",
            deadline,
            data={"email": self.email, "password": self.password},
        )
        if not _accepted(response):
            raise GatewayFailed(f"login HTTP {response.status_code}")
        try:
            token = response.json()["data"]["token"]
        except (ValueError, KeyError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise GatewayFailed("login answered without a token")
        return token

    def _send(self, client: httpx.Client, token: str, to: str, text: str, deadline: float) -> httpx.Response:
        return _post(
            client,
            f"{self.base_url}/message/sms/send",
            deadline,
            headers={"Authorization": f"Bearer {token}"},
            data={"mobile_phone": digits(to), "message": text, "from": self.sender},
        )


class PlayMobileGateway:
    """send.smsxabar.uz (Play Mobile's broker API): HTTP Basic and one JSON message per request."""

    name = "playmobile"

    def __init__(self, url: str, login: str, password: str, originator: str) -> None:
        self.url = url
        self.auth = (login, password)
        self.originator = originator

    def send(self, client: httpx.Client, to: str, text: str, message_id: str, deadline: float) -> None:
        body = {
            "messages": [
                {
                    "recipient": digits(to),
                    # The same on every attempt of one delivery: Play Mobile can tell a retry.
                    "message-id": message_id,
                    "sms": {"originator": self.originator, "content": {"text": text}},
                }
            ]
        }
        response = _post(client, self.url, deadline, json=body, auth=self.auth)
        if not _accepted(response):
            raise GatewayFailed(f"HTTP {response.status_code}")


def gateway(name: str, config: Mapping[str, Any]) -> Gateway:
    """The gateway called ``name``, configured from the app's settings (``trikchi.settings.sms``)."""
    if name == "eskiz":
        return EskizGateway(
            config["ESKIZ_BASE_URL"], config["ESKIZ_EMAIL"], config["ESKIZ_PASSWORD"], config["ESKIZ_FROM"]
        )
    if name == "playmobile":
        return PlayMobileGateway(
            config["PLAYMOBILE_URL"],
            config["PLAYMOBILE_LOGIN"],
            config["PLAYMOBILE_PASSWORD"],
            config["PLAYMOBILE_ORIGINATOR"],
        )
    if name == "log":
        return LogGateway()
    raise ValueError(f"no SMS gateway called {name!r}")
