"""Forged, expired and confused tokens are all 401 in the common error shape."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from trikchi.auth.models import User
from trikchi.extensions import db


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(app, token: str) -> dict:
    return jwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])


def assert_401(response) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.is_json
    assert response.json["code"] == 401 and isinstance(response.json["message"], str)
    assert "msg" not in response.json


def test_alg_none_is_rejected(app, auth):
    auth.signup()
    claims = claims_of(app, auth.access_token)
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert_401(auth.me(forged))


def test_wrong_key_is_rejected(app, auth):
    auth.signup()
    forged = jwt.encode(claims_of(app, auth.access_token), "x" * 64, algorithm="HS256")
    assert_401(auth.me(forged))


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_algorithm_with_the_right_key_is_rejected(app, auth, algorithm):
    auth.signup()
    forged = jwt.encode(claims_of(app, auth.access_token), app.config["JWT_SECRET_KEY"], algorithm=algorithm)
    assert_401(auth.me(forged))


def test_tampered_payload_is_rejected(app, auth):
    auth.signup()
    header, _payload, signature = auth.access_token.split(".")
    claims = claims_of(app, auth.access_token)
    claims["role"] = "admin"
    assert_401(auth.me(f"{header}.{b64(claims)}.{signature}"))


def test_expired_token_is_rejected(app, auth):
    auth.signup()
    claims = claims_of(app, auth.access_token)
    now = int(time.time())
    claims.update(iat=now - 3600, nbf=now - 3600, exp=now - 60)  # past the 5 s leeway
    expired = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    response = auth.me(expired)
    assert_401(response)
    assert "expired" in response.json["message"]


def test_garbage_and_malformed_headers_are_401(client):
    for value in ("Bearer", "Bearer not.a.jwt", "Basic abc", "Bearer a b", "token"):
        assert_401(client.get("/auth/me", headers={"Authorization": value}))


def test_refresh_token_as_access_token_is_rejected(auth):
    auth.signup()
    assert_401(auth.me(auth.refresh_cookie()))


def test_access_token_as_refresh_token_is_rejected(client, auth):
    auth.signup()
    csrf = auth.csrf_cookie()
    client.set_cookie("refresh_token", auth.access_token)
    assert_401(auth.refresh(csrf=csrf))


def test_token_of_a_deleted_user_is_rejected(app, auth):
    auth.signup()
    with app.app_context():
        db.session.delete(db.session.get(User, 1))
        db.session.commit()
    assert_401(auth.me())
    assert_401(auth.refresh())


def test_token_of_a_disabled_user_is_rejected_and_login_fails(app, auth):
    auth.signup()
    with app.app_context():
        db.session.get(User, 1).is_active = False
        db.session.commit()
    assert_401(auth.me())
    assert_401(auth.refresh())
    disabled = auth.login()
    unknown = auth.login(email="nobody@example.com")
    assert disabled.status_code == 401 and disabled.get_data() == unknown.get_data()


def test_token_with_integer_sub_is_rejected(app, auth):
    auth.signup()
    claims = claims_of(app, auth.access_token)
    claims["sub"] = 1
    forged = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert_401(auth.me(forged))


# --- Required claims: a validly signed token that trikchi could not have minted is refused.

MISSING = object()
ACCESS_CLAIM_DEFECTS = [
    ("exp", MISSING),
    ("exp", "9999999999"),
    ("exp", 9999999999.5),
    ("exp", True),
    ("iat", MISSING),
    ("iat", "1"),
    ("nbf", MISSING),
    ("nbf", None),
    ("jti", MISSING),
    ("jti", 7),
    ("jti", ""),
    ("type", MISSING),
    ("type", "id"),
    ("sub", MISSING),
    ("sub", "4" * 400),
    ("sub", "99999999999"),
    ("sub", "0"),
    ("sub", "-1"),
    ("sub", "01"),
    ("sub", " 1"),
    ("sub", ["1"]),
    ("sid", MISSING),
    ("sid", 1),
    ("role", MISSING),
    ("role", {"admin": True}),
]


def forge(app, claims: dict, name: str, value) -> str:
    claims = dict(claims)
    if value is MISSING:
        claims.pop(name, None)
    else:
        claims[name] = value
    return jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")


@pytest.mark.parametrize(("name", "value"), ACCESS_CLAIM_DEFECTS, ids=lambda v: repr(v)[:20])
def test_access_token_with_a_missing_or_mistyped_claim_is_401(app, auth, name, value):
    auth.signup()
    response = auth.me(forge(app, claims_of(app, auth.access_token), name, value))
    assert_401(response)
    assert response.json["error"] == "token_invalid"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("exp", MISSING),
        ("exp", "9999999999"),
        ("jti", MISSING),
        ("sid", MISSING),
        ("csrf", MISSING),
        ("sub", "4" * 400),
        ("type", MISSING),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_refresh_token_with_a_missing_or_mistyped_claim_is_401(app, client, auth, name, value):
    auth.signup()
    csrf = auth.csrf_cookie()
    claims = claims_of(app, auth.refresh_cookie())
    client.set_cookie("refresh_token", forge(app, claims, name, value))
    response = auth.refresh(csrf=csrf)
    assert_401(response)
    assert response.json["error"] == "token_invalid"


@pytest.mark.parametrize("header", ["jku", "jwk", "x5u", "x5c", "crit"])
def test_key_locating_headers_are_refused(app, auth, header):
    auth.signup()
    value = (
        {"kty": "oct", "k": "AAAA"}
        if header == "jwk"
        else ["exp"]
        if header in ("crit", "x5c")
        else "https://evil.example/keys"
    )
    forged = jwt.encode(
        claims_of(app, auth.access_token),
        app.config["JWT_SECRET_KEY"],
        algorithm="HS256",
        headers={header: value},
    )
    assert_401(auth.me(forged))


def test_untouched_token_still_works(app, auth):
    """The checks above refuse only what is wrong: a re-signed copy of a real token passes."""
    auth.signup()
    same = jwt.encode(claims_of(app, auth.access_token), app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert auth.me(same).status_code == 200


def test_error_codes_name_the_failure(app, client, auth):
    assert client.get("/auth/me").json["error"] == "authentication_required"
    auth.signup()
    assert auth.login(password="wrong password!").json["error"] == "invalid_credentials"
    assert auth.register().json["error"] == "email_taken"
    assert auth.refresh(csrf="wrong").json["error"] == "csrf_failed"
    claims = claims_of(app, auth.access_token)
    now = int(time.time())
    claims.update(iat=now - 3600, nbf=now - 3600, exp=now - 60)
    expired = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert auth.me(expired).json["error"] == "token_expired"
    old = auth.refresh_cookie()
    assert auth.logout().status_code == 200
    assert auth.me().json["error"] == "session_ended"
    client.set_cookie("refresh_token", old)
    assert auth.refresh(csrf=auth.csrf_token).json["error"] == "session_ended"


def test_refresh_tokens_minted_before_iss_existed_still_refresh(app, client, auth):
    """An upgrade signs nobody out: earlier trikchi refresh tokens carry no iss."""
    auth.signup()
    csrf = auth.csrf_cookie()
    legacy = claims_of(app, auth.refresh_cookie())
    legacy.pop("iss")
    client.set_cookie("refresh_token", jwt.encode(legacy, app.config["JWT_SECRET_KEY"], algorithm="HS256"))
    response = auth.refresh(csrf=csrf)
    assert response.status_code == 200
    assert claims_of(app, auth.refresh_cookie())["iss"] == app.config["JWT_ISSUER"]
    assert claims_of(app, response.json["access_token"])["iss"] == app.config["JWT_ISSUER"]


def test_a_refresh_token_of_another_issuer_is_refused(app, client, auth):
    auth.signup()
    csrf = auth.csrf_cookie()
    claims = claims_of(app, auth.refresh_cookie()) | {"iss": "https://elsewhere.example"}
    client.set_cookie("refresh_token", jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256"))
    assert auth.refresh(csrf=csrf).json["error"] == "token_invalid"


def test_access_tokens_without_iss_are_refused(app, auth):
    auth.signup()
    assert_401(auth.me(forge(app, claims_of(app, auth.access_token), "iss", MISSING)))


def test_a_non_ascii_csrf_header_is_csrf_failed_and_changes_nothing(app, client, auth):
    auth.signup()
    for path in ("/auth/refresh_token", "/auth/logout"):
        response = client.post(path, headers={"X-CSRF-TOKEN": "é"})
        assert response.status_code == 401 and response.json["error"] == "csrf_failed", path
    assert auth.refresh().status_code == 200  # the session is untouched


@pytest.mark.parametrize("header", ["bearer {}", "Bearer  {}", "BEARER\t{}"])
def test_the_bearer_scheme_is_case_insensitive_and_whitespace_tolerant(auth, header):
    auth.signup()
    response = auth.client.get("/auth/me", headers={"Authorization": header.format(auth.access_token)})
    assert response.status_code == 200


def test_database_errors_never_carry_the_statements_values(app):
    with app.app_context():
        assert db.engine.hide_parameters
