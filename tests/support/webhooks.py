"""A webhook receiver on 127.0.0.1 that verifies signatures with the ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@dataclass
class Received:
    """One request the receiver answered (or was answering)."""

    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: Any
    status: int = 0


@dataclass
class Receiver:
    """``answer(webhook_id, attempt)`` picks the status (and may block); everything is recorded."""

    secret: str = SECRET
    answer: Callable[[str, int], int] = lambda _id, _attempt: 200
    received: list[Received] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight_per_id: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    payload = Webhook(receiver.secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    payload, verified = None, False
                webhook_id = headers.get("webhook-id", "")
                record = Received(webhook_id, headers, body, verified, payload)
                with receiver.lock:
                    attempt = sum(1 for r in receiver.received if r.webhook_id == webhook_id) + 1
                    receiver.received.append(record)
                    receiver.in_flight[webhook_id] = receiver.in_flight.get(webhook_id, 0) + 1
                    receiver.max_in_flight_per_id = max(
                        receiver.max_in_flight_per_id, receiver.in_flight[webhook_id]
                    )
                    receiver.max_in_flight = max(receiver.max_in_flight, sum(receiver.in_flight.values()))
                try:
                    status = receiver.answer(webhook_id, attempt) if verified else 400
                finally:
                    # Out of flight before the answer leaves: the sender's next request may follow
                    # at once, and must not count as a concurrent one.
                    with receiver.lock:
                        receiver.in_flight[webhook_id] -= 1
                # Recorded before the answer leaves: the sender may read it and the test look at
                # delivered() before this thread runs another line.
                with receiver.lock:
                    record.status = status
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the worker was killed while we waited: it never got the answer
                    with receiver.lock:
                        record.status = 0

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> dict[str, Received]:
        """Verified webhooks answered with 2xx, by webhook-id (the last one of each)."""
        with self.lock:
            return {r.webhook_id: r for r in self.received if r.verified and 200 <= r.status < 300}

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.02)
        raise AssertionError(f"receiver: condition not met within {timeout}s; got {self.received!r}")


def body_of(record: Received) -> dict[str, Any]:
    return json.loads(record.body)
