"""Slow clients (slowloris) against the proxy-less default: gunicorn's sync workers.

A sync worker reads one request at a time, so a client that trickles its headers holds the
worker; five of them held every worker of a deployment without a buffering proxy, and
`/healthz` stopped answering. The deployment docs put a buffering reverse proxy in front
(docs/deployment.md); without one, the service must at least recover: gunicorn's arbiter
ends a worker that has not checked in for `GUNICORN_TIMEOUT` seconds and starts a fresh one,
so the held workers come back while the slow clients are still trickling.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from tests.conftest import migrate_to_head
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow

TIMEOUT = 3  # GUNICORN_TIMEOUT for this test: how long a held worker lives


def trickle(port: int, stop: threading.Event) -> None:
    """One slowloris client: a request line and headers, a byte a second, never finished."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            while not stop.wait(1):
                sock.sendall(b"X")
    except OSError:
        pass  # the server closed it: what recovery looks like from this side


def test_workers_held_by_slow_clients_come_back(tmp_path):
    path = tmp_path / "trikchi.db"
    migrate_to_head(f"sqlite:///{path}")
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": f"sqlite:///{path}",
            "TRIKCHI_TEST_LOGDIR": str(tmp_path),
            "GUNICORN_TIMEOUT": str(TIMEOUT),
            "GUNICORN_THREADS": "1",  # the sync worker, gunicorn.conf.py's default
            "GUNICORN_WORKER_CLASS": "",
        },
        workers=2,
    ).wait_ready()
    stop = threading.Event()
    clients = [threading.Thread(target=trickle, args=(server.port, stop), daemon=True) for _ in range(5)]
    try:
        for client in clients:
            client.start()
        time.sleep(1)  # every worker now reads a request that never ends
        held = False
        try:
            requests.get(server.url + "/healthz", timeout=0.5)
        except requests.Timeout:
            held = True
        assert held, "the slow clients did not hold the workers: the test shows nothing"

        deadline = time.monotonic() + 10 * TIMEOUT + 20
        answered = None
        while time.monotonic() < deadline and answered is None:
            try:
                answered = requests.get(server.url + "/healthz", timeout=TIMEOUT + 2)
            except requests.RequestException:
                continue
        assert answered is not None and answered.status_code == 200, server.log()[-3000:]
        assert "WORKER TIMEOUT" in server.log()
    finally:
        stop.set()
        server.stop()
