"""SPEC §8, TOTP: enrolment with pyotp as the authenticator app, the two-step sign-in, codes
accepted once, recovery codes, the mfa_token's limits, fresh sign-in, re-authentication."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD, make_app
from trikchi.auth.models import AuthSession, MfaChallenge
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.mfa.models import RecoveryCode, TotpCredential

# TOTP checks read the clock through trikchi.mfa.totp.utcnow; it stands still in these tests, so
# that "the previous, this and the next step" mean the same on the app's side as on the test's.
NOW = utcnow()


@pytest.fixture(autouse=True)
def still_clock(monkeypatch):
    monkeypatch.setattr("trikchi.mfa.totp.utcnow", lambda: NOW)


class Authenticator:
    """The user's authenticator app: the secret from setup, and codes of distinct time steps."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.step = int(NOW.timestamp()) // 30

    def code(self, offset: int = 0) -> str:
        """The code of the step ``offset`` steps from the one the test started in."""
        return self.totp.generate_otp(self.step + offset)


def enrol(auth) -> tuple[Authenticator, list[str]]:
    """Set TOTP up and confirm it; the app, and the recovery codes."""
    setup = auth.client.post("/auth/mfa/totp/setup", headers=auth.headers())
    assert setup.status_code == 200, setup.json
    app = Authenticator(setup.json["secret"])
    confirm = auth.client.post("/auth/mfa/totp/confirm", json={"code": app.code(-1)}, headers=auth.headers())
    assert confirm.status_code == 200, confirm.json
    return app, confirm.json["recovery_codes"]


def events(app, type_: str) -> list[AuthEvent]:
    with app.app_context():
        return db.session.scalars(select(AuthEvent).where(AuthEvent.type == type_)).all()


def age_sign_in(app, seconds: int) -> None:
    with app.app_context():
        db.session.execute(update(AuthSession).values(auth_time=utcnow() - timedelta(seconds=seconds)))
        db.session.commit()


def password_step(client, email: str = "ada@example.com"):
    response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return response


def test_setup_gives_a_secret_an_otpauth_uri_and_an_svg_qr_code(app, auth):
    auth.signup()
    response = auth.client.post("/auth/mfa/totp/setup", headers=auth.headers())
    assert response.status_code == 200
    body = response.json
    assert len(body["secret"]) == 32
    assert body["otpauth_uri"].startswith(
        "otpauth://totp/trikchi.uz:ada%40example.com?secret=" + body["secret"]
    )
    assert "issuer=trikchi.uz" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"].rstrip().endswith("</svg>")
    assert response.headers["Cache-Control"] == "no-store"
    # Not on before a code confirms it: a password sign-in is still one step.
    status = auth.client.get("/auth/mfa", headers=auth.headers()).json
    assert status == {"totp": False, "recovery_codes_left": 0, "passkeys": 0}
    assert (
        "access_token"
        in auth.client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}).json
    )
    with app.app_context():
        stored = db.session.get(TotpCredential, 1).secret_encrypted
    assert body["secret"] not in stored  # encrypted at rest


def test_enrolment_then_the_two_step_sign_in(app, auth, make_auth):
    auth.signup()
    authenticator, codes = enrol(auth)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert auth.client.get("/auth/mfa", headers=auth.headers()).json == {
        "totp": True,
        "recovery_codes_left": 10,
        "passkeys": 0,
    }
    assert len(events(app, "mfa_totp_enabled")) == 1

    device = make_auth()
    first = password_step(device.client)
    assert set(first.json) == {"mfa_required", "mfa_token", "methods"}
    assert first.json["mfa_required"] is True and first.json["methods"] == ["totp", "recovery_code"]
    assert "Set-Cookie" not in first.headers  # no refresh cookie, no device cookie yet
    assert first.headers["Cache-Control"] == "no-store"

    second = device.client.post(
        "/auth/mfa/verify", json={"mfa_token": first.json["mfa_token"], "code": authenticator.code(0)}
    )
    assert second.status_code == 200, second.json
    assert set(second.json) == {"access_token", "token_type", "user_id", "expires_in", "csrf_token"}
    assert second.headers["Cache-Control"] == "no-store"
    cookies = second.headers.getlist("Set-Cookie")
    assert any(c.startswith("refresh_token=") and "HttpOnly" in c for c in cookies)
    assert any(c.startswith("trikchi_device=") for c in cookies)
    device._remember(second)
    assert device.me().status_code == 200
    assert device.refresh().status_code == 200
    with app.app_context():
        methods = [e.details["method"] for e in events(app, "login_succeeded")]
        sessions = db.session.scalars(select(AuthSession.auth_method).order_by(AuthSession.created_at)).all()
    assert methods[-1] == "totp" and sessions[-1] == "totp"


def test_a_wrong_password_still_gets_the_generic_401_with_totp_on(app, auth):
    auth.signup()
    enrol(auth)
    response = auth.client.post(
        "/auth/login", json={"email": "ada@example.com", "password": "wrong password"}
    )
    assert response.status_code == 401 and response.json["error"] == "invalid_credentials"
    assert "mfa_token" not in response.json


def test_a_totp_code_is_accepted_once(app, auth, make_auth):
    auth.signup()
    authenticator, _codes = enrol(auth)
    code = authenticator.code(0)
    device = make_auth()
    token = password_step(device.client).json["mfa_token"]
    assert device.client.post("/auth/mfa/verify", json={"mfa_token": token, "code": code}).status_code == 200
    other = make_auth()
    token = password_step(other.client).json["mfa_token"]
    replay = other.client.post("/auth/mfa/verify", json={"mfa_token": token, "code": code})
    assert replay.status_code == 401 and replay.json["error"] == "invalid_mfa_code"
    # An older code (the previous step) is refused too once a newer one was used.
    older = other.client.post("/auth/mfa/verify", json={"mfa_token": token, "code": authenticator.code(-1)})
    assert older.status_code == 401 and older.json["error"] == "invalid_mfa_code"
    # The next step's code works (the same mfa_token survives wrong codes).
    later = other.client.post("/auth/mfa/verify", json={"mfa_token": token, "code": authenticator.code(1)})
    assert later.status_code == 200, later.json
    failed = events(app, "mfa_challenge_failed")
    assert [e.details["reason"] for e in failed] == ["wrong_code", "wrong_code"]
    for event in failed:  # never a code in the audit log
        assert code not in str(event.details) and authenticator.code(-1) not in str(event.details)


def test_recovery_codes_work_once_each(app, auth, make_auth):
    auth.signup()
    _authenticator, codes = enrol(auth)
    device = make_auth()
    token = password_step(device.client).json["mfa_token"]
    used = codes[3].upper().replace("-", " ")  # typed loosely: case, spaces
    response = device.client.post("/auth/mfa/verify", json={"mfa_token": token, "recovery_code": used})
    assert response.status_code == 200, response.json
    assert events(app, "login_succeeded")[-1].details == {"method": "recovery_code"}
    again = make_auth()
    token = password_step(again.client).json["mfa_token"]
    replay = again.client.post("/auth/mfa/verify", json={"mfa_token": token, "recovery_code": codes[3]})
    assert replay.status_code == 401 and replay.json["error"] == "invalid_mfa_code"
    assert auth.client.get("/auth/mfa", headers=auth.headers()).json["recovery_codes_left"] == 9
    with app.app_context():
        hashes = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert not any(code.replace("-", "") in h or code in h for code in codes for h in hashes)


def test_the_mfa_token_dies_after_five_wrong_codes(app, auth, make_auth):
    auth.signup()
    authenticator, _codes = enrol(auth)
    device = make_auth()
    token = password_step(device.client).json["mfa_token"]
    for _ in range(5):
        wrong = device.client.post("/auth/mfa/verify", json={"mfa_token": token, "code": "000000"})
        assert wrong.status_code == 401 and wrong.json["error"] == "invalid_mfa_code"
    dead = device.client.post("/auth/mfa/verify", json={"mfa_token": token, "code": authenticator.code(0)})
    assert dead.status_code == 401 and dead.json["error"] == "mfa_token_invalid"
    assert "Set-Cookie" not in dead.headers
    # The right code was not spent by the refused attempt: a new sign-in can use it.
    token = password_step(device.client).json["mfa_token"]
    fresh = device.client.post("/auth/mfa/verify", json={"mfa_token": token, "code": authenticator.code(0)})
    assert fresh.status_code == 200, fresh.json


def test_the_mfa_token_works_once(app, auth, make_auth):
    auth.signup()
    authenticator, codes = enrol(auth)
    device = make_auth()
    token = password_step(device.client).json["mfa_token"]
    assert (
        device.client.post(
            "/auth/mfa/verify", json={"mfa_token": token, "code": authenticator.code(0)}
        ).status_code
        == 200
    )
    reused = device.client.post("/auth/mfa/verify", json={"mfa_token": token, "recovery_code": codes[0]})
    assert reused.status_code == 401 and reused.json["error"] == "mfa_token_invalid"
    # ... and the recovery code offered with it is still unused.
    assert auth.client.get("/auth/mfa", headers=auth.headers()).json["recovery_codes_left"] == 10


def test_the_mfa_token_expires_after_five_minutes(app, auth, make_auth):
    auth.signup()
    authenticator, _codes = enrol(auth)
    device = make_auth()
    token = password_step(device.client).json["mfa_token"]
    with app.app_context():
        challenge = db.session.scalar(select(MfaChallenge))
        assert timedelta(seconds=299) <= challenge.expires_at - challenge.created_at <= timedelta(seconds=300)
        assert challenge.token_hash != token  # stored hashed
        db.session.execute(update(MfaChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    late = device.client.post("/auth/mfa/verify", json={"mfa_token": token, "code": authenticator.code(0)})
    assert late.status_code == 401 and late.json["error"] == "mfa_token_invalid"
    unknown = device.client.post(
        "/auth/mfa/verify", json={"mfa_token": "made-up", "code": authenticator.code(0)}
    )
    assert unknown.status_code == 401 and unknown.json["error"] == "mfa_token_invalid"


@pytest.mark.parametrize(
    "body",
    [
        {"mfa_token": "t"},
        {"mfa_token": "t", "code": "123456", "recovery_code": "abcd-efgh"},
        {"code": "123456"},
        {"mfa_token": "t", "code": "12"},
    ],
)
def test_verify_needs_the_token_and_exactly_one_code(client, body):
    response = client.post("/auth/mfa/verify", json=body)
    assert response.status_code == 422 and response.json["error"] == "validation_failed"


def test_wrong_codes_are_limited_per_account(database_url):
    app = make_app(database_url, RATELIMIT_MFA_FAILURES_PER_ACCOUNT="3 per minute")
    from tests.conftest import AuthActions

    auth = AuthActions(app.test_client())
    auth.signup()
    authenticator, _codes = enrol(auth)
    for _ in range(3):
        token = password_step(app.test_client()).json["mfa_token"]
        assert (
            app.test_client()
            .post("/auth/mfa/verify", json={"mfa_token": token, "code": "000000"})
            .status_code
            == 401
        )
    token = password_step(app.test_client()).json["mfa_token"]
    limited = app.test_client().post(
        "/auth/mfa/verify", json={"mfa_token": token, "code": authenticator.code(0)}
    )
    assert limited.status_code == 429 and limited.json["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    with app.app_context():
        db.engine.dispose()


def test_wrong_codes_are_limited_per_ip(database_url):
    app = make_app(database_url, RATELIMIT_MFA_FAILURES_PER_IP="2 per minute")
    client = app.test_client()
    for _ in range(2):
        assert client.post("/auth/mfa/verify", json={"mfa_token": "x", "code": "000000"}).status_code == 401
    limited = client.post("/auth/mfa/verify", json={"mfa_token": "x", "code": "000000"})
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    with app.app_context():
        db.engine.dispose()


def test_confirm_refuses_a_wrong_code_and_stays_off(app, auth):
    auth.signup()
    auth.client.post("/auth/mfa/totp/setup", headers=auth.headers())
    response = auth.client.post("/auth/mfa/totp/confirm", json={"code": "000000"}, headers=auth.headers())
    assert response.status_code == 422 and response.json["error"] == "invalid_mfa_code"
    assert "code" in response.json["errors"]
    assert auth.client.get("/auth/mfa", headers=auth.headers()).json["totp"] is False
    assert (
        auth.client.post(
            "/auth/mfa/totp/confirm", json={"code": "123456"}, headers=auth.headers()
        ).status_code
        == 422
    )


def test_confirm_without_setup_and_setup_twice(app, auth):
    auth.signup()
    no_setup = auth.client.post("/auth/mfa/totp/confirm", json={"code": "123456"}, headers=auth.headers())
    assert no_setup.status_code == 409 and no_setup.json["error"] == "totp_setup_required"
    enrol(auth)
    again = auth.client.post("/auth/mfa/totp/setup", headers=auth.headers())
    assert again.status_code == 409 and again.json["error"] == "totp_already_enabled"


def test_disable_with_a_code_makes_sign_in_one_step_again(app, auth, make_auth):
    auth.signup()
    authenticator, codes = enrol(auth)
    wrong = auth.client.delete("/auth/mfa/totp", json={"code": "000000"}, headers=auth.headers())
    assert wrong.status_code == 422 and wrong.json["error"] == "invalid_mfa_code"
    response = auth.client.delete(
        "/auth/mfa/totp", json={"code": authenticator.code(0)}, headers=auth.headers()
    )
    assert response.status_code == 204
    assert auth.client.get("/auth/mfa", headers=auth.headers()).json == {
        "totp": False,
        "recovery_codes_left": 0,
        "passkeys": 0,
    }
    assert "access_token" in password_step(make_auth().client).json
    assert len(events(app, "mfa_totp_disabled")) == 1
    with app.app_context():
        assert db.session.scalar(select(RecoveryCode)) is None
    off = auth.client.delete("/auth/mfa/totp", json={"code": codes[0]}, headers=auth.headers())
    assert off.status_code == 409 and off.json["error"] == "totp_not_enabled"


def test_disable_also_takes_a_recovery_code(app, auth):
    auth.signup()
    _authenticator, codes = enrol(auth)
    response = auth.client.delete("/auth/mfa/totp", json={"code": codes[0]}, headers=auth.headers())
    assert response.status_code == 204
    assert events(app, "mfa_totp_disabled")[0].details == {"method": "recovery_code"}


def test_new_recovery_codes_kill_the_old_set(app, auth, make_auth):
    auth.signup()
    _authenticator, old = enrol(auth)
    response = auth.client.post("/auth/mfa/recovery_codes", headers=auth.headers())
    assert response.status_code == 200
    new = response.json["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    device = make_auth()
    token = password_step(device.client).json["mfa_token"]
    dead = device.client.post("/auth/mfa/verify", json={"mfa_token": token, "recovery_code": old[0]})
    assert dead.status_code == 401
    ok = device.client.post("/auth/mfa/verify", json={"mfa_token": token, "recovery_code": new[0]})
    assert ok.status_code == 200
    assert len(events(app, "mfa_recovery_codes_regenerated")) == 1


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/auth/mfa/totp/setup", None),
        ("delete", "/auth/mfa/totp", {"code": "123456"}),
        ("post", "/auth/mfa/recovery_codes", None),
    ],
)
def test_sensitive_operations_need_a_fresh_sign_in(app, auth, method, path, body):
    auth.signup()
    authenticator, _codes = enrol(auth)
    age_sign_in(app, app.config["FRESH_SIGNIN_SECONDS"] + 5)
    assert auth.refresh().status_code == 200
    if body is not None:
        body = {"code": authenticator.code(0)}
    response = getattr(auth.client, method)(path, json=body, headers=auth.headers())
    assert response.status_code == 401 and response.json["error"] == "fresh_signin_required"
    assert auth.client.get("/auth/mfa", headers=auth.headers()).json["totp"] is True


def test_reauthenticate_needs_a_code_when_totp_is_on(app, auth):
    auth.signup()
    authenticator, codes = enrol(auth)
    age_sign_in(app, 3600)
    assert auth.refresh().status_code == 200
    url = "/auth/reauthenticate"
    missing = auth.client.post(url, json={"password": PASSWORD}, headers=auth.headers())
    assert missing.status_code == 422 and "code" in missing.json["errors"]
    wrong = auth.client.post(url, json={"password": PASSWORD, "code": "000000"}, headers=auth.headers())
    assert wrong.status_code == 401 and wrong.json["error"] == "invalid_mfa_code"
    right = auth.client.post(
        url, json={"password": PASSWORD, "code": authenticator.code(0)}, headers=auth.headers()
    )
    assert right.status_code == 200, right.json
    auth._remember(right)
    assert auth.client.post("/auth/mfa/recovery_codes", headers=auth.headers()).status_code == 200
    assert events(app, "reauthenticated")[-1].details == {"method": "totp"}


def test_a_deleted_user_takes_their_second_factor_with_them(app, auth):
    auth.signup()
    enrol(auth)
    password_step(auth.client)
    with app.app_context():
        from sqlalchemy import delete, func

        from trikchi.auth.models import User

        db.session.execute(delete(User))
        db.session.commit()
        for model in (TotpCredential, RecoveryCode, MfaChallenge):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0


def test_after_a_secret_key_change_recovery_codes_still_sign_in(database_url):
    from tests.conftest import AuthActions

    before = make_app(database_url, SECRET_KEY="the first secret key " + "x" * 20)
    auth = AuthActions(before.test_client())
    auth.signup()
    authenticator, codes = enrol(auth)
    with before.app_context():
        db.engine.dispose()
    after = make_app(database_url, SECRET_KEY="the second secret key " + "y" * 20)
    client = after.test_client()
    token = password_step(client).json["mfa_token"]
    # The stored secret no longer decrypts: no TOTP code matches ...
    refused = client.post("/auth/mfa/verify", json={"mfa_token": token, "code": authenticator.code(1)})
    assert refused.status_code == 401 and refused.json["error"] == "invalid_mfa_code"
    # ... but a recovery code (a plain digest) still signs in.
    response = client.post("/auth/mfa/verify", json={"mfa_token": token, "recovery_code": codes[0]})
    assert response.status_code == 200, response.json
    with after.app_context():
        db.engine.dispose()
