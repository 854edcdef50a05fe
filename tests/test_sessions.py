"""SPEC §4: rotating refresh tokens, reuse detection, session management."""

from __future__ import annotations

from datetime import timedelta

import jwt
from sqlalchemy import func, select, update

from tests.conftest import PASSWORD
from tests.support.sessions import age_used_tokens, use_cookie
from trikchi.auth.models import AuthSession, RefreshToken, User
from trikchi.database import utcnow
from trikchi.extensions import db


def live_tokens(app) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(RefreshToken).where(RefreshToken.used_at.is_(None))
        )


def decode(app, token: str) -> dict:
    return jwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])


def test_each_refresh_sets_a_new_single_use_cookie(app, client, auth):
    auth.signup()
    first, first_csrf = auth.refresh_cookie(), auth.csrf_cookie()
    assert auth.refresh().status_code == 200
    second = auth.refresh_cookie()
    assert second != first
    assert decode(app, second)["jti"] != decode(app, first)["jti"]
    assert decode(app, second)["sid"] == decode(app, first)["sid"]
    assert live_tokens(app) == 1
    # After the grace window the consumed token is dead — and presenting it is theft.
    age_used_tokens(app, 11)
    use_cookie(client, first, first_csrf)
    response = auth.refresh()
    assert response.status_code == 401
    assert "revoked" in response.json["message"]
    assert response.json["error"] == "refresh_token_reused"


def test_replay_after_the_window_revokes_the_session_so_the_newest_token_fails_too(app, client, make_auth):
    victim = make_auth()
    victim.signup()
    stolen, stolen_csrf = victim.refresh_cookie(), victim.csrf_cookie()
    assert victim.refresh().status_code == 200  # the victim rotates; the thief holds the old token
    age_used_tokens(app, 11)
    thief = make_auth()
    use_cookie(thief.client, stolen, stolen_csrf)
    assert thief.refresh().status_code == 401
    assert victim.refresh().status_code == 401  # whole session revoked
    assert victim.me().status_code == 401  # and its access token with it
    with app.app_context():
        session = db.session.scalar(select(AuthSession))
        assert session.revoked_at is not None and session.revoked_reason == "reuse_detected"


def test_inside_the_window_a_consumed_token_gets_the_current_token_not_a_new_branch(app, make_auth):
    tab_a = make_auth()
    tab_a.signup()
    refresh, csrf = tab_a.refresh_cookie(), tab_a.csrf_cookie()
    tab_b = make_auth()
    use_cookie(tab_b.client, refresh, csrf)
    assert tab_a.refresh().status_code == 200
    assert tab_b.refresh().status_code == 200  # the same token again, 1 s later
    assert decode(app, tab_a.refresh_cookie())["jti"] == decode(app, tab_b.refresh_cookie())["jti"]
    assert live_tokens(app) == 1
    assert tab_a.me().status_code == 200 and tab_b.me().status_code == 200
    assert tab_b.refresh().status_code == 200  # the shared successor rotates normally
    assert tab_a.refresh().status_code == 200  # and its twin is within the window of that
    assert live_tokens(app) == 1


def test_refresh_slides_the_session_end(app, auth):
    auth.signup()
    with app.app_context():
        db.session.execute(update(AuthSession).values(expires_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    assert auth.refresh().status_code == 200
    with app.app_context():
        session = db.session.scalar(select(AuthSession))
        assert session.expires_at > utcnow() + timedelta(days=29)
    assert decode(app, auth.refresh_cookie())["exp"] - decode(app, auth.refresh_cookie())["iat"] >= 29 * 86400


def test_session_ends_at_the_absolute_limit(app, auth):
    auth.signup()
    with app.app_context():
        session = db.session.scalar(select(AuthSession))
        assert session.absolute_expires_at - session.created_at == timedelta(days=90)
        session.absolute_expires_at = utcnow() + timedelta(hours=1)
        db.session.commit()
    response = auth.refresh()
    assert response.status_code == 200
    claims = decode(app, auth.refresh_cookie())
    assert claims["exp"] - claims["iat"] <= 3600  # never outlives the session
    assert "Max-Age=" in response.headers["Set-Cookie"]
    with app.app_context():
        db.session.execute(update(AuthSession).values(absolute_expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert auth.refresh().status_code == 401


def test_sessions_lists_live_sessions_with_one_current(app, make_auth):
    phone, laptop = make_auth(), make_auth()
    phone.signup()
    laptop.client.environ_base["HTTP_USER_AGENT"] = "Laptop/1.0"
    laptop.login()
    response = laptop.client.get("/auth/sessions", headers=laptop.headers())
    assert response.status_code == 200
    sessions = response.json
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    current = next(s for s in sessions if s["current"])
    assert current["user_agent"] == "Laptop/1.0" and current["ip"] == "127.0.0.1"
    assert set(current) == {"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"}
    assert current["id"] == decode(app, laptop.access_token)["sid"]


def test_deleting_another_session_kills_its_refresh_and_access(app, make_auth):
    phone, laptop = make_auth(), make_auth()
    phone.signup()
    laptop.login()
    phone_sid = decode(app, phone.access_token)["sid"]
    response = laptop.client.delete(f"/auth/sessions/{phone_sid}", headers=laptop.headers())
    assert response.status_code == 204
    assert phone.refresh().status_code == 401
    assert phone.me().status_code == 401
    assert laptop.me().status_code == 200 and laptop.refresh().status_code == 200
    sessions = laptop.client.get("/auth/sessions", headers=laptop.headers()).json
    assert [s["id"] for s in sessions] == [decode(app, laptop.access_token)["sid"]]


def test_deleting_the_current_session_clears_its_cookies(app, auth):
    auth.signup()
    sid = decode(app, auth.access_token)["sid"]
    response = auth.client.delete(f"/auth/sessions/{sid}", headers=auth.headers())
    assert response.status_code == 204
    assert auth.refresh_cookie() is None


def test_another_users_session_id_is_404_and_untouched(app, make_auth):
    ada, bob = make_auth(), make_auth()
    ada.signup()
    bob.signup(email="bob@example.com")
    ada_sid = decode(app, ada.access_token)["sid"]
    response = bob.client.delete(f"/auth/sessions/{ada_sid}", headers=bob.headers())
    assert response.status_code == 404 and response.json["code"] == 404
    unknown = bob.client.delete("/auth/sessions/does-not-exist", headers=bob.headers())
    assert unknown.get_data() == response.get_data()  # no hint that the id exists
    assert ada.refresh().status_code == 200


def test_session_endpoints_need_an_access_token(client):
    assert client.get("/auth/sessions").status_code == 401
    assert client.delete("/auth/sessions/x").status_code == 401
    assert client.post("/auth/logout_all").status_code == 401
    assert (
        client.post("/auth/password", json={"current_password": "a", "new_password": "b"}).status_code == 401
    )


def test_logout_all_kills_every_session(make_auth):
    devices = [make_auth() for _ in range(3)]
    devices[0].signup()
    for device in devices[1:]:
        device.login()
    response = devices[0].client.post("/auth/logout_all", headers=devices[0].headers())
    assert response.status_code == 204
    assert devices[0].refresh_cookie() is None
    for device in devices:
        assert device.me().status_code == 401
        assert device.refresh().status_code == 401


def test_password_change_with_a_wrong_current_password_is_refused(make_auth):
    laptop, phone = make_auth(), make_auth()
    laptop.signup()
    phone.login()
    response = laptop.client.post(
        "/auth/password",
        json={"current_password": "wrong password", "new_password": "a brand new secret"},
        headers=laptop.headers(),
    )
    assert response.status_code == 422
    assert "current_password" in response.json["errors"]
    assert phone.refresh().status_code == 200
    assert laptop.login().status_code == 200


def test_password_change_kills_other_sessions_and_the_old_password(make_auth):
    laptop, phone = make_auth(), make_auth()
    laptop.signup()
    phone.login()
    new = "a brand new secret"
    response = laptop.client.post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": new}, headers=laptop.headers()
    )
    assert response.status_code == 204
    assert phone.me().status_code == 401 and phone.refresh().status_code == 401
    assert laptop.me().status_code == 200 and laptop.refresh().status_code == 200
    assert make_auth().login(password=PASSWORD).status_code == 401
    assert make_auth().login(password=new).status_code == 200


def test_password_change_applies_the_policy(auth):
    auth.signup()
    for new, field in (("password1", "new_password"), ("short", "new_password"), (PASSWORD, "new_password")):
        response = auth.client.post(
            "/auth/password", json={"current_password": PASSWORD, "new_password": new}, headers=auth.headers()
        )
        assert response.status_code == 422 and field in response.json["errors"], response.json


def test_prune_deletes_revoked_and_expired_sessions(app, make_auth, runner):
    keep, revoked, expired = make_auth(), make_auth(), make_auth()
    keep.signup()
    revoked.login()
    expired.login()
    assert revoked.logout().status_code == 200
    expired_sid = decode(app, expired.access_token)["sid"]
    with app.app_context():
        db.session.execute(
            update(AuthSession)
            .where(AuthSession.id == expired_sid)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    result = runner.invoke(args=["sessions", "prune"])
    assert result.exit_code == 0 and "Pruned 2 session(s)." in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuthSession)) == 1
        assert db.session.scalar(select(func.count()).select_from(RefreshToken)) == 1
    assert keep.refresh().status_code == 200


def test_client_ip_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(database_url):
    from tests.conftest import AuthActions, make_app

    for hops, expected in ((0, "127.0.0.1"), (1, "203.0.113.9")):
        app = make_app(database_url, TRUSTED_PROXY_HOPS=hops)
        actions = AuthActions(app.test_client())
        actions.client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
        if hops == 0:
            actions.signup()
        else:
            actions.login()
        sessions = actions.client.get("/auth/sessions", headers=actions.headers()).json
        assert next(s for s in sessions if s["current"])["ip"] == expected
        with app.app_context():
            db.engine.dispose()


def test_a_tab_sending_the_just_rotated_cookie_with_the_newest_csrf_value_stays_signed_in(app, make_auth):
    # Browsers commit a rotated cookie asynchronously: another tab may still send the old
    # cookie together with the CSRF value it just read from the newest login/refresh body.
    first = make_auth()
    first.signup()
    old_cookie = first.refresh_cookie()
    assert first.refresh().status_code == 200
    other_tab = make_auth()
    other_tab.client.set_cookie("refresh_token", old_cookie)
    response = other_tab.refresh(csrf=first.csrf_token)
    assert response.status_code == 200
    assert decode(app, other_tab.refresh_cookie())["jti"] == decode(app, first.refresh_cookie())["jti"]


def test_one_rule_decides_a_live_session_for_guard_refresh_list_and_pruning(app, make_auth, runner):
    """A session is live while it is not revoked, before both of its ends, and its user is active
    (``AuthSession.is_live``): in Python and in SQL alike, and for every path that asks."""
    live, revoked, slid_past, past_absolute, deactivated = (make_auth() for _ in range(5))
    live.signup()
    for auth in (revoked, slid_past, past_absolute):
        auth.login()
    deactivated.signup("bob@example.com")
    now = utcnow()
    ended = {
        revoked: {"revoked_at": now},
        slid_past: {"expires_at": now - timedelta(seconds=1)},
        past_absolute: {"absolute_expires_at": now - timedelta(seconds=1)},
    }
    with app.app_context():
        for auth, values in ended.items():
            sid = decode(app, auth.access_token)["sid"]
            db.session.execute(update(AuthSession).where(AuthSession.id == sid).values(**values))
        # Deactivated behind the service's back: without the revocation the admin API adds.
        db.session.execute(update(User).where(User.email == "bob@example.com").values(is_active=False))
        db.session.commit()
        sessions = db.session.scalars(select(AuthSession)).all()
        in_sql = set(db.session.scalars(select(AuthSession.id).where(AuthSession.is_live(utcnow()))))
        assert {s.id for s in sessions if s.is_live(utcnow())} == in_sql
        assert in_sql == {decode(app, live.access_token)["sid"]}

    for auth in (*ended, deactivated):
        me = auth.me()
        assert me.status_code == 401 and me.json["error"] == "session_ended"
        refreshed = auth.refresh()
        assert refreshed.status_code == 401 and refreshed.json["error"] == "session_ended"
    assert live.me().status_code == 200
    listed = live.client.get("/auth/sessions", headers=live.headers()).json
    assert [s["id"] for s in listed] == [decode(app, live.access_token)["sid"]]
    assert live.refresh().status_code == 200

    result = runner.invoke(args=["sessions", "prune"])
    assert result.exit_code == 0 and "Pruned 4 session(s)." in result.output
    assert live.me().status_code == 200 and live.refresh().status_code == 200
