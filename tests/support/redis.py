"""A throwaway Redis server on 127.0.0.1 (no persistence)."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from tests.support.postgres import free_port


class ThrowawayRedis:
    """``redis-server`` on a free loopback port; ``stop()`` ends it."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def flush(self) -> None:
        """Forget every counter."""
        client = redis.Redis.from_url(self.url)
        client.flushall()
        client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    @staticmethod
    def find() -> str | None:
        return shutil.which("redis-server")
