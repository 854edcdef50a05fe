"""The admin API the staff console reads (SPEC §17): one user with the ways they sign in, their
sessions and ending one, and the user list by role, status and id."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.conftest import AuthActions, make_app
from trikchi.auth.models import User
from trikchi.events import AuthEvent
from trikchi.extensions import db


@pytest.fixture
def app(database_url):
    """The admin API without the second-factor rule (MFA_REQUIRED_ROLES is tested elsewhere)."""
    app = make_app(database_url, MFA_REQUIRED_ROLES=[])
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def user_id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


@pytest.fixture
def admin(app) -> AuthActions:
    boss = AuthActions(app.test_client())
    boss.register(email="boss@example.com", name="Boss")
    with app.app_context():
        db.session.execute(update(User).where(User.email == "boss@example.com").values(role="admin"))
        db.session.commit()
    assert boss.login(email="boss@example.com").status_code == 200
    return boss


def test_one_user_with_the_ways_they_sign_in(app, admin, make_auth):
    make_auth().signup()
    ada = user_id(app, "ada@example.com")
    response = admin.client.get(f"/admin/users/{ada}", headers=admin.headers())
    assert response.status_code == 200, response.json
    body = response.json
    assert body["user"]["email"] == "ada@example.com" and body["user"]["is_active"] is True
    assert body["sign_in"] == {
        "password": True,
        "ways": 1,
        "second_factors": [],
        "methods_used": ["password"],
    }
    assert admin.client.get("/admin/users/999999", headers=admin.headers()).status_code == 404
    assert admin.client.get("/admin/users/0", headers=admin.headers()).status_code == 404


def test_sessions_of_a_user_and_ending_one(app, admin, make_auth):
    laptop, phone = make_auth(), make_auth()
    laptop.signup()
    assert phone.login().status_code == 200
    ada = user_id(app, "ada@example.com")
    sessions = admin.client.get(f"/admin/users/{ada}/sessions", headers=admin.headers()).json
    assert len(sessions) == 2 and {s["auth_method"] for s in sessions} == {"password"}
    assert set(sessions[0]) == {
        "id",
        "created_at",
        "last_used_at",
        "expires_at",
        "auth_method",
        "user_agent",
        "ip",
    }
    with app.app_context():
        laptop_session = db.session.scalar(
            select(AuthEvent.session_id).where(AuthEvent.type == "login_succeeded", AuthEvent.user_id == ada)
        )
    ended = admin.client.delete(f"/admin/users/{ada}/sessions/{laptop_session}", headers=admin.headers())
    assert ended.status_code == 204
    # That device's refresh fails at once; the other goes on.
    assert laptop.refresh().status_code == 401
    assert phone.refresh().status_code == 200
    left = admin.client.get(f"/admin/users/{ada}/sessions", headers=admin.headers()).json
    assert [s["id"] for s in left] != [laptop_session] and len(left) == 1
    with app.app_context():
        event = db.session.scalars(
            select(AuthEvent).where(
                AuthEvent.type == "session_revoked", AuthEvent.session_id == laptop_session
            )
        ).one()
        assert event.user_id == ada and event.details == {"by": user_id(app, "boss@example.com")}
    # Ending it again changes nothing; another user's session is not this user's.
    assert (
        admin.client.delete(
            f"/admin/users/{ada}/sessions/{laptop_session}", headers=admin.headers()
        ).status_code
        == 204
    )
    boss = user_id(app, "boss@example.com")
    assert (
        admin.client.delete(
            f"/admin/users/{boss}/sessions/{left[0]['id']}", headers=admin.headers()
        ).status_code
        == 404
    )
    assert admin.client.get("/admin/users/999999/sessions", headers=admin.headers()).status_code == 404


def test_the_console_endpoints_are_for_admins_only(app, make_auth):
    customer = make_auth()
    customer.signup()
    me = user_id(app, "ada@example.com")
    for method, path in (
        ("get", f"/admin/users/{me}"),
        ("get", f"/admin/users/{me}/sessions"),
        ("delete", f"/admin/users/{me}/sessions/x"),
    ):
        assert getattr(app.test_client(), method)(path).status_code == 401
        response = getattr(customer.client, method)(path, headers=customer.headers())
        assert response.status_code == 403 and response.json["error"] == "forbidden"


def test_users_by_role_status_and_id(app, admin, make_auth):
    for n in range(3):
        make_auth().register(email=f"user{n}@example.com", name=f"Customer {n}")
    one = user_id(app, "user1@example.com")
    assert (
        admin.client.patch(
            f"/admin/users/{one}", json={"is_active": False}, headers=admin.headers()
        ).status_code
        == 200
    )

    def emails(query: str) -> list[str]:
        response = admin.client.get(f"/admin/users?{query}", headers=admin.headers())
        assert response.status_code == 200, response.json
        return [u["email"] for u in response.json["items"]]

    assert emails("role=admin") == ["boss@example.com"]
    assert emails("role=customer") == ["user0@example.com", "user1@example.com", "user2@example.com"]
    assert emails("status=inactive") == ["user1@example.com"]
    assert emails("status=active&role=customer") == ["user0@example.com", "user2@example.com"]
    assert emails(f"q={one}") == ["user1@example.com"]  # the whole id
    assert emails("q=99999999999") == []  # not an id: no error either
    for bad in ("role=boss", "status=banned-forever"):
        response = admin.client.get(f"/admin/users?{bad}", headers=admin.headers())
        assert response.status_code == 422 and response.json["error"] == "validation_failed"
