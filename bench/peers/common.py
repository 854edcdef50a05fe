"""What every peer app of the bench reads from its environment (standard library only: each peer
runs in a venv of its own, bench/.venvs/<name>, and imports only this from the project).

bench/run.py sets these for each peer server and for its ``setup`` command:

- ``BENCH_DB``: the SQLite file the peer uses;
- ``BENCH_SECRET``: the peer's signing secret;
- ``BENCH_ARGON2_TIME_COST``, ``BENCH_ARGON2_MEMORY_COST`` (KiB), ``BENCH_ARGON2_PARALLELISM``:
  trikchi's ``ARGON2_*`` settings, so every peer hashes and verifies passwords the same way;
- ``BENCH_PASSWORD`` (``setup`` only): the password of every user.
"""

from __future__ import annotations

import os


def database_path() -> str:
    return os.environ.get("BENCH_DB", "bench-peer.db")


def secret() -> str:
    return os.environ.get("BENCH_SECRET", "change-me-change-me-change-me-change-me")


def argon2_params() -> dict[str, int]:
    """argon2id's cost parameters: time_cost, memory_cost (KiB), parallelism."""
    return {
        "time_cost": int(os.environ.get("BENCH_ARGON2_TIME_COST", "3")),
        "memory_cost": int(os.environ.get("BENCH_ARGON2_MEMORY_COST", "65536")),
        "parallelism": int(os.environ.get("BENCH_ARGON2_PARALLELISM", "4")),
    }


def sqlite_pragmas(dbapi_connection, _connection_record=None) -> None:
    """SQLite as trikchi runs it: write-ahead log, ``synchronous=NORMAL`` (no fsync per commit).
    A SQLAlchemy ``connect`` listener; Django's peer gives the same as its ``init_command``."""
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def email(n: int) -> str:
    """The bench's user ``n`` (the same addresses in every peer)."""
    return f"bench{n}@example.com"


def setup_args(argv: list[str]) -> tuple[int, str]:
    """``python -m bench.peers.<peer> setup COUNT``: the user count, and the password from the
    environment."""
    if len(argv) != 3 or argv[1] != "setup":
        raise SystemExit(f"usage: python -m {argv[0]} setup COUNT")
    return int(argv[2]), os.environ["BENCH_PASSWORD"]
