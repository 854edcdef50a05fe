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


# Bodies the app itself refuses: its own error shape (with the status's RFC reason phrase), never HTML.


def post(path: str, body: bytes, *, chunked: bool = False) -> bytes:
    """A JSON POST of ``body``, with a Content-Length or chunked in 16 KiB chunks; the server then closes."""
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n"
        pieces = [body[i : i + 16384] for i in range(0, len(body), 16384)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    else:
        framing = b"Content-Length: %d\r\n" % len(body)
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" % path.encode()
    return head + framing + b"Connection: close\r\n\r\n" + body


def assert_app_error(raw: bytes, status: int, error: str) -> dict:
    """The response is the app's JSON error in the common shape: no page, no traceback."""
    assert b"<html" not in raw.lower() and b"Traceback" not in raw, raw[:300]
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith(f"HTTP/1.1 {status} "), raw[:300]
    headers = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(":") for line in header_lines)
    )
    assert headers["content-type"] == "application/json" and headers["cache-control"] == "no-store"
    document = json.loads(body)
    assert (
        {"code", "status", "message", "error"}
        <= set(document)
        <= {"code", "status", "message", "error", "errors"}
    )
    assert document["code"] == status and document["error"] == error, document
    return document


DEEP = b"[" * 5000
DIGITS = b"1" * 60000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/auth/login", DEEP, id="5000-open-brackets"),
        pytest.param("/auth/login", DEEP + b"]" * 5000, id="5000-nested-arrays"),
        pytest.param(
            "/auth/login", b'{"email": "a@b.uz", "password": ' + DEEP + b"]" * 5000 + b"}", id="deep-field"
        ),
        pytest.param(
            "/auth/register", b'{"name": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}", id="deep-objects"
        ),
        pytest.param(
            "/auth/login", b'{"email": "a@b.uz", "password": ' + DIGITS + b"}", id="60000-digit-field"
        ),
        pytest.param("/auth/login", DIGITS, id="60000-digit-body"),
        pytest.param("/auth/register", b"-" + DIGITS, id="60000-digit-negative-body"),
        pytest.param(
            "/auth/telegram", b'{"id": ' + DIGITS + b', "auth_date": 1}', id="60000-digit-integer-field"
        ),
    ],
)
def test_json_that_python_cannot_parse_is_400_invalid_json(server, path, body):
    # json raises RecursionError past its nesting depth and ValueError past int's 4300 digits: were 500.
    assert_app_error(exchange(server, post(path, body)), 400, "invalid_json")


@pytest.mark.slow
def test_a_chunked_body_over_64_kib_is_413_as_with_a_content_length(server):
    # werkzeug read a chunked body up to MAX_CONTENT_LENGTH and parsed the cut-off JSON: was 400.
    body = json.dumps({"email": "a@b.uz", "password": "p" * 70000}).encode()
    with_length = assert_app_error(exchange(server, post("/auth/login", body)), 413, "payload_too_large")
    chunked = assert_app_error(
        exchange(server, post("/auth/login", body, chunked=True)), 413, "payload_too_large"
    )
    assert chunked == with_length


@pytest.mark.slow
def test_a_chunked_body_of_exactly_64_kib_is_read_whole(server):
    # 65,536 bytes, the limit: the app parses all of it (a password too long is 422, not 413 or 400).
    padding = 65536 - len(json.dumps({"email": "a@b.uz", "password": ""}))
    body = json.dumps({"email": "a@b.uz", "password": "p" * padding}).encode()
    assert len(body) == 65536
    document = assert_app_error(
        exchange(server, post("/auth/login", body, chunked=True)), 422, "validation_failed"
    )
    assert set(document["errors"]) == {"password"}
