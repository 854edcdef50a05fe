"""gunicorn, as ``gunicorn.conf.py`` sets it up: address, workers, timeouts, request limits.

Read by ``gunicorn.conf.py`` in gunicorn's master process, not by the app.
"""

from __future__ import annotations

import multiprocessing

from trikchi.settings.base import Derived, Integer, Section, Text


class Serving(Section):
    """Read by ``gunicorn.conf.py`` before gunicorn starts, not by the app."""

    title = "gunicorn (`gunicorn.conf.py`)"

    BIND = Text("127.0.0.1:8000", "the first name of `GUNICORN_BIND`, still read")
    GUNICORN_BIND = Text(Derived("as `BIND`", lambda v: v["BIND"]), "the address gunicorn listens on")
    GUNICORN_WORKERS = Integer(
        Derived("2 × CPUs", lambda v: multiprocessing.cpu_count() * 2), "worker processes", minimum=1
    )
    GUNICORN_THREADS = Integer(1, "threads per worker (more than 1: gthread workers)", minimum=1)
    # gunicorn's sync/gthread workers, except that gunicorn's own refusals (414, 431, 400, ...)
    # are the service's JSON errors instead of HTML pages (trikchi/serving.py).
    GUNICORN_WORKER_CLASS = Text(
        Derived(
            "`trikchi.serving.ThreadJSONWorker` with threads, else `trikchi.serving.SyncJSONWorker`",
            lambda v: (
                "trikchi.serving.ThreadJSONWorker"
                if v["GUNICORN_THREADS"] > 1
                else "trikchi.serving.SyncJSONWorker"
            ),
        ),
        "gunicorn's worker class",
    )
    GUNICORN_TIMEOUT = Integer(30, "seconds a worker may spend on a request before it is restarted")
    GUNICORN_GRACEFUL_TIMEOUT = Integer(30, "seconds a stopping worker may finish its requests")
    GUNICORN_KEEPALIVE = Integer(5, "seconds a kept-alive connection waits for the next request")
    # Recycle workers now and then so a slow leak can never grow without bound.
    GUNICORN_MAX_REQUESTS = Integer(10000, "requests before a worker is replaced (0: never)")
    GUNICORN_MAX_REQUESTS_JITTER = Integer(1000, "random extra requests, so workers are not replaced at once")
    # With LOG_REQUESTS=true the app logs every request itself (JSON in production).
    GUNICORN_ACCESSLOG = Text(
        None, "gunicorn's access log (`-`: stderr; unset: none), instead of or beside `LOG_REQUESTS`"
    )
    FORWARDED_ALLOW_IPS = Text(
        "127.0.0.1",
        "addresses of the proxies whose `X-Forwarded-*` headers gunicorn trusts (gunicorn's own setting)",
    )
    # Request limits, enforced by gunicorn before the app sees the request.
    GUNICORN_LIMIT_REQUEST_LINE = Integer(
        4094, "bytes of the request line (method, path and query); longer is 414 `uri_too_long`"
    )
    GUNICORN_LIMIT_REQUEST_FIELDS = Integer(100, "header fields per request; more is 431 `headers_too_large`")
    GUNICORN_LIMIT_REQUEST_FIELD_SIZE = Integer(
        8190, "bytes of one header field (name, value, line ending); larger is 431 `headers_too_large`"
    )
    # Every worker writes its samples there and /metrics sums them (trikchi/metrics.py).
    PROMETHEUS_MULTIPROC_DIR = Text(
        Derived("a temporary directory", lambda v: None),
        "where gunicorn's workers write their metrics samples (emptied at start)",
    )
