"""gunicorn workers whose own refusals are JSON, like every other error of the service.

gunicorn answers some requests before the app sees them: a request line over
``limit_request_line`` (414), too many or too large header fields (431), a
malformed request line or header (400), an app that crashed before it started
its response (500). Its ``Worker.handle_error`` (gunicorn 27) picks the status,
logs, and writes an HTML page. These workers keep the first two and replace the
page with the common error shape::

    {"code": 431, "status": "Request Header Fields Too Large",
     "message": "The request headers are too large.", "error": ErrorCode.HEADERS_TOO_LARGE}

The status is read from what gunicorn itself would have sent, so its mapping is
not copied here. Nothing from the request or the exception reaches the body.

``gunicorn.conf.py`` selects ``SyncJSONWorker`` or, with ``GUNICORN_THREADS`` > 1,
``ThreadJSONWorker``. (Their names must not end in ``SyncWorker``: gunicorn
replaces such a class with its plain gthread worker when ``threads`` > 1.)
"""

from __future__ import annotations

import json
from http import HTTPStatus

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from trikchi.error_codes import ErrorCode

BAD = ErrorCode.BAD_REQUEST
INTERNAL = ErrorCode.INTERNAL_ERROR

# status -> (RFC 9110 reason phrase, stable error code, short message); other 4xx are
# bad_request, other 5xx internal_error. gunicorn's own phrase is not reused: it says
# "Bad Request" for its 500 and 501 too.
_ERRORS = {
    400: ("Bad Request", BAD, "The request could not be understood."),
    403: ("Forbidden", ErrorCode.FORBIDDEN, "This request is not allowed."),
    414: ("URI Too Long", ErrorCode.URI_TOO_LONG, "The request line is too long."),
    417: ("Expectation Failed", BAD, "The expectation in the Expect header cannot be met."),
    431: (
        "Request Header Fields Too Large",
        ErrorCode.HEADERS_TOO_LARGE,
        "The request headers are too large.",
    ),
    500: ("Internal Server Error", INTERNAL, "Something went wrong on our side."),
    501: (
        "Not Implemented",
        INTERNAL,
        "This server does not implement that.",
    ),
}


def error_payload(status: int) -> bytes:
    """The complete HTTP response (status line, headers, JSON body) for ``status``."""
    if status in _ERRORS:
        phrase, error, message = _ERRORS[status]
    elif 400 <= status < 500:
        phrase, error, message = (
            _phrase(status),
            BAD,
            "The request could not be understood.",
        )
    else:
        if not 500 <= status < 600:
            status = 500
        phrase, error, message = (
            _phrase(status),
            INTERNAL,
            "Something went wrong on our side.",
        )
    body = json.dumps(
        {"code": status, "status": phrase, "message": message, "error": str(error)}, separators=(",", ":")
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _status_of(sent: bytes) -> int:
    """The status of the response gunicorn tried to send (500 if unreadable)."""
    parts = bytes(sent).split(b"\r\n", 1)[0].split(b" ", 2)
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return 500


class _Recorder:
    """Stands in for the client socket while gunicorn writes its error page; keeps the bytes."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self.sent = bytearray()

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class JSONErrorsMixin:
    """Overrides ``handle_error``: gunicorn's status and logging, the service's JSON body."""

    def handle_error(self, req, client, addr, exc) -> None:
        recorder = _Recorder(client)
        super().handle_error(req, recorder, addr, exc)  # type: ignore[misc]
        if not recorder.sent:  # gunicorn chose to send nothing
            return
        try:
            util.write_nonblock(client, error_payload(_status_of(recorder.sent)))
        except Exception:  # noqa: BLE001 - the client may be gone; gunicorn ignores this too
            self.log.debug("Failed to send error message.")  # type: ignore[attr-defined]


class SyncJSONWorker(JSONErrorsMixin, SyncWorker):
    """gunicorn's sync worker with JSON refusals."""


class ThreadJSONWorker(JSONErrorsMixin, ThreadWorker):
    """gunicorn's gthread worker with JSON refusals."""
