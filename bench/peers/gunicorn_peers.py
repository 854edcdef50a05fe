"""gunicorn settings of the peers served by gunicorn (Flask-Security-Too, allauth, the bare
Flask and Django endpoints): gunicorn's defaults (sync workers, no access log) with the bench's
two workers and loopback address. Given with ``-c``, so that gunicorn does not read the
project's own gunicorn.conf.py from the working directory."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
