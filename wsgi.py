"""The WSGI entry point: ``gunicorn wsgi:app`` (production settings unless told otherwise)."""

import os

os.environ.setdefault("TRIKCHI_CONFIG", "production")

from trikchi import create_app  # noqa: E402  (the default must be set before the app is built)

app = create_app()
