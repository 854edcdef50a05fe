"""Real gunicorn workers racing on one database."""

from __future__ import annotations

import fcntl
import os

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


def committed_to_database_file(path: str, tmp_path, jti: str) -> bool:
    """Whether the database file itself (without its write-ahead log) holds refresh token ``jti``:
    true only once a checkpoint has copied the log back."""
    import shutil
    import sqlite3

    copy = tmp_path / "main-file-only.db"
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(copy)
    try:
        return connection.execute("SELECT 1 FROM refresh_tokens WHERE jti = ?", (jti,)).fetchone() is not None
    finally:
        connection.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # a PostgreSQL server checkpoints itself
def test_refresh_checkpoints_sqlite_after_leaving_the_write_slot(app, auth, monkeypatch, tmp_path):
    """The WAL is copied back to the database file by the refreshing process once it has left
    the write slot (other writers go on), not inside it by SQLite's commit."""
    import jwt

    from trikchi import database

    slot_free = []
    checkpoint = database._checkpoint

    def watched(connection):
        with app.app_context():
            other = os.open(f"{db.engine.url.database}.write-lock", os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while the slot is held
            slot_free.append(True)
        finally:
            os.close(other)
        checkpoint(connection)

    monkeypatch.setattr(database, "_checkpoint", watched)
    monkeypatch.setattr(database, "SQLITE_CHECKPOINT_EVERY", 1)
    auth.signup()
    assert auth.refresh().status_code == 200
    successor = jwt.decode(auth.refresh_cookie(), options={"verify_signature": False})["jti"]
    with app.app_context():
        path = db.engine.url.database
    assert slot_free == [True]
    assert committed_to_database_file(path, tmp_path, successor)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # a PostgreSQL server checkpoints itself
def test_a_failed_checkpoint_leaves_the_refresh_answered(app, auth, monkeypatch, caplog):
    """The refresh is committed before the checkpoint: a checkpoint error is logged, not answered
    (a refresh that failed there would leave its client with a spent token)."""
    import sqlite3

    from trikchi import database

    class Refusing:
        def __init__(self, connection):
            self.connection = connection

        def cursor(self):
            raise sqlite3.OperationalError("disk I/O error")

    checkpoint = database._checkpoint
    monkeypatch.setattr(database, "_checkpoint", lambda connection: checkpoint(Refusing(connection)))
    monkeypatch.setattr(database, "SQLITE_CHECKPOINT_EVERY", 1)
    auth.signup()
    refreshed = auth.refresh()
    assert refreshed.status_code == 200
    assert "SQLite checkpoint failed" in caplog.text
    assert auth.refresh().status_code == 200  # the new cookie was the committed one
