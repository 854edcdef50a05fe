"""Access tokens that other services verify (SPEC §7), checked from the verifier's side.

In ES256 and EdDSA modes, on SQLite and PostgreSQL:

* the JWKS holds exactly the published keys (standby, current, previous), public members only,
  and is cacheable; HS256 mode publishes none; discovery names the issuer and the JWKS;
* PyJWT (from the JWKS, and with ``PyJWKClient`` against gunicorn) and Node's ``jose``
  (``createRemoteJWKSet`` + ``jwtVerify``, an implementation nobody on the project wrote)
  verify the tokens, with ``iss`` and ``aud`` checked, and refuse a tampered one;
* forgeries are 401 at trikchi's own ``/auth/me``: unknown or retired kid, HS256 tokens (with
  the JWT secret or "signed" with the public key), algorithm confusion, ``jku``/``jwk``/``x5u``/
  ``x5c`` headers (even with a valid signature), wrong or missing ``iss``/``aud``, a refresh
  token presented as an access token, an expired token;
* a rotation signs nobody out: tokens of the previous key keep working until it is retired,
  and refreshing across the rotation hands out tokens of the new key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from flask import Flask
from sqlalchemy import select

from config import ConfigError, load_config
from tests.conftest import PASSWORD, AuthActions, make_app, require_or_skip
from tests.support.live import ROOT, LiveServer
from tests.support.postgres import free_port
from trikchi.extensions import db
from trikchi.keys import material
from trikchi.keys.models import CURRENT, PUBLISHED, SigningKey
from trikchi.keys.ring import key_ring

ISSUER = "https://auth.trikchi.test"
AUDIENCE = "trikchi.uz"
JWKS_MAX_AGE = 120
ALGORITHMS = ["ES256", "EdDSA"]
# Every JWK member that carries private (or symmetric) key material, in any key type.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "r", "t", "k"}
JWK_MEMBERS = {
    "ES256": {"kty", "crv", "x", "y", "kid", "alg", "use"},
    "EdDSA": {"kty", "crv", "x", "kid", "alg", "use"},
    "RS256": {"kty", "n", "e", "kid", "alg", "use"},
}
KEY_TYPES = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519"), "RS256": ("RSA", None)}
# RFC 7638: the required members of each key type, hashed in this (lexicographic) order.
THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]
JOSE_SCRIPT = ROOT / "tests" / "support" / "jose_verify.mjs"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(params=ALGORITHMS)
def alg(request: pytest.FixtureRequest) -> str:
    """The access token algorithm of this test run."""
    return request.param


@pytest.fixture
def app(database_url: str, alg: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The app in an asymmetric mode, with an issuer URL and an audience (read from the environment)."""
    monkeypatch.setenv("JWT_ALGORITHM", alg)
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("JWKS_MAX_AGE_SECONDS", str(JWKS_MAX_AGE))
    monkeypatch.setenv("KEYS_RELOAD_SECONDS", "1")
    app = make_app(database_url)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- helpers ----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and the claims of a token, without checking anything."""
    header, payload, _ = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload))


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT built by hand (PyJWT refuses to use a PEM public key as an HMAC secret)."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def with_header(token: str, **changes: Any) -> str:
    """The same payload and signature under a changed header (which breaks the signature)."""
    header, payload = unverified(token)
    _, encoded_payload, signature = token.split(".")
    return f"{b64url_json(header | changes)}.{encoded_payload}.{signature}"


def with_claims(token: str, **changes: Any) -> str:
    """The same header and signature over a changed payload."""
    header, claims = unverified(token)
    encoded_header, _, signature = token.split(".")
    return f"{encoded_header}.{b64url_json(claims | changes)}.{signature}"


_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def respelled_signature(token: str) -> str:
    """The same token with its signature's unused low bits set: other text, the same bytes
    (lenient decoders accept it: one token, many spellings)."""
    signed, signature = token.rsplit(".", 1)
    variant = signature[:-1] + _BASE64URL[_BASE64URL.index(signature[-1]) ^ 1]
    assert variant != signature and unb64url(variant) == unb64url(signature)
    return f"{signed}.{variant}"


def padded_signature(token: str) -> str:
    """The same token with the signature's base64 padding written out (PyJWT accepts it)."""
    signed, signature = token.rsplit(".", 1)
    assert len(signature) % 4
    return f"{signed}.{signature}{'=' * (-len(signature) % 4)}"


def public_pem(private: material.PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def self_signed_certificate(private: material.PrivateKey) -> str:
    """A base64 DER certificate for the key (an ``x5c`` entry)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trikchi.uz")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(private, None if isinstance(private, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def private_bytes(private: material.PrivateKey) -> bytes:
    """The secret scalar of a key, which must never leave the database unencrypted."""
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.private_numbers().private_value.to_bytes(32, "big")
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.private_bytes_raw()
    numbers = private.private_numbers()
    return numbers.d.to_bytes((numbers.d.bit_length() + 7) // 8, "big")


def thumbprint(jwk: dict[str, Any]) -> str:
    """trikchi's kid: the RFC 7638 SHA-256 thumbprint (computed here, not by trikchi), its first
    128 bits in hex (so that a kid never starts with ``-`` on the ``flask keys`` command line)."""
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    return hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).hexdigest()[:32]


def stored_keys(app: Flask) -> dict[str, str]:
    """kid -> state of every key in the database."""
    with app.app_context():
        rows = db.session.execute(select(SigningKey.kid, SigningKey.state)).all()
        db.session.remove()
    return {kid: state for kid, state in rows}


def published_kids(app: Flask) -> set[str]:
    return {kid for kid, state in stored_keys(app).items() if state in PUBLISHED}


def private_key(app: Flask, kid: str | None = None) -> tuple[str, material.PrivateKey]:
    """The real private key ``kid`` (default: the current one), decrypted in-process."""
    with app.app_context():
        query = select(SigningKey)
        query = query.where(SigningKey.kid == kid) if kid else query.where(SigningKey.state == CURRENT)
        row = db.session.scalar(query)
        assert row is not None
        result = row.kid, material.decrypt(row.private_key_encrypted, app.config["SIGNING_KEYS_SECRET"])
        db.session.remove()
    return result


def reload_keys(app: Flask) -> None:
    """What every worker does within KEYS_RELOAD_SECONDS, now."""
    with app.app_context():
        key_ring(app).reload()


def keys_command(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["keys", *args])
    assert result.exit_code == 0, result.output
    return result.output


def assert_refused(response, error: str = "token_invalid") -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == 401 and body["status"] == "Unauthorized"
    assert body["error"] == error, body


def check_public_jwk(jwk: dict[str, Any], alg: str) -> None:
    assert set(jwk) == JWK_MEMBERS[alg], jwk
    assert not PRIVATE_MEMBERS & set(jwk)
    kty, crv = KEY_TYPES[alg]
    assert jwk["kty"] == kty and jwk.get("crv") == crv
    assert jwk["alg"] == alg and jwk["use"] == "sig"
    assert jwk["kid"] == thumbprint(jwk)
    # A usable public key for a verifier.
    assert jwt.PyJWK.from_dict(jwk).algorithm_name == alg


# --- JWKS and discovery -----------------------------------------------------------------------


def test_jwks_publishes_exactly_the_standby_current_and_previous_public_keys(app, client, alg):
    first = client.get("/.well-known/jwks.json")  # the first request creates the first current key
    assert first.status_code == 200
    assert first.mimetype == "application/json"
    assert first.headers["Cache-Control"] == f"public, max-age={JWKS_MAX_AGE}"
    assert [key["kid"] for key in first.json["keys"]] == list(published_kids(app))
    check_public_jwk(first.json["keys"][0], alg)
    first_kid = first.json["keys"][0]["kid"]

    keys_command(app, "add")  # standby
    keys_command(app, "rotate", "--force")  # standby -> current, first -> previous
    keys_command(app, "add")  # a new standby
    reload_keys(app)
    states = stored_keys(app)
    assert sorted(states.values()) == ["current", "previous", "standby"]
    response = client.get("/.well-known/jwks.json")
    keys = response.json["keys"]
    assert {key["kid"] for key in keys} == set(states) and len(keys) == 3
    for key in keys:
        check_public_jwk(key, alg)
    for kid in states:
        assert private_bytes(private_key(app, kid)[1]) not in response.data
        assert b64url(private_bytes(private_key(app, kid)[1])).encode() not in response.data

    keys_command(app, "retire", "--force", "--", first_kid)  # a kid may start with "-"
    reload_keys(app)
    keys = client.get("/.well-known/jwks.json").json["keys"]
    assert {key["kid"] for key in keys} == published_kids(app) == set(states) - {first_kid}


def test_discovery_names_the_issuer_and_the_jwks(app, client, alg):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == f"public, max-age={JWKS_MAX_AGE}"
    document = response.json
    assert document["issuer"] == ISSUER
    assert document["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
    assert document["id_token_signing_alg_values_supported"] == [alg]


def test_hs256_mode_publishes_no_keys(database_url, monkeypatch):
    monkeypatch.delenv("JWT_ALGORITHM", raising=False)
    monkeypatch.delenv("JWT_ISSUER", raising=False)
    app = make_app(database_url)
    try:
        client = app.test_client()
        response = client.get("/.well-known/jwks.json")
        assert response.status_code == 200
        assert response.json == {"keys": []}
        assert response.headers["Cache-Control"] == "public, max-age=600"
        # Not a URL and no PUBLIC_URL: the JWKS is named by its path, never by the Host header.
        document = client.get("/.well-known/openid-configuration").json
        assert document["issuer"] == "trikchi"
        assert document["jwks_uri"] == "/.well-known/jwks.json"
        auth = AuthActions(client)
        header, claims = unverified(auth.signup().json["access_token"])
        assert header == {"alg": "HS256", "typ": "JWT"}
        assert claims["iss"] == "trikchi" and "aud" not in claims
        assert stored_keys(app) == {}
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://auth.trikchi.test/", "https://auth.trikchi.test/.well-known/jwks.json"),
        (None, "/.well-known/jwks.json"),
    ],
)
def test_a_non_url_issuer_names_the_jwks_by_the_configured_address_whatever_the_host(
    database_url, monkeypatch, public_url, expected
):
    monkeypatch.setenv("JWT_ALGORITHM", "ES256")
    monkeypatch.setenv("JWT_ISSUER", "trikchi-auth")
    if public_url:
        monkeypatch.setenv("PUBLIC_URL", public_url)
    else:
        monkeypatch.delenv("PUBLIC_URL", raising=False)
    app = make_app(database_url)
    try:
        client = app.test_client()
        for headers in (
            {},
            {"Host": "evil.example"},
            {"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        ):
            response = client.get("/.well-known/openid-configuration", headers=headers)
            assert response.json == {
                "issuer": "trikchi-auth",
                "jwks_uri": expected,
                "id_token_signing_alg_values_supported": ["ES256"],
            }
            assert response.headers["Cache-Control"] == "public, max-age=600"
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("value", ["auth.trikchi.test", "ftp://auth.trikchi.test", "https://a.test/?x=1"])
def test_a_public_url_that_is_no_http_url_is_refused_at_start(monkeypatch, value):
    monkeypatch.setenv("PUBLIC_URL", value)
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        load_config("testing")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_rs256_keys_publish_n_and_e_only(database_url, monkeypatch, backend):
    monkeypatch.setenv("JWT_ALGORITHM", "RS256")
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    app = make_app(database_url)
    try:
        client = app.test_client()
        token = AuthActions(client).signup().json["access_token"]
        response = client.get("/.well-known/jwks.json")
        (jwk,) = response.json["keys"]
        check_public_jwk(jwk, "RS256")
        kid, private = private_key(app)
        assert jwk["kid"] == kid and b64url(private_bytes(private)).encode() not in response.data
        claims = jwt.decode(token, jwt.PyJWK.from_dict(jwk), algorithms=["RS256"], issuer=ISSUER)
        assert claims["type"] == "access"
    finally:
        with app.app_context():
            db.engine.dispose()


# --- PyJWT, in-process ------------------------------------------------------------------------


def test_pyjwt_verifies_access_tokens_with_the_published_key(app, client, auth, alg):
    login = auth.signup()
    token = login.json["access_token"]
    header, _ = unverified(token)
    assert header == {"alg": alg, "typ": "JWT", "kid": header["kid"]}
    assert stored_keys(app)[header["kid"]] == CURRENT

    key = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json)[header["kid"]]
    claims = jwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        issuer=ISSUER,
        audience=AUDIENCE,
        options={"require": REQUIRED_CLAIMS},
    )
    assert claims["sub"] == str(login.json["user_id"])
    assert claims["type"] == "access" and claims["role"] == "customer"
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE

    decode = lambda token, **kw: jwt.decode(  # noqa: E731
        token, key, algorithms=[alg], **({"issuer": ISSUER, "audience": AUDIENCE} | kw)
    )
    with pytest.raises(jwt.InvalidAudienceError):
        decode(token, audience="payments.trikchi.uz")
    with pytest.raises(jwt.InvalidIssuerError):
        decode(token, issuer="https://evil.example")
    with pytest.raises(jwt.InvalidSignatureError):
        decode(with_claims(token, sub="1", role="admin"))

    # The refresh token is HS256 under JWT_SECRET_KEY: no published key verifies it.
    refresh_header, _ = unverified(auth.refresh_cookie())
    assert refresh_header == {"alg": "HS256", "typ": "JWT"}
    jwt.decode(auth.refresh_cookie(), app.config["JWT_SECRET_KEY"], algorithms=["HS256"], audience=AUDIENCE)


# --- forgeries at trikchi's own /auth/me ------------------------------------------------------


@dataclass
class Forge:
    """A valid access token and everything an attacker (or this test) can sign with."""

    token: str
    claims: dict[str, Any]
    kid: str
    alg: str
    private: material.PrivateKey  # the real current key (decrypted in-process)
    attacker: material.PrivateKey  # a key of the same type that trikchi never published
    jwt_secret: str

    def sign(
        self,
        claims: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        key: Any = None,
        alg: str | None = None,
    ) -> str:
        """A token signed for real: by default the same claims, the real key and its kid."""
        return jwt.encode(
            self.claims if claims is None else claims,
            self.private if key is None else key,
            algorithm=alg or self.alg,
            headers={"kid": self.kid} if headers is None else headers,
        )

    def attacker_jwk(self) -> dict[str, Any]:
        jwk = material.public_jwk(self.attacker, self.alg)
        return jwk | {"kid": thumbprint(jwk), "alg": self.alg, "use": "sig"}

    def without(self, *names: str) -> dict[str, Any]:
        return {name: value for name, value in self.claims.items() if name not in names}


OTHER_ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256", "HS256", "none"]

FORGERIES: dict[str, Callable[[Forge], str]] = {
    # The kid
    "unknown kid, signed by a key of its own": lambda f: f.sign(
        key=f.attacker, headers={"kid": f.attacker_jwk()["kid"]}
    ),
    "unknown kid on a valid signature of the real key": lambda f: f.sign(headers={"kid": "k" + f.kid}),
    "empty kid": lambda f: f.sign(headers={"kid": ""}),
    "no kid, signed by the real key": lambda f: f.sign(headers={}),
    # HS256 in an asymmetric mode
    "HS256 with the current kid, signed with JWT_SECRET_KEY": lambda f: f.sign(key=f.jwt_secret, alg="HS256"),
    "HS256 without kid, signed with JWT_SECRET_KEY (an HS256-mode access token)": lambda f: f.sign(
        key=f.jwt_secret, alg="HS256", headers={}
    ),
    "HS256 without kid, signed with the public key PEM": lambda f: hmac_token(
        {"alg": "HS256", "typ": "JWT"}, f.claims, public_pem(f.private)
    ),
    "HS256 with the current kid, signed with the public key PEM": lambda f: hmac_token(
        {"alg": "HS256", "typ": "JWT", "kid": f.kid}, f.claims, public_pem(f.private)
    ),
    "HS256 without kid, signed with the public JWK JSON": lambda f: hmac_token(
        {"alg": "HS256", "typ": "JWT"},
        f.claims,
        json.dumps(material.public_jwk(f.private, f.alg), separators=(",", ":")).encode(),
    ),
    "alg none with the current kid": lambda f: (
        f"{b64url_json({'alg': 'none', 'kid': f.kid})}.{b64url_json(f.claims)}."
    ),
    "alg none without kid": lambda f: (
        f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(f.claims)}."
    ),
    "signature stripped": lambda f: f.token.rsplit(".", 1)[0] + ".",
    # Algorithm confusion: the real kid under another algorithm
    **{
        f"alg confusion: the kid's key under {other}": (
            lambda f, other=other: (
                with_header(f.token, alg=other) if other != f.alg else with_header(f.token, alg="ES512")
            )
        )
        for other in OTHER_ALGORITHMS
    },
    # Key-locating headers, with a valid signature of the real key and its kid...
    "jku header on a valid token": lambda f: f.sign(
        headers={"kid": f.kid, "jku": "https://evil.example/jwks.json"}
    ),
    "jwk header on a valid token": lambda f: f.sign(headers={"kid": f.kid, "jwk": f.attacker_jwk()}),
    "x5u header on a valid token": lambda f: f.sign(
        headers={"kid": f.kid, "x5u": "https://evil.example/c.pem"}
    ),
    "x5c header on a valid token": lambda f: f.sign(
        headers={"kid": f.kid, "x5c": [self_signed_certificate(f.private)]}
    ),
    "x5t header on a valid token": lambda f: f.sign(headers={"kid": f.kid, "x5t": b64url(b"0" * 20)}),
    "crit header on a valid token": lambda f: f.sign(headers={"kid": f.kid, "crit": ["exp"], "exp": 1}),
    # ... and signed by the key they point at.
    "jwk header carrying the attacker's key, no kid": lambda f: f.sign(
        key=f.attacker, headers={"jwk": f.attacker_jwk()}
    ),
    "jwk header carrying the attacker's key, real kid": lambda f: f.sign(
        key=f.attacker, headers={"kid": f.kid, "jwk": f.attacker_jwk()}
    ),
    "jku header pointing at the attacker's JWKS": lambda f: f.sign(
        key=f.attacker, headers={"kid": f.attacker_jwk()["kid"], "jku": "http://127.0.0.1:9/jwks.json"}
    ),
    "x5u header pointing at the attacker's certificate": lambda f: f.sign(
        key=f.attacker, headers={"x5u": "http://127.0.0.1:9/cert.pem"}
    ),
    "x5c header carrying the attacker's certificate": lambda f: f.sign(
        key=f.attacker, headers={"x5c": [self_signed_certificate(f.attacker)]}
    ),
    # Claims, with a valid signature of the real key
    "wrong iss": lambda f: f.sign(f.claims | {"iss": "https://evil.example"}),
    "iss of the default issuer": lambda f: f.sign(f.claims | {"iss": "trikchi"}),
    "missing iss": lambda f: f.sign(f.without("iss")),
    "wrong aud": lambda f: f.sign(f.claims | {"aud": "payments.trikchi.uz"}),
    "aud list without ours": lambda f: f.sign(f.claims | {"aud": ["payments.trikchi.uz", "x"]}),
    "missing aud": lambda f: f.sign(f.without("aud")),
    "type refresh": lambda f: f.sign(f.claims | {"type": "refresh", "csrf": "x"}),
    "missing type": lambda f: f.sign(f.without("type")),
    "not yet valid": lambda f: f.sign(f.claims | {"nbf": f.claims["nbf"] + 3600}),
    # Encoding: one token spelled another way, or not base64url at all (RFC 7515 §2, §7.1)
    "signature with other unused bits": lambda f: respelled_signature(f.token),
    "signature with base64 padding": lambda f: padded_signature(f.token),
    "standard-base64 character in the payload": lambda f: f.token.replace(".", ".+", 1),
    "non-ASCII character": lambda f: f.token + "\u00e9",
    # Tampering
    "payload modified (role admin)": lambda f: with_claims(f.token, role="admin"),
    "payload modified (another sub)": lambda f: with_claims(f.token, sub=str(int(f.claims["sub"]) + 1)),
    "signature of another token": lambda f: (
        f.token.rsplit(".", 1)[0] + "." + f.sign(f.claims | {"jti": "other"}).rsplit(".", 1)[1]
    ),
}


@pytest.fixture
def forge(app: Flask, auth: AuthActions, alg: str) -> Forge:
    token = auth.signup().json["access_token"]
    kid, private = private_key(app)
    header, claims = unverified(token)
    assert header["kid"] == kid
    return Forge(token, claims, kid, alg, private, material.generate(alg), app.config["JWT_SECRET_KEY"])


def test_the_forging_harness_makes_tokens_trikchi_accepts(forge, auth):
    """Control: re-signing the same claims with the real key and kid is accepted, so the
    refusals below are the checks' doing, not a broken harness."""
    assert auth.me(forge.token).status_code == 200
    assert auth.me(forge.sign()).status_code == 200
    assert auth.me(forge.sign(forge.claims | {"jti": "another"})).status_code == 200


def test_forgeries_are_refused_at_auth_me(forge, auth):
    accepted = {}
    for name, build in FORGERIES.items():
        response = auth.me(build(forge))
        body = response.get_json(silent=True) or {}
        if (response.status_code, body.get("error")) != (401, "token_invalid"):
            accepted[name] = (response.status_code, response.get_data(as_text=True))
    assert not accepted, "not refused as 401 token_invalid:\n" + "\n".join(
        f"{name}: {status} {body}" for name, (status, body) in accepted.items()
    )
    assert auth.me(forge.token).status_code == 200  # the user and the session are fine


def test_a_deeply_nested_token_is_token_invalid_not_a_500(auth):
    header = b64url_json({"alg": "HS256", "typ": "JWT"})
    deep = b64url(b"[" * 1000)  # a 1.4 kB token
    for token in (f"{header}.{deep}.c2ln", f"{deep}.{header}.c2ln"):
        assert_refused(auth.me(token))
        # The refresh cookie too (flask-jwt-extended / PyJWT let json's RecursionError through).
        auth.client.set_cookie("refresh_token", token)
        assert_refused(auth.refresh(csrf="anything"))
        assert auth.logout(csrf="anything").status_code == 200  # nothing to revoke, cookies cleared


def test_an_expired_token_of_the_real_key_is_token_expired(forge, auth):
    past = forge.claims["iat"] - 3600
    assert_refused(
        auth.me(forge.sign(forge.claims | {"iat": past, "nbf": past, "exp": past + 60})), "token_expired"
    )


def test_a_refresh_token_is_not_an_access_token(forge, auth):
    refresh = auth.refresh_cookie()
    assert refresh and unverified(refresh)[0]["alg"] == "HS256"
    assert_refused(auth.me(refresh))
    assert_refused(auth.client.get("/auth/sessions", headers=auth.headers(refresh)))
    # Nor is a refresh token re-signed with the real asymmetric key.
    _, refresh_claims = unverified(refresh)
    assert_refused(auth.me(forge.sign(refresh_claims)))


def test_a_token_from_another_trikchi_is_refused(forge, auth, tmp_path, monkeypatch, alg):
    """Another deployment with the same issuer and audience but its own keys."""
    other = make_app(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with other.app_context():
            db.create_all()
        foreign = AuthActions(other.test_client()).signup().json["access_token"]
        assert unverified(foreign)[1]["iss"] == ISSUER
        assert unverified(foreign)[0]["kid"] != forge.kid
        assert_refused(auth.me(foreign))
    finally:
        with other.app_context():
            db.engine.dispose()


# --- rotation ---------------------------------------------------------------------------------


def test_rotation_keeps_everyone_signed_in_and_retirement_ends_the_old_key(app, client, auth, alg):
    old = auth.signup().json["access_token"]
    old_kid = unverified(old)[0]["kid"]

    keys_command(app, "add")
    assert auth.me(old).status_code == 200
    keys_command(app, "rotate", "--force")
    states = stored_keys(app)
    new_kid = next(kid for kid, state in states.items() if state == CURRENT)
    assert new_kid != old_kid and states[old_kid] == "previous"
    time.sleep(1.1)  # KEYS_RELOAD_SECONDS=1: this process follows the rotation by itself

    # Signed by the previous key: still good.
    assert auth.me(old).status_code == 200
    assert {key["kid"] for key in client.get("/.well-known/jwks.json").json["keys"]} == {old_kid, new_kid}
    # Refreshing across the rotation hands out a token of the new key.
    refreshed = auth.refresh()
    assert refreshed.status_code == 200, refreshed.json
    new = refreshed.json["access_token"]
    assert unverified(new)[0] == {"alg": alg, "typ": "JWT", "kid": new_kid}
    assert auth.me(new).status_code == 200
    login = auth.login()
    assert unverified(login.json["access_token"])[0]["kid"] == new_kid

    _, retired_private = private_key(app, old_kid)
    keys_command(app, "retire", "--force", "--", old_kid)
    reload_keys(app)
    assert stored_keys(app)[old_kid] == "retired"
    assert {key["kid"] for key in client.get("/.well-known/jwks.json").json["keys"]} == {new_kid}
    # A token the retired key signed, and a fresh one signed with it now: both refused.
    assert_refused(auth.me(old))
    _, claims = unverified(new)
    assert_refused(auth.me(jwt.encode(claims, retired_private, algorithm=alg, headers={"kid": old_kid})))

    # The new key's tokens, and the refresh flow, carry on.
    assert auth.me(new).status_code == 200
    again = auth.refresh()
    assert again.status_code == 200, again.json
    assert unverified(again.json["access_token"])[0]["kid"] == new_kid
    assert auth.me(again.json["access_token"]).status_code == 200


# --- live: PyJWKClient and jose against gunicorn ------------------------------------------------


@pytest.fixture
def live(database_url: str, alg: str, tmp_path: Path) -> Iterator[LiveServer]:
    """trikchi under gunicorn (two workers) whose issuer is its own URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": database_url,
            "JWT_ALGORITHM": alg,
            "JWT_ISSUER": url,
            "JWT_AUDIENCE": AUDIENCE,
            "SIGNING_KEYS_SECRET": "live-signing-keys-" + "k" * 32,
            "KEYS_RELOAD_SECONDS": "1",
            "RATELIMIT_STORAGE_URI": "memory://",
            "TRIKCHI_TEST_LOGDIR": str(tmp_path),
        },
        workers=2,
        port=port,
    )
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture
def jose() -> Callable[..., tuple[int, dict[str, Any]]]:
    """``jose_verify.mjs``: (exit status, its JSON output)."""
    if shutil.which("node") is None:
        require_or_skip("node not found: install Node.js 20 and npm to verify tokens with jose")
    if not (ROOT / "node_modules" / "jose" / "package.json").exists():
        require_or_skip("node_modules/jose not found: run `npm ci` (make test does)")

    def verify(token: str, jwks_uri: str, issuer: str, audience: str | None = None):
        args = ["node", str(JOSE_SCRIPT), "--jwks", jwks_uri, "--issuer", issuer]
        if audience:
            args += ["--audience", audience]
        result = subprocess.run(
            [*args, token], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        try:
            return result.returncode, json.loads(result.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"jose_verify.mjs exited {result.returncode}:\n{result.stdout}\n{result.stderr}")

    return verify


def sign_in(server: LiveServer, email: str = "ada@example.com") -> tuple[requests.Session, dict[str, Any]]:
    browser = requests.Session()
    body = {"name": "Ada", "email": email, "password": PASSWORD}
    assert browser.post(server.url + "/auth/register", json=body, timeout=30).status_code == 201
    login = browser.post(server.url + "/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    assert login.status_code == 200, login.text
    return browser, login.json()


def me(server: LiveServer, token: str) -> requests.Response:
    return requests.get(server.url + "/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.mark.slow
def test_pyjwkclient_and_jose_verify_live_tokens(live, jose, alg):
    _, login = sign_in(live)
    token = login["access_token"]
    discovery = requests.get(live.url + "/.well-known/openid-configuration", timeout=30).json()
    assert discovery["issuer"] == live.url
    jwks_uri = discovery["jwks_uri"]
    assert jwks_uri == live.url + "/.well-known/jwks.json"
    jwks = requests.get(jwks_uri, timeout=30)
    assert jwks.headers["Cache-Control"] == "public, max-age=600"
    for key in jwks.json()["keys"]:
        check_public_jwk(key, alg)

    # PyJWT, fetching the keys itself.
    client = jwt.PyJWKClient(jwks_uri, lifespan=600)
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key,
        algorithms=["ES256", "EdDSA", "RS256"],
        issuer=live.url,
        audience=AUDIENCE,
        options={"require": REQUIRED_CLAIMS},
    )
    assert claims["sub"] == str(login["user_id"]) and claims["type"] == "access"

    # jose, fetching the keys itself.
    status, result = jose(token, jwks_uri, live.url, AUDIENCE)
    assert status == 0, result
    assert result["payload"] == claims
    assert result["protectedHeader"] == {"alg": alg, "typ": "JWT", "kid": key.key_id}
    status, result = jose(token, jwks_uri, live.url)  # aud not asked for: still fine
    assert status == 0, result

    # Both refuse a tampered token; jose checks iss and aud too.
    tampered = with_claims(token, role="admin")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, key, algorithms=[alg], issuer=live.url, audience=AUDIENCE)
    status, result = jose(tampered, jwks_uri, live.url, AUDIENCE)
    assert status == 1 and result["error"]["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", result
    status, result = jose(with_header(token, alg="HS256"), jwks_uri, live.url, AUDIENCE)
    assert status == 1, result
    status, result = jose(token, jwks_uri, live.url, "payments.trikchi.uz")
    assert status == 1 and result["error"]["code"] == "ERR_JWT_CLAIM_VALIDATION_FAILED", result
    status, result = jose(token, jwks_uri, "https://evil.example", AUDIENCE)
    assert status == 1 and result["error"]["code"] == "ERR_JWT_CLAIM_VALIDATION_FAILED", result
    assert me(live, tampered).status_code == 401
    assert me(live, token).status_code == 200


@pytest.mark.slow
def test_jose_follows_a_rotation_with_the_cli(live, jose, alg):
    browser, login = sign_in(live)
    old = login["access_token"]
    jwks_uri = live.url + "/.well-known/jwks.json"
    old_kid = unverified(old)[0]["kid"]

    for args in (["keys", "add"], ["keys", "rotate", "--force"]):
        result = live.flask(*args)
        assert result.returncode == 0, result.stdout + result.stderr
    time.sleep(2)  # KEYS_RELOAD_SECONDS=1 in every worker

    refreshed = browser.post(
        live.url + "/auth/refresh_token",
        headers={"X-CSRF-TOKEN": browser.cookies.get("csrf_refresh_token")},
        timeout=30,
    )
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()["access_token"]
    new_kid = unverified(new)[0]["kid"]
    assert new_kid != old_kid
    for token, kid in ((old, old_kid), (new, new_kid)):
        status, result = jose(token, jwks_uri, live.url, AUDIENCE)
        assert status == 0 and result["protectedHeader"]["kid"] == kid, result
        assert me(live, token).status_code == 200

    result = live.flask("keys", "retire", "--force", "--", old_kid)
    assert result.returncode == 0, result.stdout + result.stderr
    time.sleep(2)
    status, result = jose(old, jwks_uri, live.url, AUDIENCE)
    assert status == 1 and result["error"]["code"] == "ERR_JWKS_NO_MATCHING_KEY", result
    refused = me(live, old)
    assert refused.status_code == 401 and refused.json()["error"] == "token_invalid"
    status, result = jose(new, jwks_uri, live.url, AUDIENCE)
    assert status == 0, result
    assert me(live, new).status_code == 200


def test_a_respelled_refresh_cookie_is_refused_and_spends_nothing(auth):
    auth.signup()
    cookie = auth.refresh_cookie()
    for variant in (respelled_signature(cookie), padded_signature(cookie)):
        auth.client.set_cookie("refresh_token", variant)
        assert_refused(auth.refresh())
    auth.client.set_cookie("refresh_token", cookie)
    assert auth.refresh().status_code == 200
