"""Requests gunicorn refuses before the app sees them get the service's JSON errors, not HTML.

Sent over raw sockets so that exactly these bytes reach the server, through the
real ``gunicorn.conf.py`` with its sync worker and (GUNICORN_THREADS=2) its gthread worker.
"""

from __future__ import annotations

import json
import socket

import pytest
from gunicorn import util

from tests.conftest import migrate_to_head
from tests.support.live import LiveServer
from trikchi.serving import JSONErrorsMixin

WORKERS = {"sync": "trikchi.serving.SyncJSONWorker", "gthread": "trikchi.serving.ThreadJSONWorker"}


@pytest.fixture(scope="module", params=sorted(WORKERS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The service under gunicorn with one worker of the given kind."""
    path = tmp_path_factory.mktemp(f"refusals-{request.param}") / "trikchi.db"
    migrate_to_head(f"sqlite:///{path}")
    live = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": f"sqlite:///{path}",
            "TRIKCHI_TEST_LOGDIR": str(path.parent),
            "GUNICORN_THREADS": "2" if request.param == "gthread" else "1",
            "GUNICORN_WORKER_CLASS": "",  # unset: the choice of gunicorn.conf.py
        },
        workers=1,
    )
    try:
        live.wait_ready()
        live.kind = request.param
        yield live
    finally:
        live.stop()


def exchange(server: LiveServer, data: bytes, timeout: float = 15) -> bytes:
    """Send ``data`` and read until the server closes the connection (a timeout fails the test)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def assert_json_refusal(raw: bytes, status: int, reason: str, error: str) -> dict:
    """The response is exactly one JSON error in the common shape, and the connection was closed."""
    assert b"<html" not in raw.lower(), raw
    head, separator, body = raw.partition(b"\r\n\r\n")
    assert separator, raw
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line == f"HTTP/1.1 {status} {reason}", raw
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)  # nothing follows: the server closed
    document = json.loads(body)
    assert set(document) == {"code", "status", "message", "error"}
    assert document["code"] == status
    assert document["status"] == reason
    assert document["error"] == error
    assert document["message"].endswith(".") and len(document["message"]) < 80
    return document


@pytest.mark.slow
def test_the_configured_json_worker_serves(server):
    assert f"Using worker: {WORKERS[server.kind]}" in server.log()


@pytest.mark.slow
def test_a_9_kib_request_line_is_414_json(server):
    raw = exchange(server, b"GET /admin/users?q=" + b"a" * 9216 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert_json_refusal(raw, 414, "URI Too Long", "uri_too_long")
    assert b"aaaa" not in raw and b"/admin" not in raw


@pytest.mark.slow
def test_a_30_kib_header_is_431_json(server):
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 30 * 1024 + b"\r\n\r\n"
    raw = exchange(server, request)
    assert_json_refusal(raw, 431, "Request Header Fields Too Large", "headers_too_large")
    assert b"bbbb" not in raw and b"x-big" not in raw.lower()


@pytest.mark.slow
def test_150_headers_are_431_json(server):
    fields = b"".join(b"X-Field-%d: value-%d\r\n" % (i, i) for i in range(150))
    raw = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n")
    assert_json_refusal(raw, 431, "Request Header Fields Too Large", "headers_too_large")
    assert b"x-field" not in raw.lower()


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /healthz",  # no HTTP version
        b"GARBAGE",  # one word
        b"GET /caf\xc3\xa9 HTTP/1.1",  # bytes a request target cannot contain (not percent-encoded)
        b"GET /healthz HTTP/9.9",  # no such version
    ],
)
def test_a_malformed_request_line_is_400_json(server, request_line):
    raw = exchange(server, request_line + b"\r\nHost: 127.0.0.1\r\n\r\n")
    assert_json_refusal(raw, 400, "Bad Request", "bad_request")
    assert request_line not in raw


@pytest.mark.slow
def test_an_unknown_transfer_coding_keeps_gunicorns_501_as_json(server):
    request = b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: bogus\r\n\r\n"
    raw = exchange(server, request)
    assert_json_refusal(raw, 501, "Not Implemented", "internal_error")
    assert b"bogus" not in raw


def test_a_500_from_gunicorn_is_json_without_the_exception_text():
    """The path of an app that fails before it starts its response, without gunicorn around it."""

    class Gunicorn:  # what gunicorn's Worker.handle_error does for such a failure
        log = None

        def handle_error(self, req, client, addr, exc):
            util.write_error(client, 500, "Internal Server Error", "")

    class Worker(JSONErrorsMixin, Gunicorn):
        pass

    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        Worker().handle_error(None, server_side, ("127.0.0.1", 1), RuntimeError("secret detail"))
        server_side.close()
        raw = client_side.makefile("rb").read()
    assert_json_refusal(raw, 500, "Internal Server Error", "internal_error")
    assert b"secret" not in raw


@pytest.mark.slow
def test_requests_within_the_limits_still_reach_the_app(server):
    raw = exchange(
        server,
        b"GET /healthz?q=" + b"a" * 3000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:200]


@pytest.mark.slow
def test_a_malformed_chunked_body_read_by_the_app_is_400_json(server):
    # gunicorn parses a chunked body lazily, while the app reads it: the app's error handler answers.
    raw = exchange(
        server,
        b"POST /auth/verify_email HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), raw[:200]
    assert json.loads(body)["error"] == "bad_request" and b"<html" not in raw.lower()
