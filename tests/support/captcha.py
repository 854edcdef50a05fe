"""A CAPTCHA siteverify on 127.0.0.1, speaking the protocol of Cloudflare Turnstile and hCaptcha.

``POST /siteverify`` with form ``secret``, ``response`` and ``remoteip`` answers
``{"success": true}`` for a token in ``good_tokens`` (each works once, like the real ones) and
``{"success": false, "error-codes": [...]}`` otherwise, as the providers document; with
another secret, ``invalid-input-secret``. ``status`` makes it answer an error instead, and
``delay`` makes it slow.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

SECRET = "0x4AAAAAAA-stand-in-secret"  # noqa: S105 - the stand-in's site secret


@dataclass
class Siteverify:
    """The stand-in; ``received`` holds each form it was sent."""

    secret: str = SECRET
    good_tokens: set[str] = field(default_factory=set)
    received: list[dict[str, str]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Siteverify:
        verifier = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                if verifier.delay:
                    time.sleep(verifier.delay)
                status, answer = verifier.verify(self.path, form)
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the caller gave up waiting
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/siteverify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verify(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.received.append(form)
        if self.status != 200:
            return self.status, {"success": False, "error-codes": ["internal-error"]}
        if path != "/siteverify":
            return 404, {"success": False}
        if form.get("secret") != self.secret:
            return 200, {"success": False, "error-codes": ["invalid-input-secret"]}
        token = form.get("response", "")
        with self.lock:
            good = token in self.good_tokens
            self.good_tokens.discard(token)  # a token works once
        if good:
            return 200, {"success": True, "hostname": "shop.example", "error-codes": []}
        return 200, {"success": False, "error-codes": ["invalid-input-response"]}

    def issue(self, token: str) -> str:
        """A token the widget would have given a visitor who solved it."""
        with self.lock:
            self.good_tokens.add(token)
        return token
