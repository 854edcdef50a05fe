"""gunicorn settings, from the environment (``trikchi/settings/serving.py`` declares them)."""

import os
import sys

from config import ConfigError, load_config
from trikchi.settings.core import Core
from trikchi.settings.serving import Serving

# wsgi.py serves production settings unless TRIKCHI_CONFIG says otherwise. They are checked here,
# in gunicorn's master before it starts: a bad setting is one line and exit status 1, where a
# worker failing to build the app would print a traceback and gunicorn exit with status 3.
os.environ.setdefault("TRIKCHI_CONFIG", "production")
try:
    load_config()
    serving = Serving(os.environ)
    # gunicorn logs at the app's LOG_LEVEL, with its declared default whatever the environment.
    log_level = Core.LOG_LEVEL.read(os.environ, Core.LOG_LEVEL.default, {})
except ConfigError as error:
    sys.exit(error.line())

bind = serving.GUNICORN_BIND
workers = serving.GUNICORN_WORKERS
threads = serving.GUNICORN_THREADS
worker_class = serving.GUNICORN_WORKER_CLASS
timeout = serving.GUNICORN_TIMEOUT
graceful_timeout = serving.GUNICORN_GRACEFUL_TIMEOUT
keepalive = serving.GUNICORN_KEEPALIVE
max_requests = serving.GUNICORN_MAX_REQUESTS
max_requests_jitter = serving.GUNICORN_MAX_REQUESTS_JITTER
# With LOG_REQUESTS=true the app logs every request itself (JSON in production); set
# GUNICORN_ACCESSLOG=- for gunicorn's access log instead or as well.
accesslog = serving.GUNICORN_ACCESSLOG
errorlog = "-"
loglevel = log_level.lower()
# The client address, method and path only: never cookies, Authorization headers or the query
# (an OpenID Connect callback's carries the authorization code).
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
forwarded_allow_ips = serving.FORWARDED_ALLOW_IPS
# Request limits, enforced by gunicorn before the app sees the request (gunicorn's defaults).
limit_request_line = serving.GUNICORN_LIMIT_REQUEST_LINE
limit_request_fields = serving.GUNICORN_LIMIT_REQUEST_FIELDS
limit_request_field_size = serving.GUNICORN_LIMIT_REQUEST_FIELD_SIZE

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
    directory = serving.PROMETHEUS_MULTIPROC_DIR
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
