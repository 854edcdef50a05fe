"""A throwaway PostgreSQL cluster on 127.0.0.1, started from the server binaries.

PostgreSQL refuses to run as root, so under root the cluster runs as the
``postgres`` system user (present wherever the server package is installed).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_bindir() -> Path | None:
    """The newest PostgreSQL server bin directory, or ``None`` when not installed."""
    explicit = os.environ.get("TRIKCHI_PG_BINDIR")
    candidates = [explicit] if explicit else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """initdb + pg_ctl start in a temporary directory; ``stop()`` removes everything."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="trikchi-pg-"))
        self.datadir = self.root / "data"
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> ThrowawayPostgres:
        """Create and start the cluster (trust auth, loopback only, fsync off for speed)."""
        if self.user:
            shutil.chown(self.root, user=self.user)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
            "-A", "trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.start_server()
        return self

    def start_server(self) -> None:
        """Start (or restart after ``stop_server``) the server on the same port and data."""
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop_server(self) -> None:
        """Stop the server but keep the data (an outage)."""
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop", check=False
        )

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop_server()
        for _ in range(50):
            try:
                shutil.rmtree(self.root)
                return
            except OSError:
                time.sleep(0.1)
