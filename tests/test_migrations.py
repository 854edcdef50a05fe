"""The migration chain: empty → head → base → head, and no drift from the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from tests.conftest import make_app
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
        customer = AuthActions(app.test_client())
        customer.signup()
        spent = customer.refresh_cookie()
        assert customer.refresh().status_code == 200
        db.engine.dispose()

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
        assert customer.refresh().status_code == 200
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


def count_tokens() -> int:
    with db.engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM refresh_tokens"))
