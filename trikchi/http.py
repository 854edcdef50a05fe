"""HTTP-layer helpers shared by every blueprint: strict JSON parsing, client info."""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from http import HTTPStatus

import flask
import flask_smorest
from flask import request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SessionInterface
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def parse_json(data: str | bytes, **kwargs: typing.Any) -> typing.Any:
    """A request body as JSON (UTF-8, as webargs reads it); what json cannot take in is invalid JSON.

    ``json.loads`` raises ``RecursionError`` for ``[[[[…`` nested past the interpreter's
    recursion limit and a bare ``ValueError`` for an integer of more digits than ``int``
    converts (``sys.get_int_max_str_digits()``, 4300): both were 500s. As
    ``JSONDecodeError`` they are webargs' 400 ``invalid_json`` and ``get_json(silent=True)``'s
    ``None``. A ``UnicodeDecodeError`` is left as it is: both already treat it as invalid.
    """
    text = data if isinstance(data, str) else data.decode("utf-8")
    try:
        return json.loads(text, **kwargs)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("Nested too deeply", text, 0) from None
    except ValueError:
        raise json.JSONDecodeError("A number with too many digits", text, 0) from None


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that ``request.get_json`` parses with ``parse_json`` like the views."""

    def loads(self, s: str | bytes, **kwargs: typing.Any) -> typing.Any:
        return parse_json(s, **kwargs)


class _BodyUpToMax(LimitedStream):
    """A body of unknown length (chunked) read up to ``MAX_CONTENT_LENGTH``; a longer one is 413.

    werkzeug's ``LimitedStream(..., is_max=True).readall()`` (3.1) stops at the limit and returns
    what it has read, so ``get_data()`` handed the first 64 KiB of a longer chunked body to the
    parser: a 400 ``invalid_json`` where the same body with a Content-Length is a 413. One byte
    more from the server's stream tells a body of exactly the limit from a longer one.
    """

    def __init__(self, stream: typing.IO[bytes], limit: int) -> None:
        super().__init__(stream, limit, is_max=True)
        self._source = stream

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self._source.read(1):
            raise RequestEntityTooLarge()
        return data


class Request(flask.Request):
    """Flask's request, whose body over ``MAX_CONTENT_LENGTH`` is 413 with or without a Content-Length."""

    @cached_property
    def stream(self) -> typing.IO[bytes]:
        stream = super().stream
        # Without a Content-Length, werkzeug limits the stream to max_content_length (a server
        # that terminates the input, as gunicorn does, sets wsgi.input_terminated).
        if isinstance(stream, LimitedStream) and self.content_length is None:
            return _BodyUpToMax(self.environ["wsgi.input"], stream.limit)
        return stream


class JSONOnlyParser(FlaskParser):
    """Refuse a body that is not declared as JSON with 415 instead of guessing."""

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        if not is_json_request(req):
            if req.method in _BODY_METHODS:
                abort(415, messages={"json": ["Content-Type must be application/json."]})
            return core.missing
        return parse_json(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with the strict JSON parser."""

    ARGUMENTS_PARSER = JSONOnlyParser()


@dataclass(frozen=True)
class ClientInfo:
    """Who is calling, for sessions and the audit log."""

    ip: str | None
    user_agent: str | None


class NoCookieSessions(SessionInterface):
    """trikchi keeps no state in Flask's signed session cookie: never open or save one.

    Flask's default opens it on every request (a serializer and a cookie lookup, a
    twelfth of ``GET /auth/me``); every access to ``flask.session`` now fails loudly.
    """

    def open_session(self, app: flask.Flask, request: flask.Request) -> None:
        return None  # Flask then uses a NullSession, which refuses writes

    def save_session(self, app: flask.Flask, session: typing.Any, response: flask.Response) -> None:
        return None


def client_info() -> ClientInfo:
    """The caller's address (after ProxyFix's trusted hops) and a bounded user agent."""
    user_agent = request.headers.get("User-Agent") or None
    return ClientInfo(
        ip=(request.remote_addr or None) and request.remote_addr[:45],
        user_agent=user_agent[:255] if user_agent else None,
    )


def document_errors(blp: Blueprint, *statuses: int) -> typing.Callable[[typing.Any], typing.Any]:
    """Document error responses (in the common error shape) of a view."""

    def decorator(func: typing.Any) -> typing.Any:
        for status in statuses:
            func = blp.alt_response(status, response=HTTPStatus(status).name)(func)
        return func

    return decorator


# JSON never needs to load anything; Swagger UI needs its own scripts and styles.
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The staff console (trikchi.console): its own script and style files and the same origin's API,
# nothing inline, nothing from elsewhere.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
CONSOLE_PATH = "/console"


def register_security_headers(app: flask.Flask) -> None:
    """Add the security headers to every response, errors included (a view's own value wins)."""
    common = [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if app.config["HSTS_SECONDS"]:
        common.append(
            ("Strict-Transport-Security", f"max-age={app.config['HSTS_SECONDS']}; includeSubDomains")
        )
    json_headers = [*common, ("Content-Security-Policy", JSON_CSP)]
    docs_path = "/" + app.config["OPENAPI_SWAGGER_UI_PATH"].strip("/")
    pages = [
        (docs_path, [*common, ("Content-Security-Policy", DOCS_CSP)]),
        (CONSOLE_PATH, [*common, ("Content-Security-Policy", CONSOLE_CSP)]),
    ]

    app.wsgi_app = SecurityHeaders(app.wsgi_app, json_headers, pages)  # type: ignore[method-assign]


class SecurityHeaders:
    """WSGI middleware: the security headers on every response the app sends (a view's own wins).

    At the WSGI level the headers are a plain list: appended without werkzeug's
    per-header validation and lookups, which as an ``after_request`` hook cost a
    tenth of a small request. Pages (Swagger UI, the console) get their own CSP.
    """

    def __init__(
        self,
        app: typing.Any,
        json_headers: list[tuple[str, str]],
        pages: list[tuple[str, list[tuple[str, str]]]],
    ) -> None:
        self.app = app
        self.json_headers = self._prepared(json_headers)
        self.pages = [(path, self._prepared(headers)) for path, headers in pages]

    @staticmethod
    def _prepared(headers: list[tuple[str, str]]) -> list[tuple[str, tuple[str, str]]]:
        return [(name.lower(), (name, value)) for name, value in headers]

    def __call__(self, environ: dict[str, typing.Any], start_response: typing.Any) -> typing.Any:
        path = environ.get("PATH_INFO", "")
        extra = self.json_headers
        for page_path, headers in self.pages:
            if path == page_path or path.startswith(page_path + "/"):
                extra = headers
                break

        def start(status: str, headers: list[tuple[str, str]], exc_info: typing.Any = None) -> typing.Any:
            present = {name.lower() for name, _value in headers}
            headers.extend(header for lowered, header in extra if lowered not in present)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
