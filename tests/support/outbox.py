"""The outbox worker of a test app, running in a thread beside the test client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from trikchi.outbox.worker import Worker


@contextmanager
def background_worker(app: Flask, poll_seconds: float = 0.02) -> Iterator[Worker]:
    """Run the real worker loop (claim, deliver, retry) on ``app`` until the block ends."""
    worker = Worker(batch=10)

    def run() -> None:
        with app.app_context():
            worker.run(poll_seconds=poll_seconds)

    thread = threading.Thread(target=run, name="outbox-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the outbox worker did not stop"
