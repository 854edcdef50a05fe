"""Real gunicorn workers racing on one database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests
from sqlalchemy import create_engine, func, select

from tests.conftest import PASSWORD
from tests.support.live import LiveServer
from trikchi.auth.models import User

pytestmark = pytest.mark.slow


@pytest.fixture
def live_server(database_url, tmp_path):
    server = LiveServer(
        {"TRIKCHI_CONFIG": "testing", "DATABASE_URL": database_url, "TRIKCHI_TEST_LOGDIR": str(tmp_path)},
        workers=4,
    ).wait_ready()
    yield server
    server.stop()


def race(count: int, call):
    """Run ``call(i)`` ``count`` times at once and return the results."""
    barrier = Barrier(count)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_16_concurrent_registrations_of_one_email_give_one_201(live_server, database_url):
    body = {"name": "Ada", "email": "race@example.com", "password": PASSWORD}
    responses = race(16, lambda _i: requests.post(live_server.url + "/auth/register", json=body, timeout=30))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 15, (statuses, live_server.log()[-3000:])
    assert all(r.headers["Content-Type"].startswith("application/json") for r in responses)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User)) == 1
    engine.dispose()
