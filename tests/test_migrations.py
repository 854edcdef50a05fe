"""The migration chain: empty → head → base → head, and no drift from the models."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, Table, create_engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import make_app
from trikchi.auth.tokens import issue_token_pair
from trikchi.database import utcnow
from trikchi.extensions import db


def empty_database_url(backend, request, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    return request.getfixturevalue("postgres_server").create_database("trikchi_migrations")


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_and_no_drift(backend, request, tmp_path):
    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url)
    expected = {"users", "sessions", "refresh_tokens", "auth_events", "identities", "used_telegram_payloads"}
    with app.app_context():
        upgrade()
        assert expected <= tables(url)
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []  # what `flask db check` checks
        downgrade(revision="base")
        assert tables(url) <= {"alembic_version"}
        upgrade()
        assert expected <= tables(url)
        db.engine.dispose()


def test_flask_db_upgrade_command(backend, request, tmp_path):
    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "users" in tables(url)
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.engine.dispose()


def test_refresh_tokens_rekeyed_by_session_keep_every_token_both_ways(backend, request, tmp_path):
    """f1c3a7e5d920 moves refresh tokens to a (session_id, jti) key: a session signed in before
    it refreshes after it, a token it consumed is still recognised as reused, and the way back
    keeps every row and restores the old index."""
    from tests.conftest import AuthActions

    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url, REFRESH_REUSE_GRACE_SECONDS=0)
    with app.app_context():
        upgrade(revision="e4a9c2f7b1d8")
        db.engine.dispose()
        live, spent, csrf = signed_in_before(app, url)
        customer = AuthActions(app.test_client())
        customer.client.set_cookie("refresh_token", live)
        customer.client.set_cookie("csrf_refresh_token", csrf)

        upgrade()
        engine = create_engine(url)
        try:
            assert inspect(engine).get_pk_constraint("refresh_tokens")["constrained_columns"] == [
                "session_id",
                "jti",
            ]
            assert not inspect(engine).get_indexes("refresh_tokens")
            if backend == "sqlite":
                with engine.connect() as conn:
                    ddl = conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'refresh_tokens'"))
                assert "WITHOUT ROWID" in ddl
        finally:
            engine.dispose()
        refreshed = customer.refresh()
        assert refreshed.status_code == 200, refreshed.json
        assert count_tokens() == 3
        thief = AuthActions(app.test_client())
        thief.client.set_cookie("refresh_token", spent)
        thief.client.set_cookie("csrf_refresh_token", customer.csrf_cookie())
        reused = thief.refresh()
        assert reused.status_code == 401 and reused.json["error"] == "refresh_token_reused"
        db.engine.dispose()

        downgrade(revision="e4a9c2f7b1d8")
        assert count_tokens() == 3
        engine = create_engine(url)
        try:
            indexes = {index["name"] for index in inspect(engine).get_indexes("refresh_tokens")}
            assert "ix_refresh_tokens_session_id_used_at" in indexes
            assert inspect(engine).get_pk_constraint("refresh_tokens")["constrained_columns"] == ["jti"]
        finally:
            engine.dispose()
        upgrade()
        db.engine.dispose()


def signed_in_before(app, url: str) -> tuple[str, str, str]:
    """A customer signed in and refreshed once under the schema the database has now, written as
    that schema's rows (today's models have columns it lacks): the live refresh cookie, the spent
    one, and the CSRF value."""
    engine = create_engine(url)
    meta = MetaData()
    users, sessions, tokens = (
        Table(name, meta, autoload_with=engine) for name in ("users", "sessions", "refresh_tokens")
    )
    now = utcnow()
    session_id, spent_jti, live_jti = uuid.uuid4().hex, str(uuid.uuid4()), str(uuid.uuid4())
    ends = now + timedelta(days=30)

    def row(table: Table, **values: object) -> dict[str, object]:
        return {key: value for key, value in values.items() if key in table.c}

    try:
        with engine.begin() as conn:
            user_id = conn.execute(
                insert(users).values(
                    row(
                        users,
                        name="Ada",
                        email="ada@example.com",
                        password_hash="not-a-hash",
                        role="customer",
                        is_active=True,
                        email_verified=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(sessions).values(
                    row(
                        sessions,
                        id=session_id,
                        user_id=user_id,
                        created_at=now,
                        last_used_at=now,
                        expires_at=ends,
                        absolute_expires_at=now + timedelta(days=90),
                        auth_time=now,
                        auth_method="password",
                        rotation_count=1,
                    )
                )
            )
            for jti, parent, used_at in ((spent_jti, None, now), (live_jti, spent_jti, None)):
                conn.execute(
                    insert(tokens).values(
                        jti=jti,
                        session_id=session_id,
                        parent_jti=parent,
                        issued_at=now,
                        expires_at=ends,
                        used_at=used_at,
                    )
                )
    finally:
        engine.dispose()
    live = issue_token_pair(app, user_id, "customer", session_id, live_jti, ends, now, auth_time=now)
    spent = issue_token_pair(app, user_id, "customer", session_id, spent_jti, ends, now, auth_time=now)
    return live.refresh_token, spent.refresh_token, live.csrf_token


def count_tokens() -> int:
    with db.engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM refresh_tokens"))


NEVER_REUSED = {"users", "identities", "auth_events", "outbox"}


def every_row(url: str, leave_out: dict[str, set[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table but alembic's, as text, sorted: to compare a database before and after.

    ``leave_out``: columns (by table) that later migrations added, to compare across them.
    """
    leave_out = leave_out or {}
    engine = create_engine(url)
    try:
        reflected = MetaData()
        reflected.reflect(bind=engine)
        with engine.connect() as conn:
            return {
                name: sorted(
                    tuple(map(str, row))
                    for row in conn.execute(
                        select(*(c for c in table.columns if c.name not in leave_out.get(name, ())))
                    )
                )
                for name, table in reflected.tables.items()
                if name != "alembic_version"
            }
    finally:
        engine.dispose()


def autoincrement_tables(url: str) -> set[str]:
    """The SQLite tables declared AUTOINCREMENT."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(
                conn.scalars(
                    text("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'")
                )
            )
    finally:
        engine.dispose()


# The revision that made ids never reused; later ones (bans) add columns its tests do not compare.
IDS = "000fd5955eb1"
BANS = "9c4d2a7e5b13"


def some_of_everything_at(app, revision: str) -> None:
    """``some_of_everything`` written by today's app at head, then the schema taken back to ``revision``."""
    upgrade()
    some_of_everything(app)
    downgrade(revision=revision)
    db.engine.dispose()


def some_of_everything(app) -> None:
    """Three signed-in users (sessions, refresh tokens, events, mails), one with a linked identity."""
    from tests.conftest import AuthActions
    from trikchi.social.models import Identity

    for n in (1, 2, 3):
        AuthActions(app.test_client()).signup(email=f"user{n}@example.com")
    db.session.add(Identity(user_id=3, provider="telegram", subject="42"))
    db.session.commit()
    db.session.remove()
    db.engine.dispose()


def foreign_keys_enforced() -> bool:
    """Whether a connection from the app's pool enforces foreign keys (always, on PostgreSQL)."""
    with db.engine.connect() as conn:
        return conn.dialect.name != "sqlite" or conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_ids_migration_keeps_every_row_both_ways_and_ids_are_never_reused(backend, request, tmp_path):
    """000fd5955eb1 makes SQLite's users, identities, auth_events and outbox AUTOINCREMENT by rebuilding
    them: up and down with data, every row of every table stays as it was (dropping ``users`` with
    foreign keys on would have emptied or unlinked every table that refers to it), and afterwards the
    id of a deleted newest account is never handed out again."""
    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url)
    with app.app_context():
        some_of_everything_at(app, "5b2e8c1d9f04")
        before = every_row(url)
        for table in ("users", "sessions", "refresh_tokens", "auth_events", "identities", "outbox"):
            assert before[table], table

        upgrade(revision=IDS)
        assert every_row(url) == before
        assert foreign_keys_enforced()
        if backend == "sqlite":
            assert autoincrement_tables(url) == NEVER_REUSED
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM users WHERE id = 3"))  # the newest account goes
        from tests.conftest import AuthActions

        upgrade()  # today's models register the next account
        registered = AuthActions(app.test_client()).register("user4@example.com")
        assert registered.status_code == 201
        assert registered.json["id"] == 4
        db.session.remove()
        db.engine.dispose()
        downgrade(revision=IDS)
        kept = every_row(url)

        downgrade(revision="5b2e8c1d9f04")
        assert every_row(url) == kept
        assert foreign_keys_enforced()
        if backend == "sqlite":
            assert autoincrement_tables(url) == set()
        upgrade(revision=IDS)
        assert every_row(url) == kept
        upgrade()
        db.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # PostgreSQL has nothing to rebuild
def test_a_failed_ids_rebuild_leaves_the_tables_and_foreign_keys_as_they_were(
    backend, request, tmp_path, monkeypatch
):
    """The rebuild turns SQLite's foreign keys off on its connection: when it fails, that connection is
    never handed out again (the next one enforces them), nothing changed, and the migration can run again."""
    from alembic.operations import Operations

    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url)
    with app.app_context():
        some_of_everything_at(app, "5b2e8c1d9f04")
        before = every_row(url)
        rebuild = Operations.batch_alter_table

        def failing_at_the_third_table(self, table_name, **kwargs):
            if table_name == "auth_events":
                raise RuntimeError("the disk is full")
            return rebuild(self, table_name, **kwargs)

        monkeypatch.setattr(Operations, "batch_alter_table", failing_at_the_third_table)
        with pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits
            upgrade(revision=IDS)
        monkeypatch.undo()

        assert foreign_keys_enforced()
        assert every_row(url) == before
        with db.engine.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "5b2e8c1d9f04"
        upgrade(revision=IDS)
        assert every_row(url) == before
        assert autoincrement_tables(url) == NEVER_REUSED
        db.engine.dispose()


def test_bans_migration_keeps_every_row_both_ways(backend, request, tmp_path):
    """9c4d2a7e5b13 adds the ban columns by plain ALTER TABLE: every row of every table stays (no
    users rebuild, which would have emptied the tables that refer to it), existing accounts start
    unbanned, and the way back drops the columns and only them."""
    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url)
    with app.app_context():
        some_of_everything_at(app, IDS)
        before = every_row(url)
        assert all(before[table] for table in ("users", "sessions", "refresh_tokens", "identities"))

        upgrade(revision=BANS)
        after = every_row(url)
        assert {name: len(rows) for name, rows in after.items()} == {
            name: len(rows) for name, rows in before.items()
        }
        assert foreign_keys_enforced()
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                banned = conn.execute(text("SELECT banned_at, banned_until, ban_reason FROM users")).all()
        finally:
            engine.dispose()
        assert banned and all(row == (None, None, None) for row in banned)
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE users SET banned_at = created_at, ban_reason = 'spam' WHERE id = 2"))
        db.engine.dispose()

        downgrade(revision=IDS)
        assert every_row(url) == before
        assert foreign_keys_enforced()
        upgrade(revision=BANS)
        assert every_row(url) == after
        db.session.remove()
        db.engine.dispose()


PHONE = "3f6a2c8e1b57"  # phone numbers and SMS codes (after the bans)


def test_the_phone_migration_keeps_every_row_both_ways(backend, request, tmp_path):
    """3f6a2c8e1b57 adds users.phone, users.phone_verified and phone_codes with plain ALTER TABLE:
    up with data, every row stays (and gets no number); with numbers and a pending code, down keeps
    every other row as it was (no rebuild of users on SQLite), and up again works."""
    from tests.conftest import AuthActions
    from tests.support.sms import sms_code_for

    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url, RATELIMIT_ENABLED=False)
    with app.app_context():
        some_of_everything_at(app, BANS)
        before = every_row(url)
        upgrade(revision=PHONE)
        after = every_row(url)
        assert after["phone_codes"] == []
        assert {name: rows for name, rows in after.items() if name not in ("users", "phone_codes")} == {
            name: rows for name, rows in before.items() if name != "users"
        }
        assert [row[:-2] for row in after["users"]] == before["users"]  # the two new columns come last
        assert {row[-2:] for row in after["users"]} == {("None", "False")}
        assert foreign_keys_enforced()
        db.session.remove()
        db.engine.dispose()

        upgrade()
        customer = AuthActions(app.test_client())
        customer.login("user1@example.com")
        headers = customer.headers()
        assert (
            customer.client.post("/auth/phone", json={"phone": "+998901234567"}, headers=headers).status_code
            == 202
        )
        code = sms_code_for(app, "+998901234567")
        confirm = {"phone": "+998901234567", "code": code}
        assert customer.client.post("/auth/phone/confirm", json=confirm, headers=headers).status_code == 200
        assert app.test_client().post("/auth/phone/code", json={"phone": "+998911112233"}).status_code == 202
        db.session.remove()
        db.engine.dispose()
        with_numbers = every_row(url)
        assert with_numbers["phone_codes"]

        downgrade(revision=BANS)
        down = every_row(url)
        assert "phone_codes" not in down
        assert [row[:-2] for row in with_numbers["users"]] == down["users"]
        assert foreign_keys_enforced()
        if backend == "sqlite":
            assert autoincrement_tables(url) == NEVER_REUSED
        upgrade()
        assert AuthActions(app.test_client()).login("user2@example.com").status_code == 200
        db.session.remove()
        db.engine.dispose()


# The revision before d3a8f1c6b2e7 (auth_events.method).
BEFORE_EVENT_METHOD = "3e8a6f2c9b17"


def test_events_get_their_method_column_from_their_details_both_ways(backend, request, tmp_path):
    """d3a8f1c6b2e7 copies ``details["method"]`` of the events recorded before it into the new
    column (what ``/admin/stats`` counts by); events without one, or with a method that is no
    string, get none; the way back drops the column and keeps every event."""
    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url)
    with app.app_context():
        some_of_everything_at(app, BEFORE_EVENT_METHOD)  # registrations and password sign-ins
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO auth_events (created_at, type, details) VALUES "
                    "('2026-12-01 10:00:00', 'login_succeeded', '{\"method\": \"oidc:google\"}'), "
                    "('2026-12-01 10:00:00', 'odd', '{\"method\": 7}'), "
                    "('2026-12-01 10:00:00', 'odd', '[1, 2]'), "
                    "('2026-12-01 10:00:00', 'odd', 'null')"
                )
            )
        db.engine.dispose()
        before = every_row(url)
        upgrade(revision="d3a8f1c6b2e7")
        with db.engine.connect() as conn:
            methods = conn.execute(text("SELECT type, method FROM auth_events ORDER BY id")).all()
        assert [tuple(row) for row in methods] == [
            ("registered", None),
            ("login_succeeded", "password"),
        ] * 3 + [("login_succeeded", "oidc:google"), ("odd", None), ("odd", None), ("odd", None)]
        assert every_row(url, {"auth_events": {"method"}}) == before
        downgrade(revision=BEFORE_EVENT_METHOD)
        assert every_row(url) == before
        db.engine.dispose()


# The revision before 7a3d5e9c1f24 (auth_event_days, the roll-up of /admin/stats).
BEFORE_EVENT_DAYS = "d3a8f1c6b2e7"


def test_the_stats_rollup_table_comes_and_goes(backend, request, tmp_path):
    """7a3d5e9c1f24 adds the empty roll-up table, keyed by day, kind and method; the way back drops
    it and keeps every other row; up again, it is empty and fills as before."""
    url = empty_database_url(backend, request, tmp_path)
    app = make_app(url)
    with app.app_context():
        some_of_everything_at(app, BEFORE_EVENT_DAYS)
        before = every_row(url)
        upgrade()
        assert every_row(url) == {**before, "auth_event_days": []}
        row = {"day": "2026-12-01", "kind": "registrations", "method": "", "count": 3}
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO auth_event_days VALUES (:day, :kind, :method, :count)"), row)
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text("INSERT INTO auth_event_days VALUES (:day, :kind, :method, :count)"), row)
        downgrade(revision=BEFORE_EVENT_DAYS)
        assert "auth_event_days" not in tables(url)
        assert every_row(url) == before
        upgrade()
        assert every_row(url) == {**before, "auth_event_days": []}
        db.engine.dispose()
