"""Real gunicorn workers racing on one database."""

from __future__ import annotations

import fcntl
import os
from threading import Barrier

import pytest
import requests
from sqlalchemy import create_engine, func, select

from tests.conftest import PASSWORD
from tests.support.live import LiveServer
from tests.support.races import race
from trikchi.auth.models import User
from trikchi.database import serialized_writes
from trikchi.extensions import db

pytestmark = pytest.mark.slow


def test_16_concurrent_registrations_of_one_email_give_one_201(racing_server, database_url):
    body = {"name": "Ada", "email": "race@example.com", "password": PASSWORD}
    responses = race(
        16, lambda _i: requests.post(racing_server.url + "/auth/register", json=body, timeout=30)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 15, (statuses, racing_server.log()[-3000:])
    assert all(r.headers["Content-Type"].startswith("application/json") for r in responses)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User)) == 1
    engine.dispose()


def signed_in_session(server: LiveServer, email: str = "ada@example.com") -> requests.Session:
    """A requests session (cookie jar) registered and signed in on ``server``."""
    browser = requests.Session()
    body = {"name": "Ada", "email": email, "password": PASSWORD}
    assert browser.post(server.url + "/auth/register", json=body, timeout=30).status_code == 201
    response = browser.post(
        server.url + "/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200
    return browser


def clone(browser: requests.Session) -> requests.Session:
    """Another client holding a copy of the same cookies."""
    other = requests.Session()
    other.cookies.update(browser.cookies)
    return other


def refresh(server: LiveServer, browser: requests.Session) -> requests.Response:
    csrf = browser.cookies.get("csrf_refresh_token")
    return browser.post(server.url + "/auth/refresh_token", headers={"X-CSRF-TOKEN": csrf}, timeout=30)


def test_two_tabs_refreshing_at_once_both_stay_signed_in(racing_server):
    tab_a = signed_in_session(racing_server)
    tab_b = clone(tab_a)
    responses = race(2, lambda i: refresh(racing_server, (tab_a, tab_b)[i]))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    for tab, response in zip((tab_a, tab_b), responses, strict=True):
        me = tab.get(
            racing_server.url + "/auth/me",
            headers={"Authorization": f"Bearer {response.json()['access_token']}"},
            timeout=30,
        )
        assert me.status_code == 200
    assert refresh(racing_server, tab_a).status_code == 200
    assert refresh(racing_server, tab_b).status_code == 200


def test_20_concurrent_refreshes_of_one_token_leave_one_live_successor(racing_server, database_url):
    from trikchi.auth.models import RefreshToken

    first = signed_in_session(racing_server)
    clients = [clone(first) for _ in range(20)]
    responses = race(20, lambda i: refresh(racing_server, clients[i]))
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200}, (statuses, racing_server.log()[-3000:])
    engine = create_engine(database_url)
    with engine.connect() as conn:
        live = conn.scalar(
            select(func.count()).select_from(RefreshToken).where(RefreshToken.used_at.is_(None))
        )
        total = conn.scalar(select(func.count()).select_from(RefreshToken))
    engine.dispose()
    assert live == 1
    assert total == 2  # the login token and exactly one successor
    jtis = {c.cookies.get("refresh_token").split(".")[1] for c in clients}
    assert len(jtis) >= 1


def test_refresh_writers_queue_on_one_lock_per_sqlite_database(app, backend):
    """SQLite writers of a refresh wait on an flock (woken at once), not in SQLite's back-off."""
    with app.app_context():
        engine = db.engine
        lock_file = f"{engine.url.database}.write-lock" if backend == "sqlite" else None
        with serialized_writes(engine):
            if lock_file is None:
                return  # PostgreSQL: row locks and the conditional UPDATE are enough; no file
            other = os.open(lock_file, os.O_RDWR)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another worker waits
            finally:
                os.close(other)
        other = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the transaction
        finally:
            os.close(other)


def test_two_unlinks_racing_leave_the_last_way_to_sign_in(app, monkeypatch):
    """Counting a user's ways to sign in and removing one are one step (a row lock on PostgreSQL,
    SQLite's write lock taken first: ``database.lock_for_writing``). Two unlinks of an account
    with two identities and no password, each held between its count and its delete until the
    other arrives: one is done, the other waits for it, counts one, and is refused."""
    from threading import BrokenBarrierError

    from trikchi.errors import Conflict
    from trikchi.http import ClientInfo
    from trikchi.social import services
    from trikchi.social.models import Identity

    with app.app_context():
        user = User(name="Dora", email=None, password_hash=None)
        db.session.add(user)
        db.session.flush()
        identities = [Identity(user_id=user.id, provider="test", subject=str(n)) for n in range(2)]
        db.session.add_all(identities)
        db.session.commit()
        user_id, identity_ids = user.id, [identity.id for identity in identities]

    both_counting = Barrier(2, timeout=1)
    count = services.refuse_removing_the_last

    def held(user):
        try:
            both_counting.wait()  # unserialized, both would count two ways here
        except BrokenBarrierError:
            pass  # serialized: the other one is not coming until this one is done
        count(user)

    monkeypatch.setattr(services, "refuse_removing_the_last", held)

    def unlink(i):
        with app.app_context():
            try:
                services.unlink_identity(user_id, identity_ids[i], ClientInfo("127.0.0.1", "test"), None)
            except Conflict:
                return "refused"
            return "unlinked"

    assert sorted(race(2, unlink)) == ["refused", "unlinked"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Identity)) == 1
