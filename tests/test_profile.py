"""SPEC §10 self-service: PATCH /auth/me, the email change (mails through a real SMTP server,
links followed), fresh sign-in, the unique-email rule at confirmation, also under a race."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD, AuthActions
from tests.support.mails import link_token, subjects_to, text_of, unique, wait_for_subject
from trikchi.account import profile
from trikchi.auth.models import AuthSession, User
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db

CONFIRM = "Confirm your new email for trikchi.uz"
REQUESTED = "Your trikchi.uz email is about to change"
CHANGED = "Your trikchi.uz email was changed"


@pytest.fixture
def mail_app(mail_app_factory):
    return mail_app_factory()


def signed_up(app, email: str, name: str = "Ada") -> AuthActions:
    user = AuthActions(app.test_client())
    assert user.register(email=email, name=name).status_code == 201
    assert user.login(email=email).status_code == 200
    return user


def age_sign_in(app, seconds: int) -> None:
    with app.app_context():
        db.session.execute(update(AuthSession).values(auth_time=utcnow() - timedelta(seconds=seconds)))
        db.session.commit()


def test_patch_me_changes_name_and_language(app, auth):
    auth.signup()
    response = auth.client.patch(
        "/auth/me", json={"name": "  Ada Lovelace ", "locale": "ru"}, headers=auth.headers()
    )
    assert response.status_code == 200
    assert response.json["name"] == "Ada Lovelace" and response.json["locale"] == "ru"
    assert auth.me().json["name"] == "Ada Lovelace" and auth.me().json["locale"] == "ru"

    # Fields left out stay; a null locale follows the browser again.
    response = auth.client.patch("/auth/me", json={"locale": None}, headers=auth.headers())
    assert response.status_code == 200
    assert response.json["locale"] is None and response.json["name"] == "Ada Lovelace"
    with app.app_context():
        events = db.session.scalars(select(AuthEvent).where(AuthEvent.type == "profile_updated")).all()
        assert [e.details for e in events] == [{"fields": ["name", "locale"]}, {"fields": ["locale"]}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"locale": "de"}, "locale"),
        ({"locale": "uz-Cyrl"}, "locale"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "Ada\n"}, "name"),  # trimmed into a name before; the document refuses it
        ({"name": "\x1fAda"}, "name"),
        ({"email": "other@example.com"}, "email"),
        ({"role": "admin"}, "role"),
    ],
)
def test_patch_me_refuses_bad_fields(auth, body, field):
    auth.signup()
    response = auth.client.patch("/auth/me", json=body, headers=auth.headers())
    assert response.status_code == 422 and field in response.json["errors"]
    assert auth.me().json["role"] == "customer" and auth.me().json["email"] == "ada@example.com"


def test_the_confirmation_to_an_unproven_address_does_not_greet_by_the_typed_name(mail_app, smtp_server):
    """Whoever owns the new address has proven nothing yet: the mail must not carry a name the
    requester chose (a phishing line in a mail from the shop)."""
    old, new = unique("old"), unique("new")
    user = signed_up(mail_app, old, name="Visit evil example now")
    user.client.post("/auth/email", json={"new_email": new}, headers=user.headers())
    confirm = wait_for_subject(smtp_server, new, CONFIRM)
    assert "Visit evil example now" not in text_of(confirm)
    assert "Visit evil example now" not in confirm.get_body(preferencelist=("html",)).get_content()


def test_patch_me_needs_a_signed_in_user(client):
    response = client.patch("/auth/me", json={"name": "Eve"})
    assert response.status_code == 401 and response.json["error"] == "authentication_required"


def test_email_change_confirmed_through_the_mailed_link(mail_app, smtp_server):
    old, new = unique("old"), unique("new")
    user = signed_up(mail_app, old)
    response = user.client.post("/auth/email", json={"new_email": new.upper()}, headers=user.headers())
    assert response.status_code == 202 and response.json["message"]

    confirm = wait_for_subject(smtp_server, new, CONFIRM)
    token = link_token(confirm, "confirm-email")
    notice = wait_for_subject(smtp_server, old, REQUESTED)
    assert new in notice.get_body(preferencelist=("plain",)).get_content()
    assert user.me().json["email"] == old  # nothing changes before the link is used

    anonymous = mail_app.test_client()  # the link may be opened in another browser
    confirmed = anonymous.post("/auth/email/confirm", json={"token": token})
    assert confirmed.status_code == 200, confirmed.json
    assert confirmed.json["email"] == new and confirmed.json["email_verified"] is True
    assert user.me().json["email"] == new
    changed = wait_for_subject(smtp_server, old, CHANGED)
    assert new in changed.get_body(preferencelist=("plain",)).get_content()
    assert CHANGED not in subjects_to(mail_app, smtp_server, new)

    # The link is spent (bound to the address it changed); the new address signs in, the old not.
    again = anonymous.post("/auth/email/confirm", json={"token": token})
    assert again.status_code == 401 and again.json["error"] == "invalid_link"
    assert AuthActions(mail_app.test_client()).login(email=new).status_code == 200
    assert AuthActions(mail_app.test_client()).login(email=old).status_code == 401
    with mail_app.app_context():
        types = db.session.scalars(select(AuthEvent.type)).all()
        assert "email_change_requested" in types and "email_changed" in types
        details = db.session.scalars(select(AuthEvent.details)).all()
        assert not any(new in str(d) or old in str(d) for d in details)


def test_email_change_needs_a_fresh_sign_in(mail_app, smtp_server):
    old, new = unique("stale"), unique("stale-new")
    user = signed_up(mail_app, old)
    age_sign_in(mail_app, 3600)
    assert user.refresh().status_code == 200
    response = user.client.post("/auth/email", json={"new_email": new}, headers=user.headers())
    assert response.status_code == 401 and response.json["error"] == "fresh_signin_required"
    assert CONFIRM not in subjects_to(mail_app, smtp_server, new)
    reauth = user.client.post("/auth/reauthenticate", json={"password": PASSWORD}, headers=user.headers())
    assert reauth.status_code == 200
    response = user.client.post(
        "/auth/email", json={"new_email": new}, headers=user.headers(reauth.json["access_token"])
    )
    assert response.status_code == 202
    wait_for_subject(smtp_server, new, CONFIRM)


def test_email_change_to_the_same_address_is_refused(auth):
    auth.signup()
    response = auth.client.post("/auth/email", json={"new_email": " ADA@example.com"}, headers=auth.headers())
    assert response.status_code == 422 and "new_email" in response.json["errors"]


@pytest.mark.parametrize("new_email", ["not-an-email", "", "a@" + "b" * 260 + ".com"])
def test_email_change_validates_the_address(auth, new_email):
    auth.signup()
    response = auth.client.post("/auth/email", json={"new_email": new_email}, headers=auth.headers())
    assert response.status_code == 422 and "new_email" in response.json["errors"]


def test_email_taken_by_then_is_409_and_nothing_changes(mail_app, smtp_server):
    old, wanted = unique("slow"), unique("wanted")
    user = signed_up(mail_app, old)
    # Asking for a registered address answers like any other (the 202 tells nothing) ...
    first = user.client.post("/auth/email", json={"new_email": wanted}, headers=user.headers())
    token = link_token(wait_for_subject(smtp_server, wanted, CONFIRM), "confirm-email")
    assert AuthActions(mail_app.test_client()).register(email=wanted).status_code == 201
    second = user.client.post("/auth/email", json={"new_email": wanted}, headers=user.headers())
    assert first.status_code == second.status_code == 202 and first.get_data() == second.get_data()
    # ... and the link says it, when used.
    response = mail_app.test_client().post("/auth/email/confirm", json={"token": token})
    assert response.status_code == 409 and response.json["error"] == "email_taken"
    assert user.me().json["email"] == old


def test_email_taken_in_a_race_is_409(mail_app, smtp_server, monkeypatch):
    """Two accounts confirm the same address; the check passes for both, the unique index decides."""
    wanted = unique("race")
    for tag in ("a", "b"):
        user = signed_up(mail_app, unique(f"race-{tag}"))
        response = user.client.post("/auth/email", json={"new_email": wanted}, headers=user.headers())
        assert response.status_code == 202
    for count in (1, 2):
        smtp_server.wait_for(wanted, count=count)
    links = [link_token(m, "confirm-email") for m in smtp_server.messages_to(wanted)]
    monkeypatch.setattr(profile, "_email_taken", lambda email, user_id: False)
    client = mail_app.test_client()
    results = [client.post("/auth/email/confirm", json={"token": token}) for token in links]
    assert sorted(r.status_code for r in results) == [200, 409]
    assert [r.json["error"] for r in results if r.status_code == 409] == ["email_taken"]
    with mail_app.app_context():
        assert db.session.scalar(select(User.id).where(User.email == wanted)) is not None


@pytest.mark.parametrize("token", ["not-a-token", "x" * 200, ""])
def test_a_forged_email_change_link_is_refused(client, token):
    response = client.post("/auth/email/confirm", json={"token": token})
    assert response.status_code in (401, 422)
    if response.status_code == 401:
        assert response.json["error"] == "invalid_link"


def test_an_email_change_link_dies_when_the_email_changes_otherwise(mail_app, smtp_server):
    old = unique("twice")
    first, second = unique("first"), unique("second")
    user = signed_up(mail_app, old)
    user.client.post("/auth/email", json={"new_email": first}, headers=user.headers())
    user.client.post("/auth/email", json={"new_email": second}, headers=user.headers())
    token_first = link_token(wait_for_subject(smtp_server, first, CONFIRM), "confirm-email")
    token_second = link_token(wait_for_subject(smtp_server, second, CONFIRM), "confirm-email")
    client = mail_app.test_client()
    assert client.post("/auth/email/confirm", json={"token": token_second}).status_code == 200
    stale = client.post("/auth/email/confirm", json={"token": token_first})
    assert stale.status_code == 401 and stale.json["error"] == "invalid_link"
    assert user.me().json["email"] == second


def test_email_change_without_notices_still_sends_the_link(mail_app_factory, smtp_server):
    app = mail_app_factory(NOTIFY_EMAIL_CHANGED=False, NOTIFY_NEW_DEVICE=False)
    old, new = unique("quiet"), unique("quiet-new")
    user = signed_up(app, old)
    assert user.client.post("/auth/email", json={"new_email": new}, headers=user.headers()).status_code == 202
    token = link_token(wait_for_subject(smtp_server, new, CONFIRM), "confirm-email")
    assert app.test_client().post("/auth/email/confirm", json={"token": token}).status_code == 200
    assert subjects_to(app, smtp_server, old) == []
