"""Eskiz and Play Mobile on 127.0.0.1: stand-ins that speak the gateways' documented HTTP shapes.

- ``Eskiz``: ``POST /api/auth/login`` (form ``email``, ``password``) answers
  ``{"message": "token_generated", "data": {"token": ...}, "token_type": "bearer"}`` for the
  right account, 401 otherwise; ``POST /api/message/sms/send`` wants ``Authorization: Bearer``
  with a live token (else 401, as Eskiz answers an expired token) and form ``mobile_phone``,
  ``message``, ``from``, and answers ``{"id", "message": "Waiting for SMS provider", "status":
  "waiting"}``.
- ``PlayMobile``: ``POST /broker-api/send`` wants HTTP Basic and the ``{"messages": [...]}``
  JSON, and answers 200 ``Request is received``.

Both record what they received; a test can make them answer an error status, expire Eskiz's
tokens, or hold a request until released (a worker killed mid-send).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

ESKIZ_EMAIL = "shop@example.uz"
ESKIZ_PASSWORD = "eskiz-secret-key"  # noqa: S105 - the stand-in's account
PLAYMOBILE_LOGIN = "shop"
PLAYMOBILE_PASSWORD = "playmobile-secret"  # noqa: S105 - the stand-in's account


@dataclass
class Message:
    """One SMS a gateway took (or was asked to take, when ``status`` is not 2xx)."""

    phone: str
    text: str
    sender: str
    message_id: str | None
    headers: dict[str, str]
    status: int = 0


@dataclass
class Gateway:
    """What both stand-ins share: the server, the records and the behaviour a test sets.

    ``answer(attempt)`` returns the status of the ``attempt``-th send (1-based), 200 by default;
    with ``hold`` (an Event) every send waits until the test sets it (or a minute), then answers.
    """

    answer: Callable[[int], int] = lambda _attempt: 200
    hold: threading.Event | None = None
    messages: list[Message] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen_first: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Gateway:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with gateway.lock:
                    gateway.requests.append(("POST", self.path))
                status, content_type, payload = gateway.handle(self.path, headers, body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the sender was killed while the stand-in held its request
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def take(self, message: Message) -> int:
        """Record a message, wait if held, and pick its answer."""
        with self.lock:
            self.messages.append(message)
            attempt = len(self.messages)
        self.seen_first.set()
        if self.hold is not None:
            self.hold.wait(60)
        status = self.answer(attempt)
        with self.lock:
            message.status = status
        return status

    def delivered(self) -> list[Message]:
        """The messages answered with 2xx."""
        with self.lock:
            return [m for m in self.messages if 200 <= m.status < 300]

    def wait_for(self, predicate: Callable[[Gateway], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.02)
        raise AssertionError(f"gateway: condition not met within {timeout}s; got {self.messages!r}")


def _json(status: int, value: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(value).encode()


@dataclass
class Eskiz(Gateway):
    """notify.eskiz.uz's ``/api``: form login to a Bearer token, form sends with it."""

    email: str = ESKIZ_EMAIL
    password: str = ESKIZ_PASSWORD
    logins: list[dict[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        """``ESKIZ_BASE_URL``."""
        return self.origin + "/api"

    def expire_tokens(self) -> None:
        """Every token handed out so far is refused from now on (Eskiz's tokens expire)."""
        with self.lock:
            self.tokens.clear()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _json(400, {"message": "form data expected"})
        form = {name: values[0] for name, values in parse_qs(body.decode(), keep_blank_values=True).items()}
        if path == "/api/auth/login":
            with self.lock:
                self.logins.append(form)
            if form.get("email") != self.email or form.get("password") != self.password:
                return _json(401, {"message": "Invalid credentials"})
            token = uuid.uuid4().hex
            with self.lock:
                self.tokens.add(token)
            return _json(
                200, {"message": "token_generated", "data": {"token": token}, "token_type": "bearer"}
            )
        if path == "/api/message/sms/send":
            token = headers.get("authorization", "").removeprefix("Bearer ")
            with self.lock:
                live = token in self.tokens
            if not live:
                return _json(401, {"status": "token-invalid", "message": "Expired"})
            message = Message(
                phone=form.get("mobile_phone", ""),
                text=form.get("message", ""),
                sender=form.get("from", ""),
                message_id=None,
                headers=headers,
            )
            status = self.take(message)
            if 200 <= status < 300:
                return _json(
                    status,
                    {"id": uuid.uuid4().hex, "message": "Waiting for SMS provider", "status": "waiting"},
                )
            return _json(status, {"message": "Server error"})
        return _json(404, {"message": "Not found"})


@dataclass
class PlayMobile(Gateway):
    """send.smsxabar.uz's broker API: HTTP Basic and the ``messages`` JSON."""

    login: str = PLAYMOBILE_LOGIN
    password: str = PLAYMOBILE_PASSWORD
    bodies: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        """``PLAYMOBILE_URL``."""
        return self.origin + "/broker-api/send"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if path != "/broker-api/send":
            return _json(404, {"error-code": 404, "error-description": "Not found"})
        expected = "Basic " + base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
        if headers.get("authorization") != expected:
            return _json(401, {"error-code": 401, "error-description": "Unauthorized"})
        try:
            document = json.loads(body)
            (item,) = document["messages"]
            message = Message(
                phone=item["recipient"],
                text=item["sms"]["content"]["text"],
                sender=item["sms"]["originator"],
                message_id=item["message-id"],
                headers=headers,
            )
        except (ValueError, KeyError, TypeError):
            return _json(400, {"error-code": 400, "error-description": "Bad request"})
        with self.lock:
            self.bodies.append(document)
        status = self.take(message)
        if 200 <= status < 300:
            return status, "text/plain", b"Request is received"
        return _json(status, {"error-code": status, "error-description": "Internal error"})


def closed_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: connecting is refused."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"
