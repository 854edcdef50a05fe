"""SPEC §10 security notices by mail, each switched off by its setting: a sign-in from a new
device (no device cookie for the account), a password changed or reset, a second factor or
passkey added or removed (events of another feature, through the event → notice mapping)."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, AuthActions
from tests.support.mails import link_token, subjects_to, text_of, unique, wait_for_subject
from trikchi.events import record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.mails import mail_user

NEW_DEVICE = "New sign-in to your trikchi.uz account"
PASSWORD_CHANGED = "Your trikchi.uz password was changed"
SECOND_FACTOR = "Sign-in settings of your trikchi.uz account changed"


@pytest.fixture
def mail_app(mail_app_factory):
    return mail_app_factory()


def test_a_sign_in_from_a_new_device_is_noticed_once(mail_app, smtp_server):
    email = unique("device")
    laptop = AuthActions(mail_app.test_client())
    laptop.client.environ_base.update({"REMOTE_ADDR": "203.0.113.20", "HTTP_USER_AGENT": "Laptop/1.0"})
    laptop.signup(email=email)
    notice = wait_for_subject(smtp_server, email, NEW_DEVICE)
    assert "203.0.113.20" in text_of(notice) and "Laptop/1.0" in text_of(notice)

    # The same browser again: it holds the device cookie of the account, no notice.
    assert laptop.login(email=email).status_code == 200
    assert subjects_to(mail_app, smtp_server, email).count(NEW_DEVICE) == 1
    # Another browser: a notice.
    assert AuthActions(mail_app.test_client()).login(email=email).status_code == 200
    wait_for_subject(smtp_server, email, NEW_DEVICE, count=2)
    assert subjects_to(mail_app, smtp_server, email).count(NEW_DEVICE) == 2
    # A failed sign-in is no sign-in.
    assert (
        AuthActions(mail_app.test_client()).login(email=email, password="wrong password").status_code == 401
    )
    assert subjects_to(mail_app, smtp_server, email).count(NEW_DEVICE) == 2


def test_a_device_cookie_of_another_account_is_no_proof(mail_app, smtp_server):
    first, second = unique("first"), unique("second")
    browser = AuthActions(mail_app.test_client())
    browser.signup(email=first)
    browser.register(email=second)
    assert browser.login(email=second).status_code == 200
    wait_for_subject(smtp_server, second, NEW_DEVICE)


def test_a_password_change_is_noticed(mail_app, smtp_server):
    email = unique("change")
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    response = user.client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        headers=user.headers(),
    )
    assert response.status_code == 204
    notice = wait_for_subject(smtp_server, email, PASSWORD_CHANGED)
    assert "was changed" in text_of(notice) and "Every other device" in text_of(notice)


def test_a_password_reset_is_noticed_in_the_users_language(mail_app, smtp_server):
    email = unique("reset")
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    user.client.patch("/auth/me", json={"locale": "ru"}, headers=user.headers())
    anonymous = mail_app.test_client()
    anonymous.post("/auth/password_reset/request", json={"email": email})
    token = link_token(wait_for_subject(smtp_server, email, "Сброс пароля"), "reset-password")
    response = anonymous.post(
        "/auth/password_reset", json={"token": token, "new_password": "a brand new secret"}
    )
    assert response.status_code == 204
    notice = wait_for_subject(smtp_server, email, "Пароль от trikchi.uz изменён")
    assert "сброшен по ссылке" in text_of(notice)


@pytest.mark.parametrize(
    ("event", "sentence"),
    [
        ("mfa_totp_enabled", "Two-step verification with an authenticator app was turned on"),
        ("mfa_totp_disabled", "Two-step verification with an authenticator app was turned off"),
        ("passkey_added", "A passkey was added"),
        ("passkey_removed", "A passkey was removed"),
    ],
)
def test_second_factor_events_are_noticed(mail_app, smtp_server, event, sentence):
    """The events of the second-factor feature send their notice by being recorded, nothing more."""
    email = unique(event)
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    user_id = user.me().json["id"]
    with mail_app.test_request_context():
        record_event(event, ClientInfo(ip="127.0.0.1", user_agent="pytest"), user_id=user_id)
        db.session.commit()
    notice = wait_for_subject(smtp_server, email, SECOND_FACTOR)
    assert sentence in text_of(notice)


@pytest.mark.parametrize(
    ("setting", "action"),
    [
        ("NOTIFY_NEW_DEVICE", "login"),
        ("NOTIFY_PASSWORD_CHANGED", "password"),
        ("NOTIFY_MFA_CHANGED", "passkey_added"),
    ],
)
def test_each_notice_can_be_switched_off(mail_app_factory, smtp_server, setting, action):
    app = mail_app_factory(**{setting: False})
    email = unique(setting.lower())
    user = AuthActions(app.test_client())
    user.register(email=email)
    AuthActions(app.test_client()).login(email=email)
    assert user.login(email=email).status_code == 200
    if action == "password":
        user.client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "another long passphrase"},
            headers=user.headers(),
        )
    if action == "passkey_added":
        with app.test_request_context():
            record_event("passkey_added", None, user_id=user.me().json["id"])
            db.session.commit()
    if setting != "NOTIFY_NEW_DEVICE":
        wait_for_subject(smtp_server, email, NEW_DEVICE)  # delivered, however busy the machine
    subjects = subjects_to(app, smtp_server, email)
    switched_off = {"login": NEW_DEVICE, "password": PASSWORD_CHANGED, "passkey_added": SECOND_FACTOR}[action]
    assert switched_off not in subjects
    if setting != "NOTIFY_NEW_DEVICE":
        assert NEW_DEVICE in subjects  # the others stay on


def test_events_without_a_notice_send_nothing(mail_app, smtp_server):
    email = unique("quiet")
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    assert user.refresh().status_code == 200
    assert user.logout().status_code == 200
    wait_for_subject(smtp_server, email, NEW_DEVICE)  # delivered, however busy the machine
    assert subjects_to(mail_app, smtp_server, email) == [NEW_DEVICE]  # ... and nothing else after it


def test_a_user_without_an_email_is_skipped(app):
    class NoEmail:
        name, email, locale = "Telegram user", None, None

    with app.test_request_context():
        assert mail_user(NoEmail(), "password_changed", when="now", reset=False) is False
