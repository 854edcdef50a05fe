"""The fast paths keep immediate revocation: every way a session ends stops its tokens at once.

``GET /auth/me`` verifies the token in one pass and reads the user and session as one
row; refresh runs as Core statements. None of that may cache a verdict: the next
request after a logout, a logout everywhere, a session deletion, theft detection or a
deactivation is refused, with no delay.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from flask.sessions import NullSession
from sqlalchemy import create_engine

from tests.conftest import PASSWORD
from tests.support.sessions import age_used_tokens, use_cookie
from trikchi.admin.services import update_user
from trikchi.auth.guards import CurrentUser
from trikchi.auth.models import AuthSession, RefreshToken, User
from trikchi.auth.schemas import UserSchema, user_body
from trikchi.extensions import db


def ended_by(how: str, app, auth, make_auth) -> None:
    """End ``auth``'s session in one of the ways a session ends."""
    if how == "logout":
        assert auth.logout().status_code == 200
    elif how == "logout_all":
        assert auth.client.post("/auth/logout_all", headers=auth.headers()).status_code == 204
    elif how == "session_deleted":
        other = make_auth()
        other.login()
        sid = next(
            s["id"] for s in auth.client.get("/auth/sessions", headers=auth.headers()).json if s["current"]
        )
        assert other.client.delete(f"/auth/sessions/{sid}", headers=other.headers()).status_code == 204
    elif how == "deactivated":
        with app.app_context():
            update_user(None, db.session.scalar(db.select(User.id)), None, is_active=False)
    elif how == "password_reset_elsewhere":
        other = make_auth()
        other.login()
        body = {"current_password": PASSWORD, "new_password": "another long passphrase"}
        assert other.client.post("/auth/password", json=body, headers=other.headers()).status_code == 204


@pytest.mark.parametrize(
    "how", ["logout", "logout_all", "session_deleted", "deactivated", "password_reset_elsewhere"]
)
def test_an_ended_session_stops_its_access_and_refresh_tokens_at_once(app, auth, make_auth, how):
    auth.signup()
    access, refresh, csrf = auth.access_token, auth.refresh_cookie(), auth.csrf_cookie()
    assert auth.me().status_code == 200  # verified and looked up on the fast path
    ended_by(how, app, auth, make_auth)
    me = auth.me(access)
    assert me.status_code == 401 and me.json["error"] == "session_ended"
    use_cookie(auth.client, refresh, csrf)
    refreshed = auth.refresh(csrf=csrf)
    assert refreshed.status_code == 401 and refreshed.json["error"] == "session_ended"


def test_theft_detection_stops_the_access_token_at_once(app, auth, make_auth):
    auth.signup()
    stolen, csrf = auth.refresh_cookie(), auth.csrf_cookie()
    assert auth.refresh().status_code == 200
    access = auth.access_token
    age_used_tokens(app, 11)
    thief = make_auth()
    use_cookie(thief.client, stolen, csrf)
    assert thief.refresh().json["error"] == "refresh_token_reused"
    assert auth.me(access).json["error"] == "session_ended"


def session_state(app) -> tuple[int, int, int]:
    """(refresh token rows, unused ones, the sessions' recorded refreshes)."""
    with app.app_context():
        tokens = db.session.execute(
            db.select(db.func.count(), db.func.count().filter(RefreshToken.used_at.is_(None)))
        ).one()
        rotations = db.session.scalar(db.select(db.func.sum(AuthSession.rotation_count)))
        db.session.rollback()
    return tokens[0], tokens[1], rotations


def test_a_refused_refresh_writes_nothing(app, auth):
    """Whichever way a backend rotates (PostgreSQL: one statement in autocommit; SQLite: a
    transaction rolled back), a refresh that is refused or answered from the grace window
    consumes no token, inserts none and records no rotation."""
    auth.signup()
    spent, csrf = auth.refresh_cookie(), auth.csrf_cookie()
    assert auth.refresh().status_code == 200
    before = session_state(app)
    assert before == (2, 1, 1)

    use_cookie(auth.client, spent, csrf)  # a second tab, inside the grace window
    assert auth.refresh(csrf=csrf).status_code == 200
    assert session_state(app) == before

    live = auth.refresh_cookie()  # unused: only the ended session refuses it
    assert auth.logout().status_code == 200
    for cookie in (live, spent):
        use_cookie(auth.client, cookie, csrf)
        refused = auth.refresh(csrf=csrf)
        assert refused.status_code == 401 and refused.json["error"] == "session_ended"
        assert session_state(app) == before


def test_me_answers_exactly_what_the_user_schema_dumps(app, auth):
    """``GET /auth/me`` builds its body without marshmallow (``schemas.user_body``): the same
    keys and values as ``UserSchema`` — the schema the API document gives for it."""
    auth.signup()
    assert auth.client.patch("/auth/me", json={"locale": "uz"}, headers=auth.headers()).status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User))
        expected = UserSchema().dump(user)
    response = auth.me()
    assert response.status_code == 200 and response.json == expected
    assert expected["locale"] == "uz" and expected["email"] == "ada@example.com"

    sign_in = datetime(2026, 11, 26, 3, 4, 5, tzinfo=UTC)
    for record in (
        CurrentUser(
            7, "Ada", None, "customer", False, sign_in, None, None, False, session_id="s"
        ),  # Telegram
        CurrentUser(
            8, "Бобур", "b@example.uz", "admin", True, sign_in.replace(microsecond=42), "ru", None, False, "s"
        ),
        CurrentUser(9, "", None, "customer", False, sign_in, "uz", "+998901234567", True, "s"),  # by phone
    ):
        assert user_body(record) == UserSchema().dump(record)
        assert list(user_body(record)) == list(UserSchema().fields)


def test_no_cookie_session_is_opened_or_set(app, client, auth):
    auth.signup()
    response = auth.me()
    assert not any(c.startswith("session=") for c in response.headers.getlist("Set-Cookie"))
    with app.test_request_context():
        from flask import session

        assert isinstance(session._get_current_object(), NullSession)


def test_postgresql_connections_idle_across_a_server_restart_are_pinged_not_answered_503(
    private_postgres, monkeypatch
):
    """No ping per request (a round trip each), yet a restart during a quiet spell costs no 503.

    Without the ping after idle the first request after the restart fails on its dead pooled
    connection; with it the connection is replaced before use.
    """
    from tests.conftest import AuthActions, make_app, migrate_to_head
    from trikchi import database

    url = private_postgres.create_database("idle")
    migrate_to_head(url)
    app = make_app(url)
    try:
        auth = AuthActions(app.test_client())
        auth.signup()
        assert auth.me().status_code == 200

        monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", float("inf"))
        private_postgres.stop_server()
        private_postgres.start_server()
        assert auth.me().status_code == 503  # the pooled connection died with the server
        assert auth.me().status_code == 200  # ... and the pool was replaced

        monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.5)
        for check in (auth.me, auth.refresh, auth.refresh):
            private_postgres.stop_server()
            private_postgres.start_server()
            time.sleep(0.5)
            assert check().status_code == 200

        private_postgres.stop_server()  # down: no connection can be opened either
        time.sleep(0.5)
        assert auth.me().status_code == 503 and auth.refresh().status_code == 503
        private_postgres.start_server()
        assert auth.me().status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()


def test_ensure_sync_answers_once_per_function_and_still_refuses_nothing(app):
    """TrikchiFlask caches Flask's coroutine check; unhashable callables are asked every time."""

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> str:
            return "ok"

    view = Unhashable()
    assert app.ensure_sync(view) is view and app.ensure_sync(view)() == "ok"

    def plain() -> str:
        return "plain"

    assert app.ensure_sync(plain) is plain and app.ensure_sync(plain) is plain

    async def coroutine() -> str:
        return "awaited"

    try:
        converted = app.ensure_sync(coroutine)
    except RuntimeError as error:  # Flask's own answer when asgiref is not installed
        assert "async" in str(error).lower()
    else:
        assert converted is not coroutine and converted() == "awaited"


POSTGRESQL_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)


def _backend_pids(engine) -> set[int]:
    """The server process of each connection the pool holds (all checked out at once)."""
    connections = [engine.connect() for _ in range(max(engine.pool.checkedin(), 1))]
    try:
        return {c.exec_driver_sql("SELECT pg_backend_pid()").scalar() for c in connections}
    finally:
        for connection in connections:
            connection.close()


@POSTGRESQL_ONLY
def test_a_postgresql_connection_whose_server_process_ended_while_idle_is_replaced_not_answered_503(
    app, auth, monkeypatch
):
    """A pooled connection whose server process ended while it sat idle (an administrator, a
    proxy's idle timeout) is found dead by the ping after idle, and replaced before use."""
    from trikchi import database

    auth.signup()
    assert auth.me().status_code == 200
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.05)
    with app.app_context():
        engine = db.engine
        idle = _backend_pids(engine)
        other = create_engine(engine.url)
        with other.connect() as connection:
            for pid in idle:
                # With a timeout, it returns once the backend has exited, not once it was signalled.
                ended = connection.exec_driver_sql("SELECT pg_terminate_backend(%(p)s, 10000)", {"p": pid})
                assert ended.scalar() is True
        other.dispose()
        time.sleep(0.1)
        assert auth.me().status_code == 200  # pinged, found dead, replaced: no 503
        assert auth.refresh().status_code == 200
        assert not _backend_pids(engine) & idle


def test_a_forked_process_uses_connections_of_its_own(app, auth):
    """A process forked after the app used the database (a gunicorn worker of a preloaded app, a
    test) never runs statements on, or closes, a connection it inherited; the parent's still work
    after the child has come and gone."""
    import os

    auth.signup()
    assert auth.me().status_code == 200
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            parent = connection.connection.dbapi_connection
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, and leave without running any cleanup of the parent's
            verdict = b"?"
            try:
                with engine.connect() as connection:
                    own = connection.connection.dbapi_connection is not parent
                verdict = b"own" if own and auth.me().status_code == 200 else b"inherited"
                engine.dispose()  # closes the child's own connections only
            finally:
                os.write(write, verdict)
                os._exit(0)
        os.close(write)
        _pid, status = os.waitpid(pid, 0)
        verdict = os.read(read, 16)
        os.close(read)
        assert status == 0 and verdict == b"own"
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection is parent
    assert auth.me().status_code == 200 and auth.refresh().status_code == 200


def test_requests_on_threads_that_end_leave_open_files_flat(app, auth):
    """``flask run`` answers each request on a new thread: the connections they used go back to
    the pool, and open files do not grow with the number of threads."""
    import gc
    import os
    import threading

    auth.signup()
    token = auth.access_token

    def open_files() -> int:
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    answers: list[int] = []

    def requests_on_new_threads(count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=lambda: answers.append(auth.me(token).status_code))
            thread.start()
            thread.join()
        assert answers[-count:] == [200] * count

    requests_on_new_threads(50)  # SQLite keeps a few descriptors of closed connections for reuse
    before = open_files()
    requests_on_new_threads(200)
    assert open_files() - before < 20
