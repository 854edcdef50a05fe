"""One JSON error shape for every failure: ``{code, status, error, message[, errors]}``.

``error`` is a stable, machine-readable string from ``ErrorCode``: frontends
branch on it (and translate it); ``message`` is for people and may change.

Domain errors raised by services, HTTP errors from Flask/Werkzeug, validation
errors from webargs, token errors from flask-jwt-extended (see ``auth.tokens``),
database outages and anything unexpected all end up here.
"""

from __future__ import annotations

import logging
import math
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from trikchi.error_codes import ErrorCode, error_code_for
from trikchi.extensions import db
from trikchi.i18n import N_, translate, translate_errors
from trikchi.signals import database_failed

log = logging.getLogger(__name__)


class AppError(Exception):
    """A failure a client should see, with its HTTP status, ``error`` code and a safe message."""

    status = 400
    error = ErrorCode.BAD_REQUEST
    message = N_("Bad request.")

    def __init__(
        self,
        message: str | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        error: ErrorCode | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.errors = errors
        self.headers = headers
        self.error = error or self.error
        # More members of the body for this error (``banned_until`` of ``account_banned``).
        self.fields = fields


class Unauthorized(AppError):
    """Missing, wrong or revoked credentials."""

    status = 401
    error = ErrorCode.AUTHENTICATION_REQUIRED
    message = N_("Authentication required.")


class Forbidden(AppError):
    """Authenticated, but not allowed."""

    status = 403
    error = ErrorCode.FORBIDDEN
    message = N_("You are not allowed to do this.")


class NotFound(AppError):
    """The resource does not exist (or is not the caller's)."""

    status = 404
    error = ErrorCode.NOT_FOUND
    message = N_("Not found.")


class Conflict(AppError):
    """The request conflicts with existing data."""

    status = 409
    error = ErrorCode.CONFLICT
    message = N_("Conflict.")


class ValidationFailed(AppError):
    """Input that parsed but breaks a rule; ``errors`` names the fields."""

    status = 422
    error = ErrorCode.VALIDATION_FAILED
    message = N_("Validation failed.")


class ServiceUnavailable(AppError):
    """A dependency (the database) does not answer."""

    status = 503
    error = ErrorCode.SERVICE_UNAVAILABLE
    message = N_("The service is temporarily unavailable; try again shortly.")
    retry_after_seconds = 5

    def __init__(
        self, message: str | None = None, errors: dict[str, Any] | None = None, error: ErrorCode | None = None
    ) -> None:
        super().__init__(message, errors, headers={"Retry-After": str(self.retry_after_seconds)}, error=error)


def error_response(
    status: int,
    message: str,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    error: ErrorCode | None = None,
    fields: dict[str, Any] | None = None,
) -> Response:
    """Build the JSON error response every handler returns, its texts in the request's language.

    ``message`` and the ``errors`` messages are the English catalog keys (SPEC §10); the
    ``error`` code and the field names stay the same in every language. ``fields`` are more
    members of the body (documented in the ``Error`` schema).
    """
    body: dict[str, Any] = {
        "code": status,
        "status": HTTPStatus(status).phrase,
        "error": str(error or error_code_for(status)),
        "message": translate(message),
    }
    if errors:
        body["errors"] = translate_errors(errors)
    if fields:
        body.update(fields)
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_errors(error: HTTPException) -> dict[str, Any] | None:
    """Flatten webargs' ``{location: {field: [...]}}`` to ``{field: [...]}``."""
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if not messages:
        return None
    if isinstance(messages, dict) and len(messages) == 1:
        (only,) = messages.values()
        if isinstance(only, dict):
            return only
        return {"_schema": only}
    return messages


_HTTP_MESSAGES = {
    400: N_("The request could not be understood."),
    404: N_("There is nothing at this address."),
    405: N_("This method is not allowed here."),
    413: N_("The request body is too large."),
    415: N_("Send the body as JSON with Content-Type: application/json."),
    429: N_("Too many attempts; wait before trying again."),
    422: N_("Validation failed."),
}


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug/Flask HTTP errors (404, 405, 413, webargs' 400/422, …)."""
    status = error.code or 500
    errors = _validation_errors(error)
    code = error_code_for(status)
    if errors is not None and status == 400:
        message = N_("The request body is not valid JSON.")
        code = ErrorCode.INVALID_JSON
    else:
        message = _HTTP_MESSAGES.get(status) or N_("The request failed.")
    headers: dict[str, str] = {}
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    if status == 429:
        headers["Retry-After"] = str(_retry_after_seconds())
    return error_response(status, message, errors, headers, code)


def _retry_after_seconds() -> int:
    """Seconds until the breached rate limit lets the client in again."""
    from trikchi.extensions import limiter

    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.reset_at - time.time()))


def handle_app_error(error: AppError) -> Response:
    """Domain errors raised by services."""
    db.session.rollback()
    return error_response(error.status, error.message, error.errors, error.headers, error.error, error.fields)


def handle_database_unavailable(error: Exception) -> Response:
    """The database is down, unreachable or locked for too long: 503, never 500."""
    log.error("database unavailable: %s", type(error).__name__, exc_info=error)
    database_failed.send(current_app._get_current_object(), kind="unavailable")  # type: ignore[attr-defined]
    return handle_app_error(ServiceUnavailable())


def handle_unexpected(error: Exception) -> Response:
    """Anything else: roll back, log the traceback, show nothing of it."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the rollback must not mask the original error
        log.exception("rollback failed")
    log.error("unhandled error", exc_info=error)
    return error_response(500, N_("Something went wrong on our side."))


def register_error_handlers(app: Flask) -> None:
    """Install the handlers (after flask-smorest, whose HTTP handler this replaces)."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(PoolTimeoutError, handle_database_unavailable)
    app.register_error_handler(DBAPIError, _handle_dbapi_error)
    app.register_error_handler(Exception, handle_unexpected)
    try:  # gunicorn parses a chunked body lazily, while the app reads it
        from gunicorn.http.errors import ParseException
    except ImportError:  # served by another WSGI server
        return
    app.register_error_handler(ParseException, _handle_unparsable_body)


def _handle_unparsable_body(_error: Exception) -> Response:
    """A malformed chunked body, found by gunicorn while the app read it: 400, not 500."""
    db.session.rollback()
    return error_response(400, N_("The request body could not be parsed."), error=ErrorCode.BAD_REQUEST)


def _handle_dbapi_error(error: DBAPIError) -> Response:
    """Lost connections are outages (503); other driver errors are bugs (500)."""
    if error.connection_invalidated:
        return handle_database_unavailable(error)
    database_failed.send(current_app._get_current_object(), kind="error")  # type: ignore[attr-defined]
    return handle_unexpected(error)
