"""SPEC §15 in-process, on SQLite and PostgreSQL: guests, their upgrade keeping the id, the merge
into an existing account, account-only operations, the admin list, pruning and the migration.
(Through gunicorn: tests/test_guests_live.py; in Chromium: tests/test_browser_guests.py.)"""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pyotp
import pytest
from flask_migrate import downgrade, upgrade
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, func, inspect, select, text, update

from tests.conftest import PASSWORD, AuthActions, make_app
from tests.support.sms import sms_code_for
from tests.support.telegram import BOT_TOKEN, payload
from trikchi.auth.models import AuthSession, RefreshToken, User
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.social.models import Identity


@pytest.fixture
def app(database_url):
    """Telegram on (a sign-in method that can upgrade a guest in-process); no second-factor rule."""
    app = make_app(
        database_url, TELEGRAM_BOT_TOKEN=BOT_TOKEN, RATELIMIT_SOCIAL="1000 per minute", MFA_REQUIRED_ROLES=[]
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class Guest(AuthActions):
    """A browser that starts as a guest."""

    def start(self):
        response = self.client.post("/auth/guest", json={})
        self._remember_created(response)
        return response

    def _remember_created(self, response) -> None:
        if response.status_code == 201:
            self.access_token = response.json["access_token"]
            self.csrf_token = response.json["csrf_token"]

    @property
    def id(self) -> int:
        return int(jwt.decode(self.access_token, options={"verify_signature": False})["sub"])

    def register(self, email: str = "ada@example.com", password: str = PASSWORD, name: str = "Ada"):
        """Registration with the guest's token: the upgrade."""
        body = {"name": name, "email": email, "password": password}
        return self.client.post("/auth/register", json=body, headers=self.headers())

    def telegram(self, csrf: bool = True, **fields):
        headers = {"X-CSRF-TOKEN": self.csrf_cookie()} if csrf else {}
        response = self.client.post("/auth/telegram", json=payload(**fields), headers=headers)
        if "access_token" in (response.json or {}):  # not the second step's answer
            self._remember(response)
        return response


@pytest.fixture
def guest(client) -> Guest:
    browser = Guest(client)
    assert browser.start().status_code == 201
    return browser


def a_moment_ago() -> int:
    """An ``auth_date`` a few seconds ago: the account's own sign-in is another payload than the
    guest's of the same second (a payload signs in once)."""
    return int(time.time()) - 5


def row(app, user_id: int) -> User | None:
    with app.app_context():
        user = db.session.get(User, user_id)
        if user is not None:
            db.session.expunge(user)
        return user


def events(app, type_: str) -> list[AuthEvent]:
    with app.app_context():
        found = db.session.scalars(
            select(AuthEvent).where(AuthEvent.type == type_).order_by(AuthEvent.id)
        ).all()
        db.session.expunge_all()
        return list(found)


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# --- a guest -------------------------------------------------------------------------------------


def test_post_guest_answers_201_with_the_login_body_and_cookies_of_a_guest(app, client):
    response = client.post("/auth/guest", json={})
    assert response.status_code == 201, response.json
    assert set(response.json) == {"access_token", "token_type", "user_id", "expires_in", "csrf_token"}
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get_cookie("refresh_token").http_only
    assert client.get_cookie("csrf_refresh_token").value == response.json["csrf_token"]
    assert claims(response.json["access_token"])["role"] == "guest"

    auth = AuthActions(client)
    auth.access_token = response.json["access_token"]
    me = auth.me().json
    assert me["id"] == response.json["user_id"]
    assert me["role"] == "guest" and me["is_guest"] is True
    assert me["email"] is None and me["name"] == "" and me["email_verified"] is False
    [created] = events(app, "guest_created")
    assert created.user_id == me["id"]
    [signed_in] = events(app, "login_succeeded")
    assert signed_in.details == {"method": "guest"}


def test_a_customer_is_not_a_guest(auth):
    auth.signup()
    me = auth.me().json
    assert me["role"] == "customer" and me["is_guest"] is False


def test_post_guest_takes_a_captcha_token_and_refuses_other_fields(client):
    assert client.post("/auth/guest", json={"captcha_token": "XXXX.DUMMY.TOKEN"}).status_code == 201
    refused = client.post("/auth/guest", json={"name": "Ada"})
    assert refused.status_code == 422 and set(refused.json["errors"]) == {"name"}
    assert client.post("/auth/guest", data="{}").status_code == 415


def test_a_guest_refreshes_lists_its_sessions_and_signs_out(app, guest):
    assert guest.refresh().status_code == 200
    assert claims(guest.access_token)["role"] == "guest"
    sessions = guest.client.get("/auth/sessions", headers=guest.headers())
    assert sessions.status_code == 200 and [s["current"] for s in sessions.json] == [True]
    assert guest.client.patch("/auth/me", json={"locale": "uz"}, headers=guest.headers()).status_code == 200
    assert guest.logout().status_code == 200
    assert guest.me().status_code == 401


def test_guest_creation_is_limited_per_ip(database_url):
    app = make_app(database_url, RATELIMIT_GUEST="2 per minute")
    client = app.test_client()
    statuses = [client.post("/auth/guest", json={}).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    refused = client.post("/auth/guest", json={})
    assert refused.json["error"] == "rate_limited" and int(refused.headers["Retry-After"]) > 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 2
        db.session.remove()
        db.engine.dispose()


# --- what needs an account -----------------------------------------------------------------------

ACCOUNT_ONLY = [
    ("post", "/auth/password", {"current_password": "x", "new_password": "another long passphrase"}),
    ("post", "/auth/reauthenticate", {"password": "x"}),
    ("post", "/auth/email", {"new_email": "new@example.com"}),
    ("get", "/auth/mfa", None),
    ("post", "/auth/mfa/totp/setup", None),
    ("post", "/auth/mfa/totp/confirm", {"code": "123456"}),
    ("delete", "/auth/mfa/totp", {"code": "123456"}),
    ("post", "/auth/mfa/recovery_codes", None),
    ("get", "/auth/passkeys", None),
    ("post", "/auth/passkeys/registration/options", None),
    ("patch", "/auth/passkeys/abc", {"name": "Phone"}),
    ("delete", "/auth/passkeys/abc", None),
    ("post", "/auth/phone", {"phone": "+998901234567"}),
    ("post", "/auth/phone/confirm", {"phone": "+998901234567", "code": "123456"}),
    ("delete", "/auth/phone", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), ACCOUNT_ONLY, ids=[f"{m} {p}" for m, p, _ in ACCOUNT_ONLY]
)
def test_account_only_operations_answer_a_guest_403_account_required(app, guest, method, path, body):
    before = user_count(app)
    response = getattr(guest.client, method)(path, json=body, headers=guest.headers())
    assert response.status_code == 403, response.json
    assert response.json["error"] == "account_required" and response.json["message"]
    assert user_count(app) == before and row(app, guest.id).role == "guest"


def test_a_guest_whose_sign_in_is_not_fresh_hears_it_needs_an_account(database_url):
    """Not 401 ``fresh_signin_required``: re-authenticating could never help a guest."""
    app = make_app(database_url, FRESH_SIGNIN_SECONDS=1)
    guest = Guest(app.test_client())
    assert guest.start().status_code == 201
    time.sleep(2.1)
    for path, body in (("/auth/password", ACCOUNT_ONLY[0][2]), ("/auth/mfa/totp/setup", None)):
        response = guest.client.post(path, json=body, headers=guest.headers())
        assert response.status_code == 403 and response.json["error"] == "account_required"
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_account_required_is_translated(guest):
    response = guest.client.post(
        "/auth/password",
        json={"current_password": "x", "new_password": "another long passphrase"},
        headers={**guest.headers(), "Accept-Language": "ru"},
    )
    assert response.json["error"] == "account_required"
    assert response.json["message"] != "This needs an account: register or sign in first."


def test_a_customer_passes_the_account_guard(auth):
    auth.signup()
    assert auth.client.get("/auth/mfa", headers=auth.headers()).status_code == 200
    assert auth.client.get("/auth/passkeys", headers=auth.headers()).status_code == 200
    body = {"current_password": PASSWORD, "new_password": "another long passphrase"}
    assert auth.client.post("/auth/password", json=body, headers=auth.headers()).status_code == 204


def test_the_account_guard_still_needs_a_token(client):
    response = client.get("/auth/mfa")
    assert response.status_code == 401 and response.json["error"] == "authentication_required"


# --- registration: the upgrade -------------------------------------------------------------------


def test_a_guest_registers_and_becomes_the_customer_keeping_its_id_and_session(app, guest):
    guest_id = guest.id
    response = guest.register(email=" Ada@Example.com ", name=" Ada ")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["id"] == guest_id
    assert (body["email"], body["name"], body["role"], body["is_guest"]) == (
        "ada@example.com",
        "Ada",
        "customer",
        False,
    )

    # The session goes on: the same cookie refreshes, now for a customer.
    assert guest.refresh().status_code == 200
    assert claims(guest.access_token)["role"] == "customer"
    assert guest.me().json["id"] == guest_id
    assert len(guest.client.get("/auth/sessions", headers=guest.headers()).json) == 1

    # The account signs in with its password elsewhere; account-only operations are open.
    other = AuthActions(app.test_client())
    assert other.login().json["user_id"] == guest_id
    assert guest.client.get("/auth/mfa", headers=guest.headers()).status_code == 200

    [upgraded] = events(app, "guest_upgraded")
    assert upgraded.user_id == guest_id and upgraded.details == {"method": "password"}
    assert events(app, "registered") == []  # the id is not new
    assert user_count(app) == 1


def test_a_taken_email_is_a_plain_409_and_the_guest_is_untouched(app, auth, guest):
    auth.signup(email="ada@example.com")
    before = row(app, guest.id)
    response = guest.register(email="ADA@example.com")
    assert response.status_code == 409 and response.json["error"] == "email_taken"
    after = row(app, guest.id)
    assert (after.role, after.email, after.password_hash, after.name) == ("guest", None, None, "")
    assert after.updated_at == before.updated_at
    assert guest.me().json["is_guest"] is True and guest.refresh().status_code == 200
    assert events(app, "guest_upgraded") == []


def test_a_guest_that_became_an_account_cannot_register_again(app, guest):
    old_token = guest.access_token
    assert guest.register(email="ada@example.com").status_code == 201
    again = guest.client.post(
        "/auth/register",
        json={"name": "Bob", "email": "bob@example.com", "password": PASSWORD},
        headers={"Authorization": f"Bearer {old_token}"},  # the other tab's token still says guest
    )
    assert again.status_code == 409 and again.json["error"] == "conflict"
    assert user_count(app) == 1
    assert row(app, guest.id).email == "ada@example.com"


def test_registration_with_a_refused_token_is_401_and_writes_nothing(app, guest):
    assert guest.logout().status_code == 200  # the guest's session has ended
    response = guest.register()
    assert response.status_code == 401 and response.json["error"] == "session_ended"
    forged = guest.client.post(
        "/auth/register",
        json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD},
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert forged.status_code == 401
    assert user_count(app) == 1 and row(app, guest.id).role == "guest"


def test_registration_without_a_guest_token_is_the_seeds(app, auth, make_auth):
    """No token: a new customer; another account's token changes nothing about it."""
    auth.signup(email="first@example.com")
    response = auth.client.post(
        "/auth/register",
        json={"name": "Bob", "email": "bob@example.com", "password": PASSWORD},
        headers=auth.headers(),
    )
    assert response.status_code == 201
    assert response.json["id"] != auth.me().json["id"] and response.json["role"] == "customer"
    assert auth.me().json["email"] == "first@example.com"
    assert make_auth().register(email="carol@example.com").status_code == 201
    assert user_count(app) == 3 and events(app, "guest_upgraded") == []


# --- Telegram in a guest's browser: upgrade, or merge ---------------------------------------------


def test_a_new_telegram_user_in_a_guests_browser_becomes_that_guest(app, guest):
    guest_id = guest.id
    response = guest.telegram(id=555001, first_name="Zarina", last_name=None, username=None)
    assert response.status_code == 200, response.json
    assert response.json["user_id"] == guest_id
    me = guest.me().json
    assert (me["id"], me["name"], me["role"], me["is_guest"]) == (guest_id, "Zarina", "customer", False)
    with app.app_context():
        identity = db.session.scalars(select(Identity)).one()
        assert identity.user_id == guest_id and identity.provider == "telegram"
    assert [e.details for e in events(app, "guest_upgraded")] == [{"method": "telegram"}]
    assert user_count(app) == 1


def test_a_telegram_user_with_an_account_signs_into_it_and_the_guest_is_merged(app, client, guest):
    owner = AuthActions(app.test_client())
    assert (
        owner.client.post("/auth/telegram", json=payload(id=555002, auth_date=a_moment_ago())).status_code
        == 200
    )
    owner_id = row_id_of_identity(app, 555002)
    guest_id, guest_token = guest.id, guest.access_token

    response = guest.telegram(id=555002)
    assert response.status_code == 200 and response.json["user_id"] == owner_id
    assert row(app, guest_id) is None  # the guest is gone, with its sessions
    ended = guest.me(guest_token)
    assert ended.status_code == 401 and ended.json["error"] == "session_ended"
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count()).select_from(AuthSession).where(AuthSession.user_id == guest_id)
            )
            == 0
        )
    [merged] = events(app, "guest_merged")
    assert merged.user_id == owner_id and merged.details == {"guest_id": guest_id, "user_id": owner_id}
    assert guest.me().json["id"] == owner_id  # this browser is now the account's


def row_id_of_identity(app, telegram_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(Identity.user_id).where(Identity.subject == str(telegram_id)))


def test_without_the_csrf_header_the_guest_cookie_does_not_count(app, guest):
    """A POST's refresh cookie is verified as a refresh is: without its header it is not the guest's."""
    guest_id = guest.id
    response = guest.telegram(csrf=False, id=555003)
    assert response.status_code == 200 and response.json["user_id"] != guest_id
    assert row(app, guest_id).role == "guest"  # a separate account; the guest stays as it was
    assert events(app, "guest_upgraded") == events(app, "guest_merged") == []


def test_a_refused_account_leaves_the_guest_as_it_was(app, guest):
    owner = AuthActions(app.test_client())
    assert (
        owner.client.post("/auth/telegram", json=payload(id=555004, auth_date=a_moment_ago())).status_code
        == 200
    )
    owner_id = row_id_of_identity(app, 555004)
    with app.app_context():
        db.session.execute(update(User).where(User.id == owner_id).values(is_active=False))
        db.session.commit()
    response = guest.telegram(id=555004)
    assert response.status_code == 401 and response.json["error"] == "social_login_failed"
    assert row(app, guest.id).role == "guest" and guest.me().status_code == 200
    assert events(app, "guest_merged") == []


def test_a_merge_into_an_account_with_totp_answers_the_second_step_and_removes_the_guest(app, guest):
    """The sign-in goes to the account through the one decision: its second step, no session yet;
    the guest is merged at once (the person proved the account's first factor)."""
    owner = AuthActions(app.test_client())
    signed_in = owner.client.post("/auth/telegram", json=payload(id=555006, auth_date=a_moment_ago()))
    owner.access_token = signed_in.json["access_token"]
    secret = owner.client.post("/auth/mfa/totp/setup", headers=owner.headers()).json["secret"]
    code = pyotp.TOTP(secret).at(time.time() - 30)
    assert (
        owner.client.post("/auth/mfa/totp/confirm", json={"code": code}, headers=owner.headers()).status_code
        == 200
    )
    owner_id = row_id_of_identity(app, 555006)
    guest_id = guest.id

    response = guest.telegram(id=555006)
    assert response.status_code == 200 and response.json["mfa_required"] is True
    assert "access_token" not in response.json
    assert row(app, guest_id) is None
    [merged] = events(app, "guest_merged")
    assert merged.details == {"guest_id": guest_id, "user_id": owner_id}


# --- a phone code: the upgrade --------------------------------------------------------------------

NUMBER = "+998901234567"


def phone_code(app, client, phone: str = NUMBER) -> str:
    """Ask for a sign-in code to ``phone`` and read it from the SMS queued to it."""
    asked = client.post("/auth/phone/code", json={"phone": phone})
    assert asked.status_code == 202, asked.json
    return sms_code_for(app, phone)


def verify_phone(client, code: str, headers: dict | None = None, phone: str = NUMBER, **extra):
    body = {"phone": phone, "code": code, **extra}
    return client.post("/auth/phone/verify", json=body, headers=headers or {})


def phone_owner(app, phone: str = NUMBER) -> int:
    """An account that signed in with ``phone`` (made by it); the rate limits are off after it (no
    resend window for the next code to the number)."""
    owner = app.test_client()
    signed_in = verify_phone(owner, phone_code(app, owner, phone), phone=phone)
    assert signed_in.status_code == 200, signed_in.json
    app.config["RATELIMIT_ENABLED"] = False
    return signed_in.json["user_id"]


def test_a_guest_proves_a_new_number_and_becomes_that_customer_keeping_its_id(app, guest):
    guest_id = guest.id
    response = verify_phone(guest.client, phone_code(app, guest.client), guest.headers(), name="Ada")
    assert response.status_code == 200, response.json
    assert response.json["user_id"] == guest_id
    guest._remember(response)
    me = guest.me().json
    assert (me["id"], me["role"], me["is_guest"], me["phone"], me["phone_verified"], me["name"]) == (
        guest_id,
        "customer",
        False,
        NUMBER,
        True,
        "Ada",
    )
    assert guest.refresh().status_code == 200  # the guest's session goes on, as a customer's
    assert claims(guest.access_token)["role"] == "customer"
    assert len(guest.client.get("/auth/sessions", headers=guest.headers()).json) == 2
    [upgraded] = events(app, "guest_upgraded")
    assert upgraded.user_id == guest_id and upgraded.details == {"method": "phone"}
    assert [e.user_id for e in events(app, "phone_verified")] == [guest_id]
    assert events(app, "registered") == events(app, "guest_merged") == []
    assert user_count(app) == 1

    # The number signs into the same account from elsewhere.
    app.config["RATELIMIT_ENABLED"] = False
    other = app.test_client()
    assert verify_phone(other, phone_code(app, other)).json["user_id"] == guest_id


def test_a_guest_upgraded_by_phone_without_a_name_keeps_an_empty_one(app, guest):
    response = verify_phone(guest.client, phone_code(app, guest.client), guest.headers())
    assert response.status_code == 200 and response.json["user_id"] == guest.id
    assert row(app, guest.id).name == ""


def test_a_guest_proving_an_accounts_number_signs_into_it_and_is_merged(app, guest):
    owner_id = phone_owner(app)
    guest_id, guest_token = guest.id, guest.access_token
    response = verify_phone(guest.client, phone_code(app, guest.client), guest.headers(), name="Mallory")
    assert response.status_code == 200, response.json
    assert response.json["user_id"] == owner_id
    assert row(app, guest_id) is None and row(app, owner_id).name == ""  # the account's name stays
    ended = guest.me(guest_token)
    assert ended.status_code == 401 and ended.json["error"] == "session_ended"
    with app.app_context():
        left = select(func.count()).select_from(AuthSession).where(AuthSession.user_id == guest_id)
        assert db.session.scalar(left) == 0
    [merged] = events(app, "guest_merged")
    assert merged.user_id == owner_id and merged.details == {"guest_id": guest_id, "user_id": owner_id}
    assert events(app, "guest_upgraded") == []
    assert guest.me(response.json["access_token"]).json["id"] == owner_id


def test_a_guest_that_became_an_account_proving_a_number_is_a_plain_phone_sign_in(app, guest):
    """The guest's token says guest, but another tab registered it meanwhile (``GuestGone``): the code
    signs in like anyone's, the registered account stays as it was."""
    guest_id, guest_headers = guest.id, guest.headers()
    assert guest.register(email="tab@example.com").status_code == 201
    response = verify_phone(guest.client, phone_code(app, guest.client), guest_headers)
    assert response.status_code == 200, response.json
    new_id = response.json["user_id"]
    assert new_id != guest_id
    kept = row(app, guest_id)
    assert (kept.role, kept.email, kept.phone) == ("customer", "tab@example.com", None)
    made = row(app, new_id)
    assert (made.role, made.phone, made.phone_verified) == ("customer", NUMBER, True)
    assert len(events(app, "guest_upgraded")) == 1 and events(app, "guest_merged") == []


def test_a_banned_number_owner_is_403_and_the_guest_stays_as_it_was(app, guest, make_auth):
    owner_id = phone_owner(app)
    admin = make_auth()
    admin.signup("boss@example.com")
    with app.app_context():
        db.session.execute(update(User).where(User.email == "boss@example.com").values(role="admin"))
        db.session.commit()
    admin.login("boss@example.com")
    banned = admin.client.post(
        f"/admin/users/{owner_id}/ban", json={"reason": "fraud"}, headers=admin.headers()
    )
    assert banned.status_code == 200, banned.json

    refused = verify_phone(guest.client, phone_code(app, guest.client), guest.headers())
    assert refused.status_code == 403 and refused.json["error"] == "account_banned"
    assert "refresh_token=" not in refused.headers.get("Set-Cookie", "")
    kept = row(app, guest.id)
    assert (kept.role, kept.phone) == ("guest", None)
    assert guest.me().status_code == 200 and guest.refresh().status_code == 200
    assert events(app, "guest_merged") == events(app, "guest_upgraded") == []


def test_a_refused_guest_token_on_verify_is_401_and_spends_nothing(app, guest):
    code = phone_code(app, guest.client)
    refused = verify_phone(guest.client, code, {"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401
    assert user_count(app) == 1 and row(app, guest.id).role == "guest"
    assert verify_phone(guest.client, code, guest.headers()).json["user_id"] == guest.id


def test_metrics_count_guests_created_upgraded_and_merged(app, guest, make_auth):
    def value(outcome: str) -> float:
        return REGISTRY.get_sample_value("trikchi_guests_total", {"outcome": outcome}) or 0.0

    before = {outcome: value(outcome) for outcome in ("created", "upgraded", "merged")}
    assert guest.register(email="ada@example.com").status_code == 201
    second = Guest(make_auth().client)
    assert second.start().status_code == 201
    third = Guest(make_auth().client)
    assert third.start().status_code == 201
    assert (
        AuthActions(app.test_client())
        .client.post("/auth/telegram", json=payload(id=555005, auth_date=a_moment_ago()))
        .status_code
        == 200
    )
    assert third.telegram(id=555005).status_code == 200
    assert {outcome: value(outcome) - before[outcome] for outcome in before} == {
        "created": 2,
        "upgraded": 1,
        "merged": 1,
    }


# --- the admin user list -------------------------------------------------------------------------


def test_the_admin_list_leaves_guests_out_unless_asked_and_counts_them_apart(app, make_auth):
    admin = make_auth()
    admin.signup(email="boss@example.com")
    with app.app_context():
        db.session.execute(update(User).where(User.email == "boss@example.com").values(role="admin"))
        db.session.commit()
    make_auth().signup(email="ada@example.com")
    guests = [Guest(make_auth().client) for _ in range(3)]
    for guest in guests:
        assert guest.start().status_code == 201

    listed = admin.client.get("/admin/users", headers=admin.headers()).json
    assert [u["email"] for u in listed["items"]] == ["boss@example.com", "ada@example.com"]
    assert (listed["total"], listed["guests"]) == (2, 3)

    only = admin.client.get("/admin/users?role=guest", headers=admin.headers()).json
    assert sorted(u["id"] for u in only["items"]) == sorted(g.id for g in guests)
    assert all(u["is_guest"] for u in only["items"]) and (only["total"], only["guests"]) == (3, 3)

    customers = admin.client.get("/admin/users?role=customer", headers=admin.headers()).json
    assert [u["email"] for u in customers["items"]] == ["ada@example.com"]
    refused = admin.client.get("/admin/users?role=root", headers=admin.headers())
    assert refused.status_code == 422 and set(refused.json["errors"]) == {"role"}


# --- pruning -------------------------------------------------------------------------------------


def age(app, user_id: int, days: int) -> None:
    """Make the user, and its sessions' last use, ``days`` old."""
    then = utcnow() - timedelta(days=days)
    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id).values(created_at=then))
        db.session.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user_id)
            .values(created_at=then, last_used_at=then)
        )
        db.session.commit()


def test_prune_guests_removes_idle_guests_in_batches_and_nothing_else(app, runner, make_auth):
    idle = [Guest(make_auth().client) for _ in range(5)]
    recent, refreshed = Guest(make_auth().client), Guest(make_auth().client)
    for guest in (*idle, recent, refreshed):
        assert guest.start().status_code == 201
    customer = make_auth()
    customer.signup()
    customer_id = customer.me().json["id"]
    for guest in idle:
        age(app, guest.id, 31)
    age(app, refreshed.id, 31)
    assert refreshed.refresh().status_code == 200  # used today: it stays
    age(app, recent.id, 29)
    age(app, customer_id, 400)

    result = runner.invoke(args=["users", "prune-guests", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Removed 5 idle guest(s)."
    for guest in idle:
        assert row(app, guest.id) is None
        assert guest.refresh().status_code == 401
    for guest in (recent, refreshed):
        assert row(app, guest.id).role == "guest" and guest.refresh().status_code == 200
    assert customer.me().status_code == 200
    with app.app_context():
        gone = [g.id for g in idle]
        assert (
            db.session.scalar(
                select(func.count()).select_from(AuthSession).where(AuthSession.user_id.in_(gone))
            )
            == 0
        )
        orphan_tokens = (
            select(func.count())
            .select_from(RefreshToken)
            .where(~RefreshToken.session_id.in_(select(AuthSession.id)))
        )
        assert db.session.scalar(orphan_tokens) == 0
        # Their events stay, without the user.
        created = db.session.scalars(select(AuthEvent).where(AuthEvent.type == "guest_created")).all()
        assert sum(1 for event in created if event.user_id is None) == 5

    again = runner.invoke(args=["users", "prune-guests"])
    assert again.output.strip() == "Removed 0 idle guest(s)."


def test_the_guest_ttl_is_a_setting(database_url):
    app = make_app(database_url, GUEST_TTL_DAYS=3)
    guest = Guest(app.test_client())
    assert guest.start().status_code == 201
    age(app, guest.id, 4)
    result = app.test_cli_runner().invoke(args=["users", "prune-guests"])
    assert result.output.strip() == "Removed 1 idle guest(s)."
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- the migration -------------------------------------------------------------------------------


def test_the_guests_migration_adds_and_drops_its_index_keeping_every_row(backend, request, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database("trikchi_guest_migration")
    app = make_app(url)

    def indexes() -> set[str]:
        engine = create_engine(url)
        try:
            return {index["name"] for index in inspect(engine).get_indexes("users")}
        finally:
            engine.dispose()

    def users() -> list[tuple]:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return conn.execute(text("SELECT id, role, email FROM users ORDER BY id")).all()
        finally:
            engine.dispose()

    with app.app_context():
        # Written by today's app at the head (its models name later columns), then taken down.
        upgrade()
        AuthActions(app.test_client()).register()
        assert Guest(app.test_client()).start().status_code == 201
        kept = users()
        assert kept[-1][1] == "guest"
        db.session.remove()
        db.engine.dispose()
        downgrade(revision="3f6a2c8e1b57")
        assert "ix_users_role_created_at" not in indexes() and users() == kept
        upgrade(revision="3e8a6f2c9b17")
        assert "ix_users_role_created_at" in indexes() and users() == kept
        downgrade(revision="3f6a2c8e1b57")
        assert "ix_users_role_created_at" not in indexes() and users() == kept
        upgrade()
        assert "ix_users_role_created_at" in indexes() and users() == kept
        db.session.remove()
        db.engine.dispose()
