"""gunicorn settings; every value can be overridden from the environment."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", os.environ.get("BIND", "127.0.0.1:8000"))
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# gunicorn's sync/gthread workers, except that gunicorn's own refusals (414, 431, 400, ...)
# are the service's JSON errors instead of HTML pages (trikchi/serving.py).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or (
    "trikchi.serving.ThreadJSONWorker" if threads > 1 else "trikchi.serving.SyncJSONWorker"
)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "1000"))
# With LOG_REQUESTS=true the app logs every request itself (JSON in production); set
# GUNICORN_ACCESSLOG=- for gunicorn's access log instead or as well.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# The client address, method and path only: never cookies, Authorization headers or the query
# (an OpenID Connect callback's carries the authorization code).
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Request limits, enforced by gunicorn before the app sees the request (gunicorn's defaults).
# The request line (method, path and query string) in bytes; longer is 414 uri_too_long.
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "4094"))
# Header fields per request; more is 431 headers_too_large.
limit_request_fields = int(os.environ.get("GUNICORN_LIMIT_REQUEST_FIELDS", "100"))
# Bytes of one header field (name, value and line ending); larger is 431 headers_too_large.
limit_request_field_size = int(os.environ.get("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", "8190"))

# Prometheus metrics across workers (trikchi/metrics.py): every worker writes its samples to
# files in PROMETHEUS_MULTIPROC_DIR and /metrics sums them. The variable must be set before a
# worker imports prometheus_client: on_starting sets it in the master, before any fork (without
# preload_app, the app is imported by the workers). Unset, a private temporary directory is used.
_metrics_dir_is_ours = False


def on_starting(server):
    """Point the workers at the metrics directory, emptied: an earlier run's samples would be summed."""
    import glob
    import tempfile

    global _metrics_dir_is_ours
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="trikchi-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        _metrics_dir_is_ours = True
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)


def post_worker_init(worker):
    """Keep the objects loaded with the app (modules, the URL map, compiled statements) out of the
    garbage collector's full passes: they live as long as the worker, and scanning them took
    ~50 ms every few thousand requests (a p99 stall), for nothing."""
    import gc

    gc.freeze()


def child_exit(server, worker):
    """A dead worker's live gauges must not be summed any more (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this configuration created."""
    if _metrics_dir_is_ours:
        import shutil

        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
