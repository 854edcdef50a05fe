"""SPEC §10 account deletion: DELETE /auth/me (fresh) ends every session, clears the cookies,
mails a last confirmation, and leaves no row in any table holding the account's email, name
or IP address; the audit events stay without them; the address can register again."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from sqlalchemy import MetaData, create_engine, func, select, text, update

from tests.conftest import PASSWORD, AuthActions
from tests.support.mails import link_token, text_of, unique, wait_for_subject
from trikchi.auth.models import AuthSession, User
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.outbox.models import Delivery

DELETED = "Your trikchi.uz account was deleted"
LEAVER_IP, STAYER_IP = "203.0.113.77", "198.51.100.5"
LEAVER_AGENT = "LeaverBrowser/1.0 (unique-agent-7f3a)"


@pytest.fixture
def mail_app(mail_app_factory):
    return mail_app_factory()


def device(app, ip: str, agent: str = "pytest") -> AuthActions:
    """A browser at ``ip``: every request it makes comes from there."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": ip, "HTTP_USER_AGENT": agent})
    return AuthActions(client)


def every_value(app) -> list[tuple[str, str, str]]:
    """``(table, column, value as text)`` of every cell of every table of the database."""
    with app.app_context():
        reflected = MetaData()
        reflected.reflect(bind=db.engine)
        assert {t.name for t in db.metadata.sorted_tables} <= set(reflected.tables)
        cells = []
        with db.engine.connect() as connection:
            for table in reflected.sorted_tables:
                for row in connection.execute(select(table)).mappings():
                    cells += [
                        (table.name, column, str(value)) for column, value in row.items() if value is not None
                    ]
        return cells


def wait_until_the_outbox_is_empty(app, seconds: float = 15) -> None:
    """Until the worker has sent every mail (a bounded wait)."""
    deadline = time.monotonic() + seconds
    while True:
        with app.app_context():
            pending = db.session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status != "sent")
            )
            db.session.remove()
        if pending == 0:
            return
        assert time.monotonic() < deadline, f"{pending} deliveries still unsent"
        time.sleep(0.05)


def holding(cells, needle: str) -> list[tuple[str, str]]:
    return [(table, column) for table, column, value in cells if needle.lower() in value.lower()]


def test_deletion_leaves_no_personal_data_in_any_table(mail_app, smtp_server):
    email, name = unique("leaver"), "Zebulon Quagmire"
    stayer_email, stayer_name = unique("stayer"), "Olmos Karimova"
    leaver = device(mail_app, LEAVER_IP, LEAVER_AGENT)
    assert leaver.register(email=email, name=name).status_code == 201
    assert leaver.login(email=email).status_code == 200
    phone = device(mail_app, LEAVER_IP, LEAVER_AGENT)
    assert phone.login(email=email).status_code == 200
    assert phone.refresh().status_code == 200
    assert device(mail_app, LEAVER_IP).login(email=email, password="wrong password!").status_code == 401
    renamed = leaver.client.patch("/auth/me", json={"name": name, "locale": "ru"}, headers=leaver.headers())
    assert renamed.status_code == 200
    leaver.client.post("/auth/verify_email/request", headers=leaver.headers())
    leaver.client.post("/auth/email", json={"new_email": unique("never")}, headers=leaver.headers())
    stayer = device(mail_app, STAYER_IP)
    assert stayer.register(email=stayer_email, name=stayer_name).status_code == 201
    assert stayer.login(email=stayer_email).status_code == 200

    before = every_value(mail_app)
    for needle in (email, name, LEAVER_IP, LEAVER_AGENT):
        assert holding(before, needle), needle  # the check below would find them
    with mail_app.app_context():
        events_before = db.session.scalar(select(func.count()).select_from(AuthEvent))

    response = leaver.client.delete("/auth/me", headers=leaver.headers())
    assert response.status_code == 204 and response.get_data() == b""
    cleared = response.headers.getlist("Set-Cookie")
    for cookie in ("refresh_token=;", "csrf_refresh_token=;", "trikchi_device=;"):
        assert any(c.startswith(cookie) for c in cleared), cleared
    assert leaver.client.get_cookie("refresh_token") is None

    # A last mail, in the account's language, written before the name was gone; once the outbox
    # worker has sent it, the database keeps only its subject.
    goodbye = wait_for_subject(smtp_server, email, "Ваша учётная запись trikchi.uz удалена")
    assert name in text_of(goodbye)
    wait_until_the_outbox_is_empty(mail_app)
    after = every_value(mail_app)
    for needle in (email, name, LEAVER_IP, LEAVER_AGENT):
        assert holding(after, needle) == [], needle
    # The other account is untouched, and the audit log kept its events (types and times).
    for needle in (stayer_email, stayer_name, STAYER_IP):
        assert holding(after, needle), needle
    with mail_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuthEvent)) == events_before + 1
        kept = db.session.execute(
            select(AuthEvent.type, AuthEvent.user_id, AuthEvent.ip, AuthEvent.details).where(
                AuthEvent.user_id.is_(None)
            )
        ).all()
        types = [row.type for row in kept]
        assert {"registered", "login_succeeded", "login_failed", "profile_updated", "account_deleted"} <= set(
            types
        )
        assert all(row.ip is None and row.details is None for row in kept)
        assert db.session.scalar(select(func.count()).select_from(User).where(User.email == email)) == 0
        assert db.session.scalar(select(func.count()).select_from(AuthSession)) == 1  # the stayer's

    # Every session ended: the access tokens and the refresh cookies of both devices.
    assert leaver.me().status_code == 401
    assert phone.me().status_code == 401 and phone.refresh().status_code == 401
    # The address is free again.
    again = AuthActions(mail_app.test_client())
    assert again.register(email=email, name="Someone Else").status_code == 201
    assert again.login(email=email).status_code == 200
    assert again.me().json["name"] == "Someone Else"


def test_deletion_needs_a_fresh_sign_in(mail_app, smtp_server):
    email = unique("keep")
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    with mail_app.app_context():
        db.session.execute(update(AuthSession).values(auth_time=utcnow() - timedelta(hours=1)))
        db.session.commit()
    assert user.refresh().status_code == 200
    response = user.client.delete("/auth/me", headers=user.headers())
    assert response.status_code == 401 and response.json["error"] == "fresh_signin_required"
    assert user.me().status_code == 200
    reauth = user.client.post("/auth/reauthenticate", json={"password": PASSWORD}, headers=user.headers())
    assert (
        user.client.delete("/auth/me", headers=user.headers(reauth.json["access_token"])).status_code == 204
    )
    wait_for_subject(smtp_server, email, DELETED)


def test_deletion_needs_a_signed_in_user(client):
    assert client.delete("/auth/me").status_code == 401


def test_the_last_admin_cannot_delete_itself(app, auth, runner):
    auth.signup()
    with app.app_context():
        db.session.execute(update(User).values(role="admin"))
        db.session.commit()
    response = auth.client.delete("/auth/me", headers=auth.headers())
    assert response.status_code == 409 and response.json["error"] == "last_admin"
    assert auth.me().status_code == 200


def test_an_admin_with_another_admin_can_delete_itself(app, make_auth):
    first, second = make_auth(), make_auth()
    first.signup(email="first@example.com")
    second.signup(email="second@example.com")
    with app.app_context():
        db.session.execute(update(User).values(role="admin"))
        db.session.commit()
    assert first.client.delete("/auth/me", headers=first.headers()).status_code == 204
    assert second.me().json["role"] == "admin"


CONFIRM = "Confirm your new email for trikchi.uz"


def test_a_new_account_never_gets_the_id_of_a_deleted_one(mail_app, smtp_server):
    """Ids are never reused (SQLite handed the newest id out again once its row was deleted): an
    email-change link of a deleted account names its id, and dies with it, even when a new account
    registers the same address."""
    email, wanted = unique("gone"), unique("wanted")
    leaver = AuthActions(mail_app.test_client())
    leaver.signup(email=email)
    old_id = leaver.me().json["id"]
    requested = leaver.client.post("/auth/email", json={"new_email": wanted}, headers=leaver.headers())
    assert requested.status_code == 202
    token = link_token(wait_for_subject(smtp_server, wanted, CONFIRM), "confirm-email")
    assert leaver.client.delete("/auth/me", headers=leaver.headers()).status_code == 204

    newcomer = AuthActions(mail_app.test_client())
    registered = newcomer.register(email=email, name="Newcomer")

    assert registered.status_code == 201
    assert registered.json["id"] > old_id
    used = mail_app.test_client().post("/auth/email/confirm", json={"token": token})
    assert used.status_code == 401 and used.json["error"] == "invalid_link"
    assert newcomer.login(email=email).status_code == 200
    assert newcomer.me().json["email"] == email


def deleted_while_it_waits(backend: str, database_url: str, user_id: int, send):
    """``send()`` run in a thread while the test holds the lock its first write needs; the user row is
    deleted and committed while it waits for that lock, as a racing ``DELETE /auth/me`` would; its answer.

    PostgreSQL: the test locks the user's row (FOR UPDATE), which the session INSERT's foreign-key
    check and the profile's UPDATE wait for, and deletes once the request is seen waiting for a lock
    in pg_stat_activity. SQLite: the test holds the write lock (BEGIN IMMEDIATE); a waiting writer
    cannot be seen, so the deletion comes after a second (a request reaches its first write within
    milliseconds). Reads never wait on either database: the request reads the user before it is gone.
    """
    engine = create_engine(database_url)
    holder = engine.raw_connection()
    try:
        cursor = holder.cursor()
        if backend == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(send)
            if backend == "sqlite":
                time.sleep(1)
            else:
                wait_for_a_lock_waiter(engine, answer)
            assert not answer.done(), answer.result().text  # it must still be waiting
            cursor.execute(
                "DELETE FROM users WHERE id = ?"
                if backend == "sqlite"
                else "DELETE FROM users WHERE id = %s",
                (user_id,),
            )
            holder.commit()
            return answer.result(timeout=60)
    finally:
        holder.close()
        engine.dispose()


def wait_for_a_lock_waiter(engine, answer, seconds: float = 30) -> None:
    """Until a PostgreSQL backend of this database waits for a lock (or the request has answered)."""
    deadline = time.monotonic() + seconds
    while not answer.done():
        with engine.connect() as connection:
            waiting = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        assert time.monotonic() < deadline, "the request never waited for the locked row"
        time.sleep(0.01)


@pytest.mark.slow
def test_a_sign_in_racing_the_deletion_of_its_account_gets_401_under_gunicorn(
    racing_server, database_url, backend
):
    """gunicorn workers: a login whose account is deleted between its read of the user and its
    session INSERT answers the generic 401 JSON error, not a 500 of the broken foreign key."""
    credentials = {"email": "racer@example.com", "password": PASSWORD}
    registered = requests.post(
        racing_server.url + "/auth/register", json={"name": "Ada", **credentials}, timeout=30
    )
    assert registered.status_code == 201

    response = deleted_while_it_waits(
        backend,
        database_url,
        registered.json()["id"],
        lambda: requests.post(racing_server.url + "/auth/login", json=credentials, timeout=60),
    )

    assert response.status_code == 401, (response.text, racing_server.log()[-3000:])
    assert response.json()["error"] == "invalid_credentials"
    assert "refresh_token" not in response.cookies
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            # The login had read the user (an unknown email is recorded as bad_credentials).
            reasons = connection.scalars(
                select(AuthEvent.details).where(AuthEvent.type == "login_failed")
            ).all()
            assert reasons == [{"method": "password", "reason": "account_deleted"}]
            assert connection.scalar(select(func.count()).select_from(AuthSession)) == 0
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_profile_change_racing_the_deletion_of_its_account_gets_401_under_gunicorn(
    racing_server, database_url, backend
):
    """gunicorn workers: PATCH /auth/me whose account is deleted between the guard's read and the
    UPDATE answers 401 session_ended, not a 500 of StaleDataError."""
    credentials = {"email": "racer@example.com", "password": PASSWORD}
    registered = requests.post(
        racing_server.url + "/auth/register", json={"name": "Ada", **credentials}, timeout=30
    )
    assert registered.status_code == 201
    token = requests.post(racing_server.url + "/auth/login", json=credentials, timeout=30).json()[
        "access_token"
    ]

    response = deleted_while_it_waits(
        backend,
        database_url,
        registered.json()["id"],
        lambda: requests.patch(
            racing_server.url + "/auth/me",
            json={"name": "Bob"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ),
    )

    assert response.status_code == 401, (response.text, racing_server.log()[-3000:])
    assert response.json()["error"] == "session_ended"
