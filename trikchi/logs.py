"""Logging: JSON lines in production, readable text in development; a line per request if asked.

Nothing here ever logs a body, a cookie, an Authorization header or a query string.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, request
from flask.logging import default_handler
from flask.wrappers import Response

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def register_logging(app: Flask) -> None:
    """Configure the ``trikchi`` logger; log every request once it is answered if ``LOG_REQUESTS``."""
    logger = logging.getLogger("trikchi")
    logger.setLevel(app.config["LOG_LEVEL"])
    for handler in [h for h in logger.handlers if getattr(h, "_trikchi", False)]:
        logger.removeHandler(handler)
    if app.config["LOG_FORMAT"] == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._trikchi = True  # type: ignore[attr-defined]
        logger.removeHandler(default_handler)
        logger.addHandler(handler)
        logger.propagate = False
    else:
        logger.propagate = True  # Flask's default stderr handler does the rest
    if app.config["LOG_REQUESTS"]:
        _log_requests(app)


def _log_requests(app: Flask) -> None:
    """A line per answered request (``LOG_REQUESTS``)."""
    access = logging.getLogger("trikchi.request")

    @app.before_request
    def _start_timer() -> None:
        g.trikchi_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        started = g.pop("trikchi_started", None)
        duration = round((time.perf_counter() - started) * 1000, 2) if started else None
        access.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration,
                "ip": request.remote_addr,
            },
        )
        return response
