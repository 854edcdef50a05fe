"""SPEC §16 bans, in-process on both databases: the admin API, what a ban ends and refuses, the
per-request guard, timed bans, the last-admin rule, events and webhooks. The same through gunicorn
with every sign-in method: tests/test_bans_live.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import AuthActions, make_app
from tests.support.webhooks import SECRET, body_of
from trikchi.auth.models import User
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.outbox.worker import deliver_due


@pytest.fixture
def app(database_url):
    """The admin API without the second-factor rule (MFA_REQUIRED_ROLES has its own tests)."""
    app = make_app(database_url, MFA_REQUIRED_ROLES=[], NOTIFY_NEW_DEVICE=False)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def make_admin(app, email: str = "boss@example.com") -> AuthActions:
    admin = AuthActions(app.test_client())
    assert admin.register(email=email, name="Boss").status_code == 201
    with app.app_context():
        db.session.execute(update(User).where(User.email == email).values(role="admin"))
        db.session.commit()
    assert admin.login(email=email).status_code == 200
    return admin


def customer(app, email: str = "ada@example.com") -> tuple[AuthActions, int]:
    person = AuthActions(app.test_client())
    signed_in = person.signup(email=email)
    return person, signed_in.json["user_id"]


def ban(admin: AuthActions, user_id: int, **body):
    return admin.client.post(f"/admin/users/{user_id}/ban", json=body, headers=admin.headers())


def unban(admin: AuthActions, user_id: int):
    return admin.client.delete(f"/admin/users/{user_id}/ban", headers=admin.headers())


def events(app, type_: str) -> list[AuthEvent]:
    with app.app_context():
        found = db.session.scalars(select(AuthEvent).where(AuthEvent.type == type_)).all()
        db.session.expunge_all()
        return list(found)


def test_only_admins_ban(app):
    person, user_id = customer(app)
    other, _ = customer(app, "bob@example.com")
    assert app.test_client().post(f"/admin/users/{user_id}/ban", json={}).status_code == 401
    assert ban(other, user_id).status_code == 403
    assert unban(other, user_id).status_code == 403
    assert person.me().status_code == 200


def test_a_ban_ends_every_session_at_once_and_answers_the_user_with_the_ban(app):
    admin = make_admin(app)
    phone, user_id = customer(app)
    laptop = AuthActions(app.test_client())
    assert laptop.login().status_code == 200
    until = (utcnow() + timedelta(days=3)).replace(microsecond=0)

    banned = ban(admin, user_id, until=until.isoformat(), reason="chargebacks on 3 orders")
    assert banned.status_code == 200, banned.json
    body = banned.json
    assert (
        body["id"] == user_id and body["banned"] is True and body["ban_reason"] == "chargebacks on 3 orders"
    )
    assert datetime.fromisoformat(body["banned_until"]) == until and body["banned_at"]
    for device in (phone, laptop):
        me = device.me()
        assert me.status_code == 401 and me.json["error"] == "session_ended"
        assert device.refresh().status_code == 401

    refused = AuthActions(app.test_client()).login()
    assert refused.status_code == 403, refused.json
    assert refused.json["error"] == "account_banned"
    assert datetime.fromisoformat(refused.json["banned_until"]) == until
    assert "chargebacks" not in refused.get_data(as_text=True)  # the reason is for staff
    assert "refresh_token=" not in refused.headers.get("Set-Cookie", "")


def test_a_wrong_password_of_a_banned_account_learns_nothing(app):
    admin = make_admin(app)
    _person, user_id = customer(app)
    assert ban(admin, user_id).status_code == 200
    wrong = app.test_client().post(
        "/auth/login", json={"email": "ada@example.com", "password": "wrong guess 1"}
    )
    unknown = app.test_client().post("/auth/login", json={"email": "nobody@example.com", "password": "x" * 9})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json and wrong.json["error"] == "invalid_credentials"


def test_a_ban_until_lifted_has_no_end(app):
    admin = make_admin(app)
    _person, user_id = customer(app)
    banned = ban(admin, user_id, reason=None)
    assert banned.status_code == 200 and banned.json["banned"] is True and banned.json["banned_until"] is None
    refused = AuthActions(app.test_client()).login()
    assert refused.status_code == 403 and refused.json["banned_until"] is None
    assert ban(admin, user_id, until=None).json["banned_until"] is None


def test_a_timed_ban_lifts_by_itself(app):
    admin = make_admin(app)
    _person, user_id = customer(app)
    assert ban(admin, user_id, until=(utcnow() + timedelta(hours=1)).isoformat()).status_code == 200
    assert AuthActions(app.test_client()).login().status_code == 403
    with app.app_context():  # an hour later
        db.session.execute(
            update(User).where(User.id == user_id).values(banned_until=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert AuthActions(app.test_client()).login().status_code == 200
    listed = admin.client.get("/admin/users?q=ada", headers=admin.headers()).json["items"][0]
    assert listed["banned"] is False


def test_the_guard_refuses_a_banned_users_live_session_in_its_one_query(app):
    """Sessions are revoked by the ban; should one still be live (a ban written by other means),
    the guard's query alone refuses its access token."""
    person, user_id = customer(app)
    assert person.me().status_code == 200
    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id).values(banned_at=utcnow()))
        db.session.commit()
    me = person.me()
    assert me.status_code == 401 and me.json["error"] == "session_ended"
    assert person.refresh().status_code == 401


def test_banning_again_replaces_the_end_and_the_reason(app):
    admin = make_admin(app)
    _person, user_id = customer(app)
    first = ban(admin, user_id, until=(utcnow() + timedelta(days=1)).isoformat(), reason="spam")
    second = ban(admin, user_id, until=None, reason="fraud")
    assert second.status_code == 200
    assert second.json["banned_until"] is None and second.json["ban_reason"] == "fraud"
    assert second.json["banned_at"] == first.json["banned_at"]  # the same ban, changed
    details = [event.details for event in events(app, "user_banned")]
    assert [d["updated"] for d in details] == [False, True]


def test_lifting_a_ban_lets_the_user_in_again(app):
    admin = make_admin(app)
    _person, user_id = customer(app)
    assert ban(admin, user_id, reason="spam").status_code == 200
    lifted = unban(admin, user_id)
    assert lifted.status_code == 200
    assert lifted.json["banned"] is False and lifted.json["banned_until"] is None
    assert lifted.json["ban_reason"] is None
    assert AuthActions(app.test_client()).login().status_code == 200
    assert unban(admin, user_id).status_code == 200  # not banned: nothing changes
    assert len(events(app, "user_unbanned")) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"until": "2001-01-01T00:00:00Z"}, "until"),
        ({"until": "tomorrow"}, "until"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": "a\nb"}, "reason"),
        ({"duration": 3600}, "duration"),
    ],
)
def test_bad_ban_requests_are_422_naming_the_field(app, body, field):
    admin = make_admin(app)
    _person, user_id = customer(app)
    refused = ban(admin, user_id, **body)
    assert refused.status_code == 422 and field in refused.json["errors"], refused.json
    assert AuthActions(app.test_client()).login().status_code == 200  # nothing written


def test_unknown_users_are_404(app):
    admin = make_admin(app)
    for user_id in (999, 2**31):
        assert ban(admin, user_id).status_code == 404
        assert unban(admin, user_id).status_code == 404


def test_the_last_active_admin_cannot_be_banned(app):
    boss = make_admin(app)
    boss_id = boss.me().json["id"]
    refused = ban(boss, boss_id)
    assert refused.status_code == 409 and refused.json["error"] == "last_admin"
    assert boss.me().status_code == 200

    deputy = make_admin(app, "deputy@example.com")
    deputy_id = deputy.me().json["id"]
    assert ban(boss, deputy_id).status_code == 200
    # A banned admin is no active admin: the boss is the last one again.
    assert ban(boss, boss_id).json["error"] == "last_admin"
    demoted = boss.client.patch(f"/admin/users/{boss_id}", json={"role": "customer"}, headers=boss.headers())
    assert demoted.status_code == 409


def test_bans_are_audited_and_announced_by_webhooks(database_url, receiver):
    app = make_app(
        database_url,
        MFA_REQUIRED_ROLES=[],
        NOTIFY_NEW_DEVICE=False,
        WEBHOOK_URLS=[receiver.url],
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_EVENTS=["user_banned", "user_unbanned"],
    )
    admin = make_admin(app)
    _person, user_id = customer(app)
    admin_id = admin.me().json["id"]
    until = (utcnow() + timedelta(days=7)).replace(microsecond=0)
    assert ban(admin, user_id, until=until.isoformat(), reason="resold gift cards").status_code == 200
    assert unban(admin, user_id).status_code == 200
    with app.app_context():
        assert deliver_due() == 2
    bodies = sorted((body_of(r) for r in receiver.received), key=lambda b: b["timestamp"])
    assert [b["type"] for b in bodies] == ["user_banned", "user_unbanned"]
    banned = bodies[0]["data"]
    assert banned["user_id"] == user_id and banned["by"] == admin_id
    assert datetime.fromisoformat(banned["until"]) == until and banned["revoked_sessions"] == 1
    assert bodies[1]["data"] == {"user_id": user_id, "session_id": None, "by": admin_id}
    assert all(b"resold" not in r.body and b"ada@example.com" not in r.body for r in receiver.received)
    audit = admin.client.get("/admin/audit?type=user_banned", headers=admin.headers()).json["items"]
    assert [item["user_id"] for item in audit] == [user_id]
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_phone_sign_in_of_a_banned_account_is_refused_once_the_code_proved_the_number(app):
    """A phone code of a banned account: 403 account_banned only after the right code; a wrong code
    still gets the generic 401 invalid_code."""
    from tests.support.sms import sms_code_for

    admin = make_admin(app)
    number = "+998901234567"
    visitor = app.test_client()
    assert visitor.post("/auth/phone/code", json={"phone": number}).status_code == 202
    signed_in = visitor.post("/auth/phone/verify", json={"phone": number, "code": sms_code_for(app, number)})
    assert signed_in.status_code == 200, signed_in.json
    assert ban(admin, signed_in.json["user_id"], until=None, reason="fraud").status_code == 200

    again = app.test_client()
    app.config["RATELIMIT_ENABLED"] = False  # the resend window is a rate limit; this test is about the ban
    assert again.post("/auth/phone/code", json={"phone": number}).status_code == 202
    code = sms_code_for(app, number)
    wrong_code = "000000" if code != "000000" else "111111"
    wrong = again.post("/auth/phone/verify", json={"phone": number, "code": wrong_code})
    assert wrong.status_code == 401 and wrong.json["error"] == "invalid_code"
    refused = again.post("/auth/phone/verify", json={"phone": number, "code": code})
    assert refused.status_code == 403, refused.json
    assert refused.json["error"] == "account_banned" and refused.json["banned_until"] is None
    assert "refresh_token=" not in refused.headers.get("Set-Cookie", "")
