"""SPEC §14: phone numbers and SMS codes — sign-in, the account's number, limits, bad input."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select, update

from tests.conftest import PASSWORD, AuthActions, make_app
from tests.support.races import race
from tests.support.sms import sms_code_for, sms_texts_to
from tests.support.telegram import BOT_TOKEN, payload
from trikchi.auth.models import AuthSession, User
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.outbox.models import Delivery
from trikchi.phone.models import PhoneCode

NUMBER = "+998901234567"
OTHER = "+998911112233"


def ask_code(client, phone: str = "90 123 45 67", **kwargs):
    return client.post("/auth/phone/code", json={"phone": phone}, **kwargs)


def verify(client, code: str, phone: str = NUMBER, **extra):
    return client.post("/auth/phone/verify", json={"phone": phone, "code": code, **extra})


def sign_in_by_phone(
    app, client, phone: str = NUMBER, name: str | None = None, written: str | None = None
) -> dict:
    """Ask for a code (the number ``written`` so, if given), read it from the SMS queued to ``phone``,
    sign in: the login body."""
    assert ask_code(client, written or phone).status_code == 202
    extra = {"name": name} if name is not None else {}
    response = verify(client, sms_code_for(app, phone), written or phone, **extra)
    assert response.status_code == 200, response.json
    return response.json


def bearer(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def events(app, type_: str | None = None) -> list[AuthEvent]:
    with app.app_context():
        stmt = select(AuthEvent).order_by(AuthEvent.id)
        if type_:
            stmt = stmt.where(AuthEvent.type == type_)
        found = db.session.scalars(stmt).all()
        db.session.expunge_all()
        return found


def count(app, model, *where) -> int:
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(model).where(*where))
        db.session.remove()
        return total


@pytest.fixture
def unlimited(database_url):
    """An app with the rate limits off (the resend window included)."""
    app = make_app(database_url, RATELIMIT_ENABLED=False)
    yield app
    with app.app_context():
        db.engine.dispose()


# --- signing in --------------------------------------------------------------------------------


def test_a_new_number_gets_a_customer_account_by_code(app, client):
    asked = ask_code(client, "+998 (90) 123-45-67")
    assert asked.status_code == 202 and asked.json == {"expires_in": 300, "resend_after": 60}
    (text,) = sms_texts_to(app, NUMBER)
    code = sms_code_for(app, NUMBER)
    assert code in text and "trikchi.uz" in text
    signed_in = verify(client, code, "998901234567", name="  Zarina  ")
    assert signed_in.status_code == 200, signed_in.json
    assert signed_in.headers["Cache-Control"] == "no-store"
    assert client.get_cookie("refresh_token") is not None and client.get_cookie("csrf_refresh_token")
    me = client.get("/auth/me", headers=bearer(signed_in.json)).json
    assert me["phone"] == NUMBER and me["phone_verified"] is True
    assert me["email"] is None and me["email_verified"] is False
    assert me["role"] == "customer" and me["name"] == "Zarina"
    types = [e.type for e in events(app)]
    assert types == ["phone_code_sent", "registered", "phone_verified", "login_succeeded"]
    (login,) = events(app, "login_succeeded")
    assert login.details == {"method": "phone"}
    assert count(app, User, User.id == me["id"], User.password_hash.is_(None)) == 1
    assert count(app, PhoneCode) == 0  # used once


def test_no_event_holds_the_code_or_the_whole_number(app, client):
    body = sign_in_by_phone(app, client)
    code = sms_code_for(app, NUMBER)
    for event in events(app):
        text = repr(event.details)
        assert code not in text and "901234567" not in text, event.type
    (sent,) = events(app, "phone_code_sent")
    assert sent.details == {"purpose": "sign_in", "phone": "+998*******67"} and sent.user_id is None
    assert body["user_id"]


def test_a_number_signs_in_to_its_account_again(app, client, make_auth):
    first = sign_in_by_phone(app, client, name="Zarina")
    other = make_auth().client
    app.config["RATELIMIT_ENABLED"] = False  # no resend window: a minute later, as it were
    second = sign_in_by_phone(app, other, written="+998 90 123 45 67")
    assert second["user_id"] == first["user_id"]
    assert count(app, User) == 1
    assert other.get("/auth/me", headers=bearer(second)).json["name"] == "Zarina"


def test_a_new_account_without_a_name_has_an_empty_one(app, client):
    body = sign_in_by_phone(app, client)
    assert client.get("/auth/me", headers=bearer(body)).json["name"] == ""


def test_the_answer_does_not_tell_whether_a_number_has_an_account(unlimited):
    sign_in_by_phone(unlimited, unlimited.test_client())
    known = ask_code(unlimited.test_client(), NUMBER)
    unknown = ask_code(unlimited.test_client(), OTHER)
    assert (known.status_code, known.json) == (unknown.status_code, unknown.json) == (202, known.json)
    assert count(unlimited, Delivery, Delivery.kind == "sms") == 3
    assert count(unlimited, PhoneCode) == 2
    sent = events(unlimited, "phone_code_sent")[-2:]
    assert [e.user_id for e in sent] == [None, None]


def test_wrong_expired_used_and_unsent_codes_get_one_answer(app, client):
    assert ask_code(client).status_code == 202
    code = sms_code_for(app, NUMBER)
    wrong = "000000" if code != "000000" else "111111"
    answers = [verify(client, wrong), verify(client, code, OTHER)]  # wrong code; no code sent to OTHER
    assert verify(client, code).status_code == 200
    answers.append(verify(app.test_client(), code))  # used
    for answer in answers:
        assert answer.status_code == 401 and answer.json["error"] == "invalid_code", answer.json
        assert "refresh_token" not in answer.headers.get("Set-Cookie", "")
    assert len({a.json["message"] for a in answers}) == 1


def test_an_expired_code_is_refused(app, client):
    assert ask_code(client).status_code == 202
    code = sms_code_for(app, NUMBER)
    with app.app_context():
        db.session.execute(update(PhoneCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = verify(client, code)
    assert response.status_code == 401 and response.json["error"] == "invalid_code"
    assert count(app, User) == 0


def test_five_wrong_tries_kill_the_code_even_with_limits_off(unlimited):
    client = unlimited.test_client()
    assert ask_code(client).status_code == 202
    code = sms_code_for(unlimited, NUMBER)
    wrong = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, 6)]
    for guess in wrong:
        assert verify(client, guess).status_code == 401
    response = verify(client, code)
    assert response.status_code == 401 and response.json["error"] == "invalid_code"
    failed = events(unlimited, "login_failed")
    assert len(failed) == 6 and failed[0].details == {"method": "phone", "reason": "invalid_code"}


def test_four_wrong_tries_leave_the_code_working(unlimited):
    client = unlimited.test_client()
    assert ask_code(client).status_code == 202
    code = sms_code_for(unlimited, NUMBER)
    for n in range(1, 5):
        assert verify(client, f"{(int(code) + n) % 10**6:06d}").status_code == 401
    assert verify(client, code).status_code == 200


def test_a_new_code_replaces_the_previous_one(unlimited):
    client = unlimited.test_client()
    assert ask_code(client).status_code == 202
    first = sms_code_for(unlimited, NUMBER)
    assert ask_code(client).status_code == 202
    second = sms_code_for(unlimited, NUMBER)
    assert count(unlimited, PhoneCode) == 1
    if first != second:
        assert verify(client, first).status_code == 401
    assert verify(client, second).status_code == 200


def test_racing_verifies_of_one_code_get_exactly_one_success(unlimited):
    assert ask_code(unlimited.test_client()).status_code == 202
    code = sms_code_for(unlimited, NUMBER)
    statuses = race(8, lambda _i: verify(unlimited.test_client(), code).status_code)
    assert sorted(statuses) == [200] + [401] * 7, statuses
    assert count(unlimited, User) == 1 and count(unlimited, AuthSession) == 1


def test_racing_guesses_never_get_more_than_five_tries(unlimited):
    assert ask_code(unlimited.test_client()).status_code == 202
    code = sms_code_for(unlimited, NUMBER)
    guesses = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, 13)]
    race(12, lambda i: verify(unlimited.test_client(), guesses[i]).status_code)
    with unlimited.app_context():
        assert db.session.scalar(select(PhoneCode.failures)) == 5
        db.session.remove()
    assert verify(unlimited.test_client(), code).status_code == 401


def test_an_account_with_totp_on_gets_the_second_step(app, client):
    body = sign_in_by_phone(app, client)
    setup = client.post("/auth/mfa/totp/setup", headers=bearer(body))
    assert setup.status_code == 200, setup.json
    authenticator = pyotp.TOTP(setup.json["secret"])
    confirmed = client.post(
        "/auth/mfa/totp/confirm", json={"code": authenticator.now()}, headers=bearer(body)
    )
    assert confirmed.status_code == 200, confirmed.json
    other = app.test_client()
    app.config["RATELIMIT_ENABLED"] = False  # no resend window: a minute later, as it were
    assert ask_code(other).status_code == 202
    step = verify(other, sms_code_for(app, NUMBER))
    assert step.status_code == 200 and step.json["mfa_required"] is True
    assert "access_token" not in step.json and "Set-Cookie" not in step.headers
    assert step.json["methods"] == ["totp", "recovery_code"]


def test_a_disabled_account_is_refused_like_a_wrong_code(app, client):
    sign_in_by_phone(app, client)
    with app.app_context():
        db.session.execute(update(User).values(is_active=False))
        db.session.commit()
    app.config["RATELIMIT_ENABLED"] = False
    other = app.test_client()
    assert ask_code(other).status_code == 202
    response = verify(other, sms_code_for(app, NUMBER))
    assert response.status_code == 401 and response.json["error"] == "invalid_code"
    assert events(app, "login_failed")[-1].details == {"method": "phone", "reason": "inactive"}


# --- limits -------------------------------------------------------------------------------------


def assert_429(response) -> None:
    assert response.status_code == 429, response.json
    assert response.json["error"] == "rate_limited" and int(response.headers["Retry-After"]) >= 1


def test_another_code_within_the_resend_window_is_429(app, client):
    assert ask_code(client).status_code == 202
    again = ask_code(app.test_client(), "998901234567")
    assert_429(again)
    assert 1 <= int(again.headers["Retry-After"]) <= 60
    assert ask_code(client, OTHER).status_code == 202  # another number has its own window
    assert len(sms_texts_to(app, NUMBER)) == 1


def test_codes_per_number_are_limited(database_url):
    app = make_app(database_url, RATELIMIT_PHONE_CODE_PER_NUMBER="2 per hour")
    try:
        for _ in range(2):
            assert ask_code(app.test_client()).status_code == 202
            forget_resend_window(app, NUMBER)
        assert_429(ask_code(app.test_client()))
        assert len(sms_texts_to(app, NUMBER)) == 2
    finally:
        with app.app_context():
            db.engine.dispose()


def forget_resend_window(app, phone: str) -> None:
    """The resend window of one number forgotten, as a minute passing would."""
    from limits import parse

    from trikchi.auth.digests import sha256_hex
    from trikchi.extensions import limiter
    from trikchi.phone.limits import RESEND_SECONDS

    with app.app_context():
        limiter.limiter.clear(parse(f"1 per {RESEND_SECONDS} seconds"), "phone-resend", sha256_hex(phone))


def test_code_requests_per_ip_are_limited(database_url):
    app = make_app(database_url, RATELIMIT_PHONE_CODE="2 per minute")
    try:
        for n in range(2):
            assert ask_code(app.test_client(), f"+99890123450{n}").status_code == 202
        assert_429(ask_code(app.test_client(), "+998901234509"))
        other_ip = ask_code(app.test_client(), "+998901234509", environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert other_ip.status_code == 202
    finally:
        with app.app_context():
            db.engine.dispose()


def test_the_daily_ceiling_is_shared_by_every_instance_through_redis(database_url, redis_url):
    """Two apps on one Redis stand for two hosts: SMS_DAILY_LIMIT counts their codes together."""
    settings = {"RATELIMIT_STORAGE_URI": redis_url, "SMS_DAILY_LIMIT": 3}
    first, second = make_app(database_url, **settings), make_app(database_url, **settings)
    try:
        assert ask_code(first.test_client(), "+998901234501").status_code == 202
        assert ask_code(second.test_client(), "+998901234502").status_code == 202
        assert ask_code(first.test_client(), "+998901234503").status_code == 202
        for app in (first, second):
            assert_429(ask_code(app.test_client(), "+998901234504"))
        assert count(first, Delivery, Delivery.kind == "sms") == 3
    finally:
        for app in (first, second):
            with app.app_context():
                db.engine.dispose()


def test_limits_off_turn_the_window_off(unlimited):
    for _ in range(3):
        assert ask_code(unlimited.test_client()).status_code == 202
    assert len(sms_texts_to(unlimited, NUMBER)) == 3


def test_wrong_codes_are_limited_per_ip(database_url):
    app = make_app(database_url, RATELIMIT_PHONE_VERIFY="3 per minute")
    try:
        for _ in range(3):
            assert verify(app.test_client(), "123456").status_code == 401
        assert_429(verify(app.test_client(), "123456"))
    finally:
        with app.app_context():
            db.engine.dispose()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"phone": "+7 912 345 67 89"}, "invalid_phone"),  # Russia: not an allowed country
        ({"phone": "+1 202 555 0143"}, "invalid_phone"),
        ({"phone": "+998 90 ABC 45 67"}, "invalid_phone"),  # letters
        ({"phone": "abcdefghij"}, "invalid_phone"),
        ({"phone": "9" * 300}, "invalid_phone"),
        ({"phone": "+998 90 123 45 67 " * 20}, "invalid_phone"),
        ({"phone": "+998 12"}, "invalid_phone"),  # too short to be a number
        ({"phone": "+998901234567 ext. 5"}, "invalid_phone"),
        ({"phone": 998901234567}, "validation_failed"),  # a JSON number
        ({"phone": None}, "validation_failed"),
        ({"phone": ""}, "validation_failed"),
        ({}, "validation_failed"),
        ({"phone": NUMBER, "extra": 1}, "validation_failed"),
        ({"phone": NUMBER, "captcha_token": 5}, "validation_failed"),
    ],
)
def test_bad_code_requests_are_422_and_write_nothing(app, client, body, error):
    response = client.post("/auth/phone/code", json=body)
    assert response.status_code == 422, response.json
    assert response.json["error"] == error
    if error == "invalid_phone":
        assert set(response.json["errors"]) == {"phone"}
    assert count(app, PhoneCode) == 0 and count(app, Delivery) == 0 and count(app, AuthEvent) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"phone": NUMBER, "code": "12345a"},
        {"phone": NUMBER, "code": "12345"},
        {"phone": NUMBER, "code": "1234567"},
        {"phone": NUMBER, "code": 123456},
        {"phone": NUMBER, "code": "١٢٣٤٥٦"},  # Arabic-Indic digits
        {"phone": NUMBER},
        {"code": "123456"},
        {"phone": "+7 912 345 67 89", "code": "123456"},
        {"phone": NUMBER, "code": "123456", "name": ""},
        {"phone": NUMBER, "code": "123456", "name": "a\x00b"},
    ],
)
def test_bad_verify_bodies_are_422_and_write_nothing(app, client, body):
    assert ask_code(client).status_code == 202
    before = (count(app, AuthEvent), count(app, User))
    response = client.post("/auth/phone/verify", json=body)
    assert response.status_code == 422, response.json
    assert (count(app, AuthEvent), count(app, User)) == before
    with app.app_context():
        assert db.session.scalar(select(PhoneCode.failures)) == 0  # no try spent
        db.session.remove()


def test_a_form_body_is_415(client):
    response = client.post("/auth/phone/code", data={"phone": NUMBER})
    assert response.status_code == 415 and response.is_json


# --- the account's number -----------------------------------------------------------------------


def change_number(app, auth: AuthActions, phone: str = NUMBER, written: str | None = None):
    """Ask for a code to ``phone`` (written so, if given) and confirm it: the confirmation's answer."""
    asked = auth.client.post("/auth/phone", json={"phone": written or phone}, headers=auth.headers())
    assert asked.status_code == 202, asked.json
    assert asked.json == {"expires_in": 300, "resend_after": 60}
    confirm = {"phone": written or phone, "code": sms_code_for(app, phone)}
    return auth.client.post("/auth/phone/confirm", json=confirm, headers=auth.headers())


def stamp(app, user_id: int) -> str:
    with app.app_context():
        value = db.session.get(User, user_id).security_stamp
        db.session.remove()
        return value


def test_a_customer_adds_a_number_and_signs_in_with_it(app, auth):
    body = auth.signup().json
    before = stamp(app, body["user_id"])
    confirmed = change_number(app, auth, written="90 123 45 67")
    assert confirmed.status_code == 200, confirmed.json
    assert confirmed.json["phone"] == NUMBER and confirmed.json["phone_verified"] is True
    assert confirmed.json["email"] == "ada@example.com"
    assert stamp(app, body["user_id"]) != before  # links mailed before die, as for an email change
    (changed,) = events(app, "phone_changed")
    assert changed.details == {"from": None, "to": "+998*******67"}
    assert [e.details["purpose"] for e in events(app, "phone_code_sent")] == ["change"]
    with app.app_context():
        notices = db.session.scalars(select(Delivery.payload).where(Delivery.kind == "mail")).all()
        assert any(p.get("to") == "ada@example.com" and "phone number" in p["text"] for p in notices)
        db.session.remove()
    app.config["RATELIMIT_ENABLED"] = False
    other = app.test_client()
    assert sign_in_by_phone(app, other)["user_id"] == body["user_id"]


def test_a_change_needs_a_fresh_sign_in(app, auth):
    auth.signup()
    app.config["FRESH_SIGNIN_SECONDS"] = 0
    response = auth.client.post("/auth/phone", json={"phone": NUMBER}, headers=auth.headers())
    assert response.status_code == 401 and response.json["error"] == "fresh_signin_required"
    assert count(app, PhoneCode) == 0
    assert auth.client.delete("/auth/phone", headers=auth.headers()).json["error"] == "fresh_signin_required"


def test_the_code_of_a_change_works_for_its_account_and_number_only(app, auth, make_auth):
    auth.signup()
    assert auth.client.post("/auth/phone", json={"phone": NUMBER}, headers=auth.headers()).status_code == 202
    code = sms_code_for(app, NUMBER)
    mallory = make_auth()
    mallory.signup(email="mallory@example.com")
    stolen = mallory.client.post(
        "/auth/phone/confirm", json={"phone": NUMBER, "code": code}, headers=mallory.headers()
    )
    assert stolen.status_code == 401 and stolen.json["error"] == "invalid_code"
    other_number = auth.client.post(
        "/auth/phone/confirm", json={"phone": OTHER, "code": code}, headers=auth.headers()
    )
    assert other_number.status_code == 401
    assert verify(app.test_client(), code).status_code == 401  # not a sign-in code either
    mine = auth.client.post(
        "/auth/phone/confirm", json={"phone": NUMBER, "code": code}, headers=auth.headers()
    )
    assert mine.status_code == 200


def test_a_number_of_another_account_is_409_once_proven(app, auth):
    sign_in_by_phone(app, app.test_client())
    auth.signup()
    app.config["RATELIMIT_ENABLED"] = False
    unproven = auth.client.post(
        "/auth/phone/confirm", json={"phone": NUMBER, "code": "123456"}, headers=auth.headers()
    )
    assert unproven.status_code == 401  # no oracle of who has which number
    response = change_number(app, auth)
    assert response.status_code == 409 and response.json["error"] == "phone_taken"
    assert auth.me().json["phone"] is None


def test_the_own_number_again_is_422(app, auth):
    auth.signup()
    assert change_number(app, auth).status_code == 200
    app.config["RATELIMIT_ENABLED"] = False
    again = auth.client.post("/auth/phone", json={"phone": "901234567"}, headers=auth.headers())
    assert again.status_code == 422 and "phone" in again.json["errors"]


def test_removing_the_number(app, auth):
    auth.signup()
    assert change_number(app, auth).status_code == 200
    response = auth.client.delete("/auth/phone", headers=auth.headers())
    assert response.status_code == 204
    me = auth.me().json
    assert me["phone"] is None and me["phone_verified"] is False
    assert events(app, "phone_changed")[-1].details == {"from": "+998*******67", "to": None}
    app.config["RATELIMIT_ENABLED"] = False
    other = app.test_client()
    assert ask_code(other).status_code == 202
    signed_in = verify(other, sms_code_for(app, NUMBER))
    assert signed_in.json["user_id"] != me["id"]  # the number no longer leads to the account


def test_the_number_of_a_phone_only_account_is_its_last_way_to_sign_in(app, client):
    body = sign_in_by_phone(app, client)
    response = client.delete("/auth/phone", headers=bearer(body))
    assert response.status_code == 409 and response.json["error"] == "last_sign_in_method"
    assert client.get("/auth/me", headers=bearer(body)).json["phone"] == NUMBER


def test_a_proven_number_lets_the_last_identity_go(database_url):
    app = make_app(database_url, TELEGRAM_BOT_TOKEN=BOT_TOKEN)
    try:
        client = app.test_client()
        body = client.post("/auth/telegram", json=payload()).json
        headers = bearer(body)
        (identity,) = client.get("/auth/identities", headers=headers).json
        refused = client.delete(f"/auth/identities/{identity['id']}", headers=headers)
        assert refused.status_code == 409 and refused.json["error"] == "last_sign_in_method"
        assert client.post("/auth/phone", json={"phone": NUMBER}, headers=headers).status_code == 202
        confirm = {"phone": NUMBER, "code": sms_code_for(app, NUMBER)}
        assert client.post("/auth/phone/confirm", json=confirm, headers=headers).status_code == 200
        assert client.delete(f"/auth/identities/{identity['id']}", headers=headers).status_code == 204
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_clean_start_takes_the_number_away(app, auth):
    """The owner of a never-verified address claims the account: a number added before goes with
    whatever else was set up (``auth.seams.credential_resets``)."""
    from trikchi.auth import signin

    body = auth.signup().json
    assert change_number(app, auth).status_code == 200
    with app.test_request_context():
        user = db.session.get(User, body["user_id"])
        signin.start_clean(user, "account_claimed")
        db.session.commit()
        user = db.session.get(User, body["user_id"])
        assert user.phone is None and user.phone_verified is False
        db.session.remove()


# --- languages, texts, search -------------------------------------------------------------------


def test_the_sms_is_in_the_language_of_the_request(app, client):
    assert ask_code(client, headers={"Accept-Language": "ru-RU,ru;q=0.9"}).status_code == 202
    (text,) = sms_texts_to(app, NUMBER)
    assert text.startswith("Код trikchi.uz: ") and sms_code_for(app, NUMBER) in text
    assert ask_code(client, OTHER, headers={"Accept-Language": "uz"}).status_code == 202
    assert "kodi" in sms_texts_to(app, OTHER)[0]


def test_a_template_setting_replaces_the_text(database_url):
    app = make_app(database_url, SMS_TEMPLATE_EN="Your shop code {code}")
    try:
        assert ask_code(app.test_client(), headers={"Accept-Language": "en"}).status_code == 202
        assert sms_texts_to(app, NUMBER) == [f"Your shop code {sms_code_for(app, NUMBER)}"]
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PHONE_DEFAULT_REGION", "XX"),
        ("SMS_ALLOWED_REGIONS", "UZ,Uzbekistan"),
        ("SMS_TEMPLATE_RU", "Ваш код: code"),
        ("SMS_DAILY_LIMIT", "0"),
        ("RATELIMIT_PHONE_CODE", "5 per fortnight"),
    ],
)
def test_unusable_phone_settings_are_refused(monkeypatch, variable, value):
    from config import ConfigError, load_config

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_config("testing")


def test_other_countries_can_be_allowed(database_url):
    app = make_app(database_url, SMS_ALLOWED_REGIONS=["UZ", "KZ"])
    try:
        assert ask_code(app.test_client(), "+7 701 234 56 78").status_code == 202
        assert sms_texts_to(app, "+77012345678")
    finally:
        with app.app_context():
            db.engine.dispose()


def test_admins_find_users_by_phone_number(app, auth, make_auth):
    customer = sign_in_by_phone(app, app.test_client(), name="Zarina")
    AuthActions(app.test_client()).register(email="someone@example.com")
    auth.register(email="boss@example.com")
    app.config["MFA_REQUIRED_ROLES"] = []
    with app.app_context():
        db.session.execute(update(User).where(User.email == "boss@example.com").values(role="admin"))
        db.session.commit()
    admin = make_auth()
    admin.login(email="boss@example.com", password=PASSWORD)
    for q in ("+998901234567", "90 123 45 67", "998 90 123-45-67", "4567", "123 45"):
        found = admin.client.get("/admin/users", query_string={"q": q}, headers=admin.headers()).json
        assert [u["id"] for u in found["items"]] == [customer["user_id"]], q
        assert found["items"][0]["phone"] == NUMBER
    assert (
        admin.client.get("/admin/users", query_string={"q": "7654"}, headers=admin.headers()).json["total"]
        == 0
    )


def test_codes_and_phone_sign_ins_are_counted(app, client):
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        value("trikchi_phone_codes_sent_total", purpose="sign_in"),
        value("trikchi_signins_total", method="phone", result="success"),
        value("trikchi_signins_total", method="phone", result="failure"),
    )
    assert verify(client, "123456").status_code == 401
    sign_in_by_phone(app, client)
    after = (
        value("trikchi_phone_codes_sent_total", purpose="sign_in"),
        value("trikchi_signins_total", method="phone", result="success"),
        value("trikchi_signins_total", method="phone", result="failure"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]


def test_the_code_of_a_change_is_in_the_users_language(app, auth):
    auth.signup()
    assert auth.client.patch("/auth/me", json={"locale": "uz"}, headers=auth.headers()).status_code == 200
    headers = {**auth.headers(), "Accept-Language": "en"}
    assert auth.client.post("/auth/phone", json={"phone": NUMBER}, headers=headers).status_code == 202
    (text,) = sms_texts_to(app, NUMBER)
    assert text == f"trikchi.uz kodi: {sms_code_for(app, NUMBER)}. Uni hech kimga aytmang."
