"""Running calls at the same moment, to race requests against each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier


def race(count: int, call):
    """Run ``call(i)`` ``count`` times at once and return the results."""
    barrier = Barrier(count)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))
