"""SPEC §5: the admin API, roles, the last-admin rule, the audit log, and the users CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD, AuthActions, make_app
from trikchi.auth.models import User
from trikchi.extensions import db


@pytest.fixture
def app(database_url):
    """The admin API without the second-factor rule (MFA_REQUIRED_ROLES, tested in test_mfa_policy.py)."""
    app = make_app(database_url, MFA_REQUIRED_ROLES=[])
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def promote(app, email: str) -> None:
    with app.app_context():
        db.session.execute(update(User).where(User.email == email).values(role="admin"))
        db.session.commit()


def signed_in_admin(app) -> AuthActions:
    admin = AuthActions(app.test_client())
    admin.register(email="boss@example.com", name="Boss")
    promote(app, "boss@example.com")
    assert admin.login(email="boss@example.com").status_code == 200
    return admin


def user_id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def test_admin_api_needs_a_token_and_the_admin_role(app, make_auth):
    client = app.test_client()
    for method, path in (("get", "/admin/users"), ("patch", "/admin/users/1"), ("get", "/admin/audit")):
        assert getattr(client, method)(path, json={} if method == "patch" else None).status_code == 401
    customer = make_auth()
    customer.signup()
    for method, path in (("get", "/admin/users"), ("patch", "/admin/users/1"), ("get", "/admin/audit")):
        response = getattr(customer.client, method)(
            path, headers=customer.headers(), json={"role": "admin"} if method == "patch" else None
        )
        assert response.status_code == 403 and response.json["code"] == 403
    assert customer.me().json["role"] == "customer"  # the attempt changed nothing


def test_list_users_paginates_and_searches(app, make_auth):
    admin = signed_in_admin(app)
    for i in range(5):
        make_auth().register(email=f"user{i}@example.com", name=f"Customer {i}")
    make_auth().register(email="zed@shop.uz", name="Zarina Karimova")
    page = admin.client.get("/admin/users?page=2&per_page=3", headers=admin.headers()).json
    assert page["page"] == 2 and page["per_page"] == 3 and page["total"] == 7
    assert [u["email"] for u in page["items"]] == [
        "user2@example.com",
        "user3@example.com",
        "user4@example.com",
    ]
    assert "password_hash" not in page["items"][0] and "is_active" in page["items"][0]
    by_email = admin.client.get("/admin/users?q=SHOP.UZ", headers=admin.headers()).json
    assert [u["email"] for u in by_email["items"]] == ["zed@shop.uz"]
    by_name = admin.client.get("/admin/users?q=karim", headers=admin.headers()).json
    assert by_name["total"] == 1
    literal = admin.client.get("/admin/users?q=%25", headers=admin.headers()).json
    assert literal["total"] == 0  # % is searched for, not a wildcard
    bad = admin.client.get("/admin/users?per_page=1000", headers=admin.headers())
    assert bad.status_code == 422 and "per_page" in bad.json["errors"]
    # PostgreSQL cannot compare text with NUL: refused as input, not a 500.
    nul = admin.client.get("/admin/users?q=a%00b", headers=admin.headers())
    assert nul.status_code == 422 and "q" in nul.json["errors"]
    nul_type = admin.client.get("/admin/audit?type=%00", headers=admin.headers())
    assert nul_type.status_code == 422 and "type" in nul_type.json["errors"]
    # A final newline is a control character too ($ of a Python regex matched before it).
    newline = admin.client.get("/admin/users?q=ada%0A", headers=admin.headers())
    assert newline.status_code == 422 and "q" in newline.json["errors"]


def test_role_change_applies_at_once(app, make_auth):
    admin = signed_in_admin(app)
    customer = make_auth()
    customer.signup()
    target = user_id(app, "ada@example.com")
    response = admin.client.patch(f"/admin/users/{target}", json={"role": "admin"}, headers=admin.headers())
    assert response.status_code == 200 and response.json["role"] == "admin"
    # The customer's existing access token now reaches the admin API (the role is read live).
    assert customer.client.get("/admin/users", headers=customer.headers()).status_code == 200
    bad = admin.client.patch(f"/admin/users/{target}", json={"role": "root"}, headers=admin.headers())
    assert bad.status_code == 422 and "role" in bad.json["errors"]


@pytest.mark.parametrize("value", [1, 0, 1.0, "true", None])
def test_is_active_takes_a_json_boolean_only(app, make_auth, value):
    """The document says boolean; marshmallow's Boolean(truthy={True}) took 1 (1 == True)."""
    admin = signed_in_admin(app)
    make_auth().signup()
    target = user_id(app, "ada@example.com")
    response = admin.client.patch(
        f"/admin/users/{target}", json={"is_active": value}, headers=admin.headers()
    )
    assert response.status_code == 422 and "is_active" in response.json["errors"]


def test_deactivation_revokes_sessions_and_refuses_login(app, make_auth):
    admin = signed_in_admin(app)
    customer = make_auth()
    customer.signup()
    target = user_id(app, "ada@example.com")
    response = admin.client.patch(
        f"/admin/users/{target}", json={"is_active": False}, headers=admin.headers()
    )
    assert response.status_code == 200 and response.json["is_active"] is False
    assert customer.me().status_code == 401
    assert customer.refresh().status_code == 401
    assert make_auth().login().status_code == 401
    again = admin.client.patch(f"/admin/users/{target}", json={"is_active": True}, headers=admin.headers())
    assert again.status_code == 200
    assert make_auth().login().status_code == 200


def test_unknown_user_is_404(app):
    admin = signed_in_admin(app)
    for target in (999, 2**40):
        response = admin.client.patch(
            f"/admin/users/{target}", json={"role": "admin"}, headers=admin.headers()
        )
        assert response.status_code == 404


def test_the_last_admin_can_be_neither_demoted_nor_deactivated(app, make_auth):
    admin = signed_in_admin(app)
    me = user_id(app, "boss@example.com")
    for body in ({"role": "customer"}, {"is_active": False}):
        response = admin.client.patch(f"/admin/users/{me}", json=body, headers=admin.headers())
        assert response.status_code == 409 and response.json["code"] == 409
        assert response.json["error"] == "last_admin"
    second = make_auth()
    second.register(email="deputy@example.com")
    promote(app, "deputy@example.com")
    response = admin.client.patch(f"/admin/users/{me}", json={"role": "customer"}, headers=admin.headers())
    assert response.status_code == 200
    assert admin.client.get("/admin/users", headers=admin.headers()).status_code == 403


def test_audit_lists_events_newest_first_with_filters_and_admin_actions(app, make_auth):
    admin = signed_in_admin(app)
    customer = make_auth()
    customer.signup()
    customer.login(password="wrong password here")
    target = user_id(app, "ada@example.com")
    admin.client.patch(f"/admin/users/{target}", json={"role": "admin"}, headers=admin.headers())
    admin.client.patch(f"/admin/users/{target}", json={"is_active": False}, headers=admin.headers())

    page = admin.client.get("/admin/audit", headers=admin.headers()).json
    ids = [e["id"] for e in page["items"]]
    assert ids == sorted(ids, reverse=True) and page["total"] == len(ids)
    assert page["items"][0]["type"] == "user_deactivated"
    role = admin.client.get(f"/admin/audit?type=role_changed&user_id={target}", headers=admin.headers()).json
    assert role["total"] == 1
    assert role["items"][0]["details"] == {
        "by": user_id(app, "boss@example.com"),
        "from": "customer",
        "to": "admin",
    }
    mine = admin.client.get(f"/admin/audit?user_id={target}&per_page=2", headers=admin.headers()).json
    assert len(mine["items"]) == 2 and all(e["user_id"] == target for e in mine["items"])
    text = admin.client.get("/admin/audit?per_page=100", headers=admin.headers()).get_data(as_text=True)
    assert PASSWORD not in text and "wrong password here" not in text


def test_cli_creates_users_with_a_prompted_password(app, runner):
    result = runner.invoke(
        args=["users", "create", "--email", "Staff@Example.com", "--name", "Staff", "--role", "admin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin staff@example.com" in result.output
    assert PASSWORD not in result.output  # hidden input
    staff = AuthActions(app.test_client())
    assert staff.login(email="staff@example.com").status_code == 200
    assert staff.client.get("/admin/users", headers=staff.headers()).status_code == 200


def test_cli_refuses_mismatched_weak_and_duplicate_passwords(app, runner):
    mismatch = runner.invoke(
        args=["users", "create", "--email", "a@example.com", "--name", "A"], input=f"{PASSWORD}\nother one\n"
    )
    assert mismatch.exit_code != 0
    weak = runner.invoke(
        args=["users", "create", "--email", "a@example.com", "--name", "A"], input="password\npassword\n"
    )
    assert weak.exit_code != 0 and "password" in weak.output
    ok = runner.invoke(
        args=["users", "create", "--email", "a@example.com", "--name", "A", "--password", PASSWORD]
    )
    assert ok.exit_code == 0, ok.output
    duplicate = runner.invoke(
        args=["users", "create", "--email", "a@example.com", "--name", "A"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert duplicate.exit_code != 0 and "already registered" in duplicate.output
    with app.app_context():
        assert len(db.session.scalars(select(User)).all()) == 1


def test_cli_set_role_and_deactivate(app, runner, auth):
    auth.signup()
    first_admin = runner.invoke(args=["users", "set-role", "ada@example.com", "admin"])
    assert first_admin.exit_code == 0 and "now admin" in first_admin.output
    last = runner.invoke(args=["users", "deactivate", "ada@example.com"])
    assert last.exit_code != 0 and "last active admin" in last.output
    runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "b@example.com",
            "--name",
            "B",
            "--role",
            "admin",
            "--password",
            PASSWORD,
        ]
    )
    result = runner.invoke(args=["users", "deactivate", "ADA@example.com"])
    assert result.exit_code == 0, result.output
    assert auth.me().status_code == 401 and auth.refresh().status_code == 401
    unknown = runner.invoke(args=["users", "set-role", "nobody@example.com", "admin"])
    assert unknown.exit_code != 0 and "No user" in unknown.output
