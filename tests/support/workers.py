"""Real ``flask worker`` processes on a test database, which tests kill with SIGKILL (a crash)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The lease of the workers' claims: a killed worker's deliveries are taken again after it.
LEASE = 5


class Workers:
    """Start ``flask worker`` processes on one database; every one is killed at the end."""

    def __init__(self, database_url: str, logdir: Path) -> None:
        self.database_url = database_url
        self.logdir = logdir
        self.processes: list[subprocess.Popen] = []

    def start(self, **env: str) -> subprocess.Popen:
        full_env = {
            **os.environ,
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": "worker-secret-" + "s" * 32,
            "JWT_SECRET_KEY": "worker-jwt-" + "j" * 32,
            "OUTBOX_TIMEOUT_SECONDS": "3",
            "OUTBOX_LEASE_SECONDS": str(LEASE),
            "OUTBOX_RETRY_BASE_SECONDS": "0",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",  # its log lines are read while it runs
            **env,
        }
        # The child keeps its own copy of the log file's descriptor.
        with open(self.logdir / f"worker-{len(self.processes)}.log", "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "flask", "--app", "wsgi", "worker"),
                    *("--poll-interval", "0.05", "--batch", "3"),
                ],
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def log(self, index: int) -> str:
        return (self.logdir / f"worker-{index}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
