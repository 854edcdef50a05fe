"""SPEC §8, passkeys: registration and discoverable sign-in against a software authenticator
(P-256 keys, CBOR, the WebAuthn byte formats), single-use expiring challenges, user
verification, the signature counter, list/rename/delete, fresh sign-in; and MFA_REQUIRED_ROLES.

The browser itself (Chromium's virtual authenticator) is driven in test_browser_passkeys.py.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pyotp
from sqlalchemy import delete, func, select, update

from tests.conftest import PASSWORD, make_app
from tests.support.webauthn import RP_ID, SoftAuthenticator, add_passkey, b64url, passkey_sign_in, unb64url
from trikchi.auth.models import AuthSession, User
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.mfa.models import Passkey, WebAuthnChallenge


def events(app, type_: str) -> list[AuthEvent]:
    with app.app_context():
        return db.session.scalars(
            select(AuthEvent).where(AuthEvent.type == type_).order_by(AuthEvent.id)
        ).all()


def age_sign_in(app, seconds: int) -> None:
    with app.app_context():
        db.session.execute(update(AuthSession).values(auth_time=utcnow() - timedelta(seconds=seconds)))
        db.session.commit()


def test_registration_options_are_the_standard_json_form(auth):
    auth.signup()
    response = auth.client.post("/auth/passkeys/registration/options", headers=auth.headers())
    assert response.status_code == 200
    options = response.json
    assert options["rp"] == {"id": RP_ID, "name": "trikchi.uz"}
    assert options["user"]["name"] == "ada@example.com" and options["user"]["displayName"] == "Ada"
    assert len(unb64url(options["user"]["id"])) == 32 and len(unb64url(options["challenge"])) == 32
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
    assert options["excludeCredentials"] == []


def test_register_a_passkey_then_sign_in_with_it(app, auth, make_auth):
    auth.signup()
    authenticator = SoftAuthenticator()
    added = add_passkey(auth, authenticator)
    assert added.status_code == 201, added.json
    assert set(added.json) == {"id", "name", "created_at", "last_used_at"}
    assert added.json["name"] == "Laptop" and added.json["last_used_at"] is None
    assert auth.client.get("/auth/mfa", headers=auth.headers()).json["passkeys"] == 1
    assert [e.details for e in events(app, "passkey_added")] == [{"passkey_id": added.json["id"]}]

    device = make_auth()
    response = passkey_sign_in(device.client, authenticator)
    assert response.status_code == 200, response.json
    assert set(response.json) == {"access_token", "token_type", "user_id", "expires_in", "csrf_token"}
    assert response.headers["Cache-Control"] == "no-store"
    assert any(c.startswith("refresh_token=") for c in response.headers.getlist("Set-Cookie"))
    device._remember(response)
    assert device.me().json["email"] == "ada@example.com"
    assert device.refresh().status_code == 200
    assert events(app, "login_succeeded")[-1].details == {"method": "passkey"}
    listed = auth.client.get("/auth/passkeys", headers=auth.headers()).json
    assert listed[0]["id"] == added.json["id"] and listed[0]["last_used_at"] is not None


def test_a_passkey_sign_in_is_complete_even_with_totp_on(app, auth, make_auth):
    auth.signup()
    setup = auth.client.post("/auth/mfa/totp/setup", headers=auth.headers()).json
    code = pyotp.TOTP(setup["secret"]).now()
    assert (
        auth.client.post("/auth/mfa/totp/confirm", json={"code": code}, headers=auth.headers()).status_code
        == 200
    )
    authenticator = SoftAuthenticator()
    assert add_passkey(auth, authenticator).status_code == 201
    response = passkey_sign_in(make_auth().client, authenticator)
    assert response.status_code == 200 and "access_token" in response.json


def test_a_second_passkey_keeps_the_user_handle_and_excludes_the_first(auth):
    auth.signup()
    first = SoftAuthenticator()
    assert add_passkey(auth, first).status_code == 201
    options = auth.client.post("/auth/passkeys/registration/options", headers=auth.headers()).json
    (credential_id,) = first.credentials
    assert [c["id"] for c in options["excludeCredentials"]] == [b64url(credential_id)]
    assert options["user"]["id"] == first.credentials[credential_id]["user_handle"]


def test_a_challenge_works_once(app, auth, make_auth):
    auth.signup()
    authenticator = SoftAuthenticator()
    assert add_passkey(auth, authenticator).status_code == 201
    client = make_auth().client
    options = client.post("/auth/passkeys/authentication/options").json
    assertion = authenticator.get(options)
    assert client.post("/auth/passkeys/authentication/verify", json=assertion).status_code == 200
    replay = client.post("/auth/passkeys/authentication/verify", json=assertion)
    assert replay.status_code == 401 and replay.json["error"] == "passkey_invalid"
    assert events(app, "passkey_login_failed")[-1].details == {"reason": "unknown_challenge"}


def test_a_challenge_expires_after_five_minutes(app, auth, make_auth):
    auth.signup()
    authenticator = SoftAuthenticator()
    assert add_passkey(auth, authenticator).status_code == 201
    client = make_auth().client
    options = client.post("/auth/passkeys/authentication/options").json
    with app.app_context():
        row = db.session.scalar(
            select(WebAuthnChallenge).where(WebAuthnChallenge.purpose == "authentication")
        )
        assert row.expires_at - row.created_at == timedelta(minutes=5)
        assert row.challenge_hash != options["challenge"]
        db.session.execute(update(WebAuthnChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    late = client.post("/auth/passkeys/authentication/verify", json=authenticator.get(options))
    assert late.status_code == 401 and late.json["error"] == "passkey_invalid"


def test_a_counter_that_does_not_grow_is_refused(app, auth, make_auth):
    auth.signup()
    authenticator = SoftAuthenticator()
    added = add_passkey(auth, authenticator).json
    assert passkey_sign_in(make_auth().client, authenticator, count=5).status_code == 200
    clone = passkey_sign_in(make_auth().client, authenticator, count=5)  # a copy, same counter
    assert clone.status_code == 401 and clone.json["error"] == "passkey_invalid"
    older = passkey_sign_in(make_auth().client, authenticator, count=3)
    assert older.status_code == 401
    regressed = events(app, "passkey_counter_regressed")
    assert [e.details for e in regressed] == [
        {"passkey_id": added["id"], "stored_count": 5, "presented_count": 5},
        {"passkey_id": added["id"], "stored_count": 5, "presented_count": 3},
    ]
    assert passkey_sign_in(make_auth().client, authenticator, count=6).status_code == 200


def test_a_counter_kept_at_zero_is_fine(auth, make_auth):
    # Synced passkeys (iCloud Keychain, Google Password Manager) always report 0.
    auth.signup()
    authenticator = SoftAuthenticator()
    assert add_passkey(auth, authenticator).status_code == 201
    for _ in range(2):
        assert passkey_sign_in(make_auth().client, authenticator, count=0).status_code == 200


def test_user_verification_is_required(auth, make_auth):
    auth.signup()
    unverified = SoftAuthenticator(user_verified=False)
    refused = add_passkey(auth, unverified)
    assert refused.status_code == 422 and refused.json["error"] == "passkey_invalid"
    verified = SoftAuthenticator()
    assert add_passkey(auth, verified).status_code == 201
    verified.user_verified = False
    response = passkey_sign_in(make_auth().client, verified)
    assert response.status_code == 401 and response.json["error"] == "passkey_invalid"


def test_another_origin_is_refused(auth, make_auth):
    auth.signup()
    assert add_passkey(auth, SoftAuthenticator(origin="https://evil.example")).status_code == 422
    authenticator = SoftAuthenticator()
    assert add_passkey(auth, authenticator).status_code == 201
    authenticator.origin = "https://evil.example"
    assert passkey_sign_in(make_auth().client, authenticator).status_code == 401


def test_a_registration_needs_its_own_challenge(auth, make_auth):
    auth.signup()
    mallory = make_auth()
    mallory.signup(email="mallory@example.com")
    options = mallory.client.post("/auth/passkeys/registration/options", headers=mallory.headers()).json
    credential = SoftAuthenticator().create(options)
    # Ada cannot register a credential made for Mallory's challenge ...
    theirs = auth.client.post("/auth/passkeys/registration/verify", json=credential, headers=auth.headers())
    assert theirs.status_code == 422 and theirs.json["error"] == "passkey_invalid"
    # ... and the challenge is spent.
    again = mallory.client.post(
        "/auth/passkeys/registration/verify", json=credential, headers=mallory.headers()
    )
    assert again.status_code == 422
    made_up = SoftAuthenticator().create({**options, "challenge": b64url(os.urandom(32))})
    assert (
        auth.client.post(
            "/auth/passkeys/registration/verify", json=made_up, headers=auth.headers()
        ).status_code
        == 422
    )


def test_an_unknown_or_malformed_credential_is_refused(client):
    options = client.post("/auth/passkeys/authentication/options").json
    unknown = SoftAuthenticator()
    unknown.create({"rp": {"id": RP_ID}, "user": {"id": b64url(b"x")}, "challenge": "x"})
    response = client.post("/auth/passkeys/authentication/verify", json=unknown.get(options))
    assert response.status_code == 401 and response.json["error"] == "passkey_invalid"
    garbage = {"id": "a", "rawId": "a", "type": "public-key", "response": {"clientDataJSON": "!!"}}
    assert client.post("/auth/passkeys/authentication/verify", json=garbage).status_code == 401
    wrong_type = {**garbage, "type": "password"}
    assert client.post("/auth/passkeys/authentication/verify", json=wrong_type).status_code == 422


def test_rename_and_delete(app, auth, make_auth):
    auth.signup()
    authenticator = SoftAuthenticator()
    passkey_id = add_passkey(auth, authenticator, name=None).json["id"]
    assert auth.client.get("/auth/passkeys", headers=auth.headers()).json[0]["name"] == "Passkey"
    renamed = auth.client.patch(
        f"/auth/passkeys/{passkey_id}", json={"name": "YubiKey"}, headers=auth.headers()
    )
    assert renamed.status_code == 200 and renamed.json["name"] == "YubiKey"
    # A name like an account's: the spaces around it dropped, not blank, no control character.
    spaced = auth.client.patch(
        f"/auth/passkeys/{passkey_id}", json={"name": " YubiKey 5 "}, headers=auth.headers()
    )
    assert spaced.status_code == 200 and spaced.json["name"] == "YubiKey 5"
    for bad in ("   ", "YubiKey\n"):
        refused = auth.client.patch(
            f"/auth/passkeys/{passkey_id}", json={"name": bad}, headers=auth.headers()
        )
        assert refused.status_code == 422 and "name" in refused.json["errors"]
    other = make_auth()
    other.signup(email="other@example.com")
    assert (
        other.client.patch(
            f"/auth/passkeys/{passkey_id}", json={"name": "mine"}, headers=other.headers()
        ).status_code
        == 404
    )
    assert other.client.delete(f"/auth/passkeys/{passkey_id}", headers=other.headers()).status_code == 404
    assert auth.client.delete(f"/auth/passkeys/{passkey_id}", headers=auth.headers()).status_code == 204
    assert auth.client.get("/auth/passkeys", headers=auth.headers()).json == []
    assert passkey_sign_in(make_auth().client, authenticator).status_code == 401
    assert [e.type for e in events(app, "passkey_renamed") + events(app, "passkey_removed")] == [
        "passkey_renamed",
        "passkey_renamed",
        "passkey_removed",
    ]


def test_registration_and_delete_need_a_fresh_sign_in(app, auth):
    auth.signup()
    passkey_id = add_passkey(auth, SoftAuthenticator()).json["id"]
    age_sign_in(app, app.config["FRESH_SIGNIN_SECONDS"] + 5)
    assert auth.refresh().status_code == 200
    options = auth.client.post("/auth/passkeys/registration/options", headers=auth.headers())
    assert options.status_code == 401 and options.json["error"] == "fresh_signin_required"
    removal = auth.client.delete(f"/auth/passkeys/{passkey_id}", headers=auth.headers())
    assert removal.status_code == 401 and removal.json["error"] == "fresh_signin_required"
    # Renaming is harmless: no fresh sign-in needed.
    assert (
        auth.client.patch(
            f"/auth/passkeys/{passkey_id}", json={"name": "Phone"}, headers=auth.headers()
        ).status_code
        == 200
    )


def test_a_disabled_user_cannot_sign_in_with_a_passkey(app, auth, make_auth):
    auth.signup()
    authenticator = SoftAuthenticator()
    assert add_passkey(auth, authenticator).status_code == 201
    with app.app_context():
        db.session.execute(update(User).values(is_active=False))
        db.session.commit()
    assert passkey_sign_in(make_auth().client, authenticator).status_code == 401


def test_a_deleted_user_takes_their_passkeys_with_them(app, auth):
    auth.signup()
    assert add_passkey(auth, SoftAuthenticator()).status_code == 201
    auth.client.post("/auth/passkeys/registration/options", headers=auth.headers())
    with app.app_context():
        db.session.execute(delete(User))
        db.session.commit()
        for model in (Passkey, WebAuthnChallenge):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0


# --- MFA_REQUIRED_ROLES ------------------------------------------------------------------------


def promote(app, email: str = "ada@example.com") -> None:
    with app.app_context():
        db.session.execute(update(User).where(User.email == email).values(role="admin"))
        db.session.commit()


def test_an_admin_without_a_second_factor_is_refused_by_the_admin_api(app, auth):
    auth.signup()
    promote(app)
    for path in ("/admin/users", "/admin/audit"):
        response = auth.client.get(path, headers=auth.headers())
        assert response.status_code == 403 and response.json["error"] == "mfa_enrollment_required"
    response = auth.client.patch("/admin/users/1", json={"role": "customer"}, headers=auth.headers())
    assert response.status_code == 403 and response.json["error"] == "mfa_enrollment_required"
    assert auth.me().json["role"] == "admin"  # nothing changed
    # Enrolled with a passkey: in.
    assert add_passkey(auth, SoftAuthenticator()).status_code == 201
    assert auth.client.get("/admin/users", headers=auth.headers()).status_code == 200


def test_an_admin_with_totp_is_let_in(app, auth, make_auth):
    auth.signup()
    promote(app)
    setup = auth.client.post("/auth/mfa/totp/setup", headers=auth.headers()).json
    code = pyotp.TOTP(setup["secret"]).now()
    assert (
        auth.client.post("/auth/mfa/totp/confirm", json={"code": code}, headers=auth.headers()).status_code
        == 200
    )
    assert auth.client.get("/admin/users", headers=auth.headers()).status_code == 200


def test_customers_are_not_asked_for_a_second_factor(auth):
    auth.signup()
    response = auth.client.get("/admin/users", headers=auth.headers())
    assert response.status_code == 403 and response.json["error"] == "forbidden"


def test_mfa_required_roles_can_be_emptied(database_url):
    app = make_app(database_url, MFA_REQUIRED_ROLES=[])
    from tests.conftest import AuthActions

    auth = AuthActions(app.test_client())
    auth.signup()
    promote(app)
    assert auth.client.get("/admin/users", headers=auth.headers()).status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_mfa_required_roles_from_the_environment(monkeypatch):
    from config import load_config

    assert load_config("testing").MFA_REQUIRED_ROLES == ["admin"]
    monkeypatch.setenv("MFA_REQUIRED_ROLES", "")
    assert load_config("testing").MFA_REQUIRED_ROLES == []
    monkeypatch.setenv("MFA_REQUIRED_ROLES", "admin, customer")
    assert load_config("testing").MFA_REQUIRED_ROLES == ["admin", "customer"]


def test_no_secret_in_passkey_events(app, auth, make_auth):
    auth.signup()
    authenticator = SoftAuthenticator()
    assert add_passkey(auth, authenticator).status_code == 201
    passkey_sign_in(make_auth().client, authenticator)
    with app.app_context():
        public_key = db.session.scalar(select(Passkey.public_key))
        details = [json.dumps(e.details) for e in db.session.scalars(select(AuthEvent))]
    (credential_id,) = authenticator.credentials
    for text in details:
        assert b64url(credential_id) not in text and b64url(public_key) not in text
    assert PASSWORD not in "".join(details)


def test_the_last_way_to_sign_in_cannot_be_deleted(app, auth, make_auth):
    auth.signup()
    laptop, phone = SoftAuthenticator(), SoftAuthenticator()
    first = add_passkey(auth, laptop).json["id"]
    second = add_passkey(auth, phone, name="Phone").json["id"]
    with app.app_context():  # an account without a password (made by a social sign-in)
        db.session.execute(update(User).values(password_hash=None))
        db.session.commit()
    assert auth.client.delete(f"/auth/passkeys/{first}", headers=auth.headers()).status_code == 204
    refused = auth.client.delete(f"/auth/passkeys/{second}", headers=auth.headers())
    assert refused.status_code == 409 and refused.json["error"] == "last_sign_in_method"
    assert passkey_sign_in(make_auth().client, phone).status_code == 200
