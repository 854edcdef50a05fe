"""Prometheus metrics: ``GET /metrics``, request counts and latencies, auth and delivery counters.

Under gunicorn every worker is a process of its own: ``gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` before any worker imports prometheus_client, so each
process writes its samples to files there and a scrape sums them all (dead workers'
files are cleaned up in ``child_exit``). Without that variable (``flask run``, the
test client) the ordinary in-process registry is used.

Labels stay bounded: requests are counted by the URL rule (``/admin/users/<int:user_id>``),
never by the raw path; unknown methods are ``OTHER``; sign-in methods come from the code.
"""

from __future__ import annotations

import ipaddress
import os
from time import perf_counter
from typing import Any

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from trikchi import signals
from trikchi.errors import error_response
from trikchi.events import RecordedEvent

REQUESTS = Counter(
    "trikchi_http_requests_total",
    "HTTP requests answered, by method, endpoint (URL rule) and status.",
    ["method", "endpoint", "status"],
)
LATENCY = Histogram(
    "trikchi_http_request_duration_seconds",
    "Time from the WSGI call to the response's start, by method, endpoint (URL rule) and status.",
    ["method", "endpoint", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SIGNINS = Counter(
    "trikchi_signins_total", "Sign-in attempts by method and result (success, failure).", ["method", "result"]
)
PHONE_CODES = Counter(
    "trikchi_phone_codes_sent_total", "SMS codes queued, by purpose (sign_in, change).", ["purpose"]
)
GUESTS = Counter(
    "trikchi_guests_total",
    "Guests by outcome: created, upgraded (became a customer keeping the id), merged (into an existing"
    " account).",
    ["outcome"],
)
REFRESHES = Counter("trikchi_refreshes_total", "Refresh-token rotations that issued a new pair.")
REUSE_DETECTIONS = Counter(
    "trikchi_refresh_reuse_detections_total", "Spent refresh tokens presented again (session revoked)."
)
RATE_LIMITED = Counter(
    "trikchi_rate_limited_total", "Requests refused with 429 by a rate limit, by endpoint.", ["endpoint"]
)
DELIVERIES = Counter(
    "trikchi_outbox_deliveries_total",
    "Outbox delivery attempts by kind (mail, webhook, sms) and result (sent, failed = retried later, dead).",
    ["kind", "result"],
)
SMS = Counter(
    "trikchi_sms_total",
    "SMS handed to a gateway, by provider (eskiz, playmobile, log) and result (sent, failed).",
    ["provider", "result"],
)
DATABASE_ERRORS = Counter(
    "trikchi_database_errors_total",
    "Failures on the database, by kind (unavailable = 503, error = 500, worker = the outbox worker's).",
    ["kind"],
)

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Events that are a failed sign-in, and the method when the event's details do not name one.
_FAILED_SIGNINS = {
    "login_failed": "password",
    "mfa_challenge_failed": "mfa",
    "passkey_login_failed": "passkey",
    "social_login_failed": "social",
}
# Guest events and the outcome each counts as.
_GUEST_OUTCOMES = {"guest_created": "created", "guest_upgraded": "upgraded", "guest_merged": "merged"}
# (method, endpoint, status) → (counter child, histogram child): labels() costs a lock and a
# dict lookup per call; the hot path pays them once per combination.
_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def count_event(_app: Flask, event: RecordedEvent) -> None:
    """Count an auth event in the metric it belongs to, if any (a ``signals.event_recorded`` receiver)."""
    type_, details = event.type, event.details
    if type_ == "login_succeeded":
        SIGNINS.labels(_method(details, "password"), "success").inc()
    elif type_ in _FAILED_SIGNINS:
        SIGNINS.labels(_method(details, _FAILED_SIGNINS[type_]), "failure").inc()
    elif type_ == "refresh_reuse_detected":
        REUSE_DETECTIONS.inc()
    elif type_ == "phone_code_sent":
        PHONE_CODES.labels(_purpose(details)).inc()
    elif type_ in _GUEST_OUTCOMES:
        GUESTS.labels(_GUEST_OUTCOMES[type_]).inc()


def count_refresh(_app: Flask) -> None:
    """Count a refresh that rotated its token (recorded on the session row, not as an event)."""
    REFRESHES.inc()


def _method(details: dict[str, Any] | None, default: str) -> str:
    method = (details or {}).get("method")
    return method[:40] if isinstance(method, str) and method else default


def _purpose(details: dict[str, Any] | None) -> str:
    purpose = (details or {}).get("purpose")
    return purpose if purpose in ("sign_in", "change") else "other"


def count_delivery(kind: str, result: str) -> None:
    """Count one outbox delivery attempt."""
    DELIVERIES.labels(kind, result).inc()


def count_sms(provider: str, result: str) -> None:
    """Count one SMS handed to a gateway (sent) or refused by it (failed; a fallback may follow)."""
    SMS.labels(provider, result).inc()


def count_database_error(_sender: Any, kind: str) -> None:
    """Count a request (or the worker's round) that failed on the database."""
    DATABASE_ERRORS.labels(kind).inc()


def registry() -> CollectorRegistry:
    """Every process's samples (multiprocess mode) or this process's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected, path=directory)
    return collected


def init_app(app: Flask) -> None:
    """Count what the core signals; time and count every request and serve ``/metrics`` (unless
    ``METRICS_ENABLED`` is off)."""
    # Connected once for every app (blinker keeps one connection per receiver).
    signals.event_recorded.connect(count_event)
    signals.refresh_rotated.connect(count_refresh)
    signals.database_failed.connect(count_database_error)
    if not app.config["METRICS_ENABLED"]:
        return
    allowed = [ipaddress.ip_network(item, strict=False) for item in app.config["METRICS_ALLOWED_IPS"]]

    app.wsgi_app = RequestMetrics(app.wsgi_app)  # type: ignore[method-assign]

    def metrics_view() -> Response:
        """The Prometheus text format, to the addresses in ``METRICS_ALLOWED_IPS`` only."""
        if not _allowed(request.remote_addr, allowed):
            return error_response(404, "There is nothing at this address.")
        response = Response(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])


class RequestMetrics:
    """WSGI middleware: count and time every request the app answers, by method, URL rule, status.

    Timed from the WSGI call to the start of the response. The URL rule comes from
    the request object werkzeug keeps in the environ (``werkzeug.request``). As two
    Flask hooks this cost several times the samples themselves (docs/performance.md).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = perf_counter()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            request_ = environ.get("werkzeug.request")
            rule = getattr(request_, "url_rule", None)
            method = environ.get("REQUEST_METHOD", "")
            key = (
                method if method in _METHODS else "OTHER",
                rule.rule if rule is not None else "<unmatched>",
                status[:3],
            )
            children = _children.get(key)
            if children is None:
                children = _children[key] = (REQUESTS.labels(*key), LATENCY.labels(*key))
            children[0].inc()
            children[1].observe(perf_counter() - started)
            if key[2] == "429":
                RATE_LIMITED.labels(key[1]).inc()
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def _allowed(address: str | None, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
