"""A stand-in for Have I Been Pwned's range API on 127.0.0.1, in its documented response format.

``GET /range/{5 hex}`` answers ``text/plain`` lines ``SUFFIX:COUNT`` (35 upper-case hex characters,
a count), CRLF-separated as the real API sends them. With ``Add-Padding: true`` the answer is padded
with random suffixes of count 0, as the real API pads it (to 800-1,000 lines). Every request's path
and headers are recorded; the server can be made to fail (``status``) or to be slow (``delay``),
or stopped (down).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sha1_parts(password: str) -> tuple[str, str]:
    """The upper-case SHA-1 of ``password``: its 5-character prefix and its 35-character suffix."""
    digest = hashlib.sha1(password.encode("utf-8")).hexdigest().upper()
    return digest[:5], digest[5:]


@dataclass
class Request:
    """One request the stand-in received."""

    path: str
    headers: dict[str, str]


@dataclass
class RangeApi:
    """Serves the passwords of ``breached`` (with their counts) as the range API would."""

    breached: dict[str, int] = field(default_factory=dict)
    status: int = 200
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The ``HIBP_RANGE_URL`` of this stand-in."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/range"

    def body(self, prefix: str, padded: bool) -> str:
        """The answer for ``prefix``: its breached suffixes, then the padding (count 0), shuffled."""
        lines = []
        for password, count in self.breached.items():
            head, suffix = sha1_parts(password)
            if head == prefix:
                lines.append(f"{suffix}:{count}")
        # Other breached passwords of the same prefix: the real list has hundreds per prefix.
        rng = random.Random(prefix)
        lines += [f"{rng.getrandbits(140):035X}:{rng.randint(1, 50)}" for _ in range(300)]
        if padded:
            lines += [f"{rng.getrandbits(140):035X}:0" for _ in range(800 - len(lines) + rng.randint(0, 200))]
        rng.shuffle(lines)
        return "\r\n".join(lines)

    def start(self) -> RangeApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
                with api.lock:
                    api.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}))
                if api.delay:
                    time.sleep(api.delay)
                prefix = self.path.removeprefix("/range/")
                if api.status != 200:
                    body, status = b"", api.status
                elif len(prefix) != 5 or any(c not in "0123456789ABCDEFabcdef" for c in prefix):
                    body, status = b"The hash prefix was not in a valid format", 400
                else:
                    padded = self.headers.get("Add-Padding", "").lower() == "true"
                    body, status = api.body(prefix.upper(), padded).encode(), 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up waiting (a timeout test)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving: the port refuses connections from now on (the API is down)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
