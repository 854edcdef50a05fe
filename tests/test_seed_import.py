"""SPEC §12: ``flask users import-seed`` brings the seed's users over with their ids and passwords."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

import pytest
from sqlalchemy import create_engine, func, select

from tests.support import seed
from trikchi.auth.models import User
from trikchi.events import AuthEvent, Events
from trikchi.extensions import db

SOURCES = [
    pytest.param("sqlite", id="from-sqlite"),
    pytest.param("postgresql", id="from-postgresql", marks=pytest.mark.postgresql),
]
OLD_PASSWORD = "Password123"  # the seed's own example (letters and digits, 8+)


@pytest.fixture(params=SOURCES)
def seed_url(request, tmp_path):
    """An empty database of the seed's kind (the schema is created by ``seed_database``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trikchi_data.db'}"
    return request.getfixturevalue("postgres_server").create_database("seed_source")


def seed_row(id_, email, password_hash, **extra):
    row = {
        "id": id_,
        "name": f"User {id_}",
        "email": email,
        "phone": None,
        "password_hash": password_hash,
        "role": "customer",
        "avatar_url": None,
        "is_superuser": False,
        "created_at": datetime(2025, 11, 26, 11, 29, 23, 556492),
        "updated_at": datetime(2025, 11, 26, 11, 29, 23, 556492),
    }
    return row | extra


def import_seed(runner, url, *args):
    return runner.invoke(args=["users", "import-seed", url, *args])


@contextmanager
def seed_engine(url):
    """A transaction on the seed's database."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def users(app):
    with app.app_context():
        return {u.id: (u.email, u.role, u.name) for u in db.session.scalars(select(User))}


def test_imported_users_sign_in_with_their_old_passwords_under_the_same_ids(app, runner, auth, seed_url):
    hashes = {n: seed.hash_password(f"{OLD_PASSWORD}{n}") for n in (1, 7)}
    seed.create_seed_database(
        seed_url,
        [
            seed_row(1, "  Ada@Example.COM ", hashes[1]),
            seed_row(7, "boss@example.com", hashes[7], is_superuser=True, name="Boss"),
        ],
    )

    result = import_seed(runner, seed_url)

    assert result.exit_code == 0, result.output
    assert "Imported 2 user(s) of 2; 0 already present; 0 skipped." in result.output
    assert users(app) == {
        1: ("ada@example.com", "customer", "User 1"),
        7: ("boss@example.com", "admin", "Boss"),
    }
    assert "$argon2" not in result.output  # hashes are never printed
    response = auth.login("ADA@example.com", f"{OLD_PASSWORD}1")
    assert response.status_code == 200, response.json
    assert response.json["user_id"] == 1
    assert auth.login("boss@example.com", f"{OLD_PASSWORD}7").json["user_id"] == 7
    assert auth.login("ada@example.com", "wrong password").status_code == 401
    with app.app_context():
        ada = db.session.get(User, 1)
        # Upgraded to trikchi's parameters at the sign-in, and still the same password.
        assert ada.password_hash != hashes[1]
        assert ada.password_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
        assert ada.created_at.isoformat() == "2025-11-26T11:29:23.556492+00:00"
        summary = db.session.scalars(
            select(AuthEvent).where(AuthEvent.type == Events.SEED_USER_IMPORTED)
        ).one()
        assert summary.details == {"imported": 2, "already_present": 0, "skipped": 0}
    assert auth.login("ada@example.com", f"{OLD_PASSWORD}1").status_code == 200


def test_a_second_import_changes_nothing(app, runner, auth, seed_url):
    seed.create_seed_database(
        seed_url, [seed_row(n, f"user{n}@example.com", seed.hash_password(OLD_PASSWORD)) for n in (2, 3)]
    )
    assert import_seed(runner, seed_url).exit_code == 0
    assert auth.login("user2@example.com", OLD_PASSWORD).status_code == 200  # rehashes user 2
    before = users(app)

    result = import_seed(runner, seed_url)

    assert result.exit_code == 0, result.output
    assert "Imported 0 user(s) of 2; 2 already present; 0 skipped." in result.output
    assert users(app) == before
    assert auth.login("user3@example.com", OLD_PASSWORD).status_code == 200


def test_conflicting_and_malformed_rows_are_reported_and_skipped(app, runner, auth, seed_url):
    good = seed.hash_password(OLD_PASSWORD)
    auth.register("taken@example.com")  # trikchi's user 1, registered before the import
    seed.create_seed_database(
        seed_url,
        [
            seed_row(1, "someone.else@example.com", good),  # id 1 is another person in trikchi
            seed_row(2, "TAKEN@example.com", good),  # the email is trikchi user 1's
            seed_row(3, "not an email", good),
            seed_row(4, "bcrypt@example.com", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"),
            seed_row(5, "google@example.com", ""),  # the seed's Google sign-ins have no hash
            seed_row(6, "seller@example.com", good, role="seller"),
            seed_row(7, "truncated@example.com", good[:40]),
            seed_row(8, "fine@example.com", good),
            seed_row(9, "Fine@Example.com", good),  # the seed's unique index is case-sensitive
        ],
    )

    result = import_seed(runner, seed_url, "--batch-size", "4")

    assert result.exit_code == 0, result.output
    assert "Imported 2 user(s) of 9; 0 already present; 7 skipped." in result.output
    # users.password_hash is nullable (social sign-in): the seed's passwordless Google accounts come
    # in without a password; they sign in with Google (a verified email links) or set one by a reset.
    assert User.__table__.c.password_hash.nullable
    for line in (
        "skipped seed id 1: id_taken",
        "skipped seed id 2: email_taken (user 1)",
        "skipped seed id 3: invalid_email",
        "skipped seed id 4: malformed_hash",
        "skipped seed id 6: unknown_role (seller)",
        "skipped seed id 7: malformed_hash",
        "skipped seed id 9: email_taken (user 8)",
    ):
        assert line in result.output
    assert "$argon2" not in result.output and "$2b$" not in result.output
    assert users(app) == {
        1: ("taken@example.com", "customer", "Ada"),
        5: ("google@example.com", "customer", "User 5"),
        8: ("fine@example.com", "customer", "User 8"),
    }
    assert auth.login("google@example.com", OLD_PASSWORD).json["error"] == "invalid_credentials"

    # The operator maps the seed's extra role and runs it again: only that row is new.
    result = import_seed(runner, seed_url, "--map-role", "seller=customer")
    assert "Imported 1 user(s) of 9; 2 already present; 6 skipped." in result.output, result.output
    assert auth.login("seller@example.com", OLD_PASSWORD).json["user_id"] == 6


def test_dry_run_writes_nothing(app, runner, seed_url):
    seed.create_seed_database(seed_url, [seed_row(4, "dry@example.com", seed.hash_password(OLD_PASSWORD))])
    result = import_seed(runner, seed_url, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Would import 1 user(s) of 1" in result.output
    assert users(app) == {}


def test_large_tables_are_imported_in_batches_with_progress(app, runner, seed_url):
    password_hash = seed.hash_password(OLD_PASSWORD)
    seed.create_seed_database(
        seed_url, [seed_row(n, f"bulk{n}@example.com", password_hash) for n in range(1, 251)]
    )
    result = import_seed(runner, seed_url, "--batch-size", "100")
    assert result.exit_code == 0, result.output
    assert "… 100/250 rows" in result.output and "… 250/250 rows" in result.output
    assert "Imported 250 user(s) of 250" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 250


def test_new_users_get_ids_above_the_imported_ones(app, runner, auth, seed_url, backend):
    seed.create_seed_database(
        seed_url, [seed_row(n, f"old{n}@example.com", seed.hash_password(OLD_PASSWORD)) for n in (3, 41)]
    )
    result = import_seed(runner, seed_url)
    assert result.exit_code == 0, result.output
    assert "New users get ids from 42 on." in result.output

    response = auth.register("new@example.com")

    assert response.status_code == 201, response.json
    assert response.json["id"] == 42


def test_new_users_never_get_the_id_of_a_skipped_seed_row(app, runner, auth, seed_url):
    """Other services hold orders under every id of the seed's table, the skipped rows' too: a new
    account gets an id above them all, on SQLite as on PostgreSQL."""
    good = seed.hash_password(OLD_PASSWORD)
    seed.create_seed_database(
        seed_url,
        [
            seed_row(3, "old3@example.com", good),
            seed_row(41, "old41@example.com", good),
            seed_row(
                77, "bcrypt@example.com", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
            ),
        ],
    )
    result = import_seed(runner, seed_url)
    assert result.exit_code == 0, result.output
    assert "skipped seed id 77: malformed_hash" in result.output
    assert "New users get ids from 78 on." in result.output

    response = auth.register("new@example.com")

    assert response.status_code == 201, response.json
    assert response.json["id"] == 78
    # The operator fixes the row and imports again: it comes in under its own id.
    with seed_engine(seed_url) as connection:
        connection.execute(seed.users.update().where(seed.users.c.id == 77).values(password_hash=good))
    assert "Imported 1 user(s) of 3" in import_seed(runner, seed_url).output
    assert users(app)[77] == ("bcrypt@example.com", "customer", "User 77")


def test_a_sign_up_during_the_import_gets_an_id_above_the_seeds(app, auth, seed_url):
    """The ids are reserved before the first row is imported: a customer registering meanwhile takes
    no id of a seed row still to come (that row would be skipped, its orders the newcomer's)."""
    from trikchi.seed.importer import import_seed_users, source_engine

    good = seed.hash_password(OLD_PASSWORD)
    seed.create_seed_database(seed_url, [seed_row(n, f"old{n}@example.com", good) for n in (5, 6, 9)])
    registered = []

    def meanwhile(done, _total):
        if done == 1:  # seed user 5 is in; 6 and 9 are still to come
            registered.append(auth.register("meanwhile@example.com"))

    source = source_engine(seed_url)
    try:
        with app.app_context():
            report = import_seed_users(source, batch_size=1, progress=meanwhile)
    finally:
        source.dispose()

    assert registered[0].status_code == 201, registered[0].json
    assert registered[0].json["id"] == 10
    assert (report.imported, report.skipped) == (3, [])
    assert sorted(users(app)) == [5, 6, 9, 10]


def test_the_source_must_be_the_seeds_database(runner, tmp_path):
    result = import_seed(runner, f"sqlite:///{tmp_path / 'missing.db'}")
    assert result.exit_code != 0
    assert "No SQLite database" in result.output
    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE products (id INTEGER PRIMARY KEY)").connection.close()
    result = import_seed(runner, f"sqlite:///{other}")
    assert result.exit_code != 0
    assert "no users table" in result.output


def test_seed_addresses_take_the_one_form(app, runner, auth, seed_url):
    good = seed.hash_password(OLD_PASSWORD)
    auth.register("ada@example.com")  # trikchi's user 1
    seed.create_seed_database(
        seed_url,
        [
            seed_row(2, "ada@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", good),  # ada@ｅｘａｍｐｌｅ.com
            seed_row(3, "\uff42\uff4f\uff42@example.com", good),  # ｂｏｂ@example.com: undeliverable
            seed_row(4, "Eve@\u041f\u0420\u0418\u041c\u0415\u0420.\u0420\u0424", good),
        ],
    )
    result = import_seed(runner, seed_url)
    assert result.exit_code == 0, result.output
    assert "skipped seed id 2: email_taken (user 1)" in result.output
    assert "skipped seed id 3: invalid_email" in result.output
    assert users(app)[4][0] == "eve@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444"
