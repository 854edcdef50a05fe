"""Password hashing parameters, rehash on login, timing-safe unknown users, the policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy import select

from tests.conftest import PASSWORD
from trikchi.auth.models import User
from trikchi.auth.passwords import common_passwords, password_problems, passwords
from trikchi.extensions import db


def test_testing_uses_cheap_parameters(app):
    hasher = passwords.hasher
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (1, 8, 1)


def test_login_rehashes_when_parameters_changed(app, auth):
    auth.register()
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    with app.app_context():
        user = db.session.scalar(select(User))
        user.password_hash = stronger.hash(PASSWORD)  # made under other settings
        db.session.commit()
    assert auth.login().status_code == 200
    with app.app_context():
        new_hash = db.session.scalar(select(User.password_hash))
    assert new_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert auth.login().status_code == 200


def test_unknown_email_still_runs_a_verification(app, monkeypatch, client):
    calls = []
    real_verify = PasswordHasher.verify
    monkeypatch.setattr(
        PasswordHasher, "verify", lambda self, h, p: calls.append(h) or real_verify(self, h, p)
    )
    client.post("/auth/login", json={"email": "nobody@example.com", "password": "whatever1"})
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_common_password_list_is_ten_thousand_lowercased_entries():
    common = common_passwords()
    assert 9_000 <= len(common) <= 10_000
    assert "password" in common and "123456" in common
    assert all(word == word.lower() for word in common)


def test_policy():
    assert password_problems("correct horse battery") == []
    assert password_problems("seven77")
    assert password_problems("x" * 129)
    assert password_problems("Dragon12")  # "dragon12" is on the list
    assert password_problems("PASSWORD")
    assert password_problems("ada@example.com", "ADA@example.com")
    assert password_problems("ünïcödé-pässwörd") == []
