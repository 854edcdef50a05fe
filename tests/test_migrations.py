"""The migration chain: empty → head → base → head, and no drift from the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect

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
    expected = {"users", "sessions", "refresh_tokens", "auth_events", "identities"}
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
