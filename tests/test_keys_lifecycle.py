"""SPEC §7: the key life cycle's safety checks, its audit events, and private keys kept private."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from config import ConfigError, load_config
from tests.conftest import PASSWORD, make_app
from trikchi.database import utcnow
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.keys import material, ring, services
from trikchi.keys.models import CURRENT, PREVIOUS, RETIRED, STANDBY, SigningKey

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


@pytest.fixture
def es256_app(database_url, monkeypatch):
    monkeypatch.setenv("JWT_ALGORITHM", "ES256")
    monkeypatch.setenv("JWT_ISSUER", "https://auth.trikchi.test")
    app = make_app(database_url)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def states(app) -> dict[str, str]:
    with app.app_context():
        return {key.kid: key.state for key in db.session.scalars(select(SigningKey))}


def run(app, *args):
    return app.test_cli_runner().invoke(args=["keys", *args])


def test_first_request_creates_one_current_key_even_when_asked_twice(es256_app):
    with es256_app.app_context():
        services.ensure_current_key()
        services.ensure_current_key()
    assert list(states(es256_app).values()) == [CURRENT]
    assert es256_app.test_client().get("/.well-known/jwks.json").json["keys"][0]["alg"] == "ES256"


def test_life_cycle_and_its_safety_checks(es256_app):
    es256_app.test_client().get("/.well-known/jwks.json")  # first request: the current key
    (first,) = states(es256_app)

    assert "no standby key" in run(es256_app, "rotate").output
    added = run(es256_app, "add", "--alg", "EdDSA")
    assert added.exit_code == 0, added.output
    again = run(es256_app, "add")
    assert again.exit_code != 0 and "standby key already" in again.output
    (second,) = set(states(es256_app)) - {first}
    assert states(es256_app)[second] == STANDBY

    early = run(es256_app, "rotate")
    assert early.exit_code != 0 and "wait" in early.output
    with es256_app.app_context():
        current, previous = services.rotate(now=utcnow() + timedelta(seconds=631))
        assert (current.kid, previous.kid) == (second, first)
    assert states(es256_app) == {first: PREVIOUS, second: CURRENT}

    assert "rotate to a new key first" in run(es256_app, "retire", second).output
    assert "no key" in run(es256_app, "retire", "nope").output
    early = run(es256_app, "retire", first)
    assert early.exit_code != 0 and "valid until" in early.output
    with es256_app.app_context():
        services.retire(first, now=utcnow() + timedelta(minutes=30))  # after the rotation + 15 min
    assert states(es256_app) == {first: RETIRED, second: CURRENT}
    assert "retired already" in run(es256_app, "retire", first, "--force").output

    listing = run(es256_app, "list").output
    assert first in listing and "retired" in listing and "EdDSA" in listing

    with es256_app.app_context():
        events = db.session.scalars(select(AuthEvent).where(AuthEvent.type.like("signing_key%"))).all()
    assert [e.type for e in events] == [
        "signing_key_added",
        "signing_key_added",
        "signing_key_rotated",
        "signing_key_retired",
    ]
    for event in events:
        assert event.user_id is None and not PRIVATE_MEMBERS & set(event.details)
        assert "PRIVATE" not in json.dumps(event.details)


def test_jwks_shows_standby_current_previous_but_never_private_parts_or_retired_keys(es256_app):
    client = es256_app.test_client()
    client.get("/.well-known/jwks.json")
    (first,) = states(es256_app)
    run(es256_app, "add")

    def published() -> list[dict]:
        with es256_app.app_context():
            ring.key_ring(es256_app).reload()  # as every worker does within KEYS_RELOAD_SECONDS
        response = client.get("/.well-known/jwks.json")
        assert response.headers["Cache-Control"] == "public, max-age=600"
        return response.json["keys"]

    keys = published()
    assert len(keys) == 2  # standby and current
    for key in keys:
        assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"} and key["use"] == "sig"
    run(es256_app, "rotate", "--force")
    assert {key["kid"] for key in published()} == set(states(es256_app))  # current and previous
    run(es256_app, "retire", first, "--force")
    assert first not in {key["kid"] for key in published()}
    discovery = client.get("/.well-known/openid-configuration").json
    assert discovery["issuer"] == "https://auth.trikchi.test"
    assert discovery["jwks_uri"] == "https://auth.trikchi.test/.well-known/jwks.json"


def test_private_keys_are_encrypted_at_rest_and_need_the_secret(es256_app):
    es256_app.test_client().get("/.well-known/jwks.json")
    with es256_app.app_context():
        key = db.session.scalar(select(SigningKey))
        assert "PRIVATE" not in key.private_key_encrypted and not PRIVATE_MEMBERS & set(key.public_jwk)
        secrets = es256_app.config["SIGNING_KEYS_SECRET"]
        assert material.decrypt(key.private_key_encrypted, secrets)
        with pytest.raises(material.KeyDecryptionError):
            material.decrypt(key.private_key_encrypted, ["another-secret-" + "x" * 32])
        # Rotating the encryption secret: the new one first, the old one still decrypts.
        es256_app.config["SIGNING_KEYS_SECRET"] = ["new-secret-" + "n" * 32, *secrets]
    assert run(es256_app, "reencrypt").exit_code == 0
    with es256_app.app_context():
        key = db.session.scalar(select(SigningKey))
        assert material.decrypt(key.private_key_encrypted, ["new-secret-" + "n" * 32])


def test_no_key_material_in_answers_or_logs(es256_app, caplog):
    client = es256_app.test_client()
    with caplog.at_level(logging.DEBUG):
        client.post("/auth/register", json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD})
        login = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        run(es256_app, "add")
        with es256_app.app_context():
            services.rotate(force=True)
            ring.key_ring(es256_app).reload()
    assert login.status_code == 200
    with es256_app.app_context():
        ciphertexts = [k.private_key_encrypted for k in db.session.scalars(select(SigningKey))]
    everything = (
        caplog.text + login.get_data(as_text=True) + client.get("/.well-known/jwks.json").get_data(True)
    )
    assert "PRIVATE KEY" not in everything
    for ciphertext in ciphertexts:
        assert ciphertext[:40] not in everything


def test_hs256_mode_publishes_no_keys(client):
    assert client.get("/.well-known/jwks.json").json == {"keys": []}
    assert client.get("/.well-known/openid-configuration").json["issuer"] == "trikchi"


def test_settings_are_checked(monkeypatch):
    monkeypatch.setenv("JWT_ALGORITHM", "HS512")
    with pytest.raises(ConfigError, match="JWT_ALGORITHM"):
        load_config("testing")
    monkeypatch.setenv("JWT_ALGORITHM", "EdDSA")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 40)
    monkeypatch.delenv("SIGNING_KEYS_SECRET", raising=False)
    with pytest.raises(ConfigError, match="SIGNING_KEYS_SECRET"):
        load_config("production")
    monkeypatch.setenv("SIGNING_KEYS_SECRET", "short")
    with pytest.raises(ConfigError, match="SIGNING_KEYS_SECRET"):
        load_config("production")
    monkeypatch.setenv("SIGNING_KEYS_SECRET", "k" * 40)
    assert load_config("production").JWT_ALGORITHM == "EdDSA"


def test_default_issuer_in_an_asymmetric_mode_warns_but_starts(database_url, monkeypatch, caplog):
    monkeypatch.setenv("JWT_ALGORITHM", "EdDSA")
    with caplog.at_level(logging.WARNING):
        app = make_app(database_url)
    assert "JWT_ISSUER" in caplog.text
    assert app.test_client().get("/healthz").status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_kids_are_hex_so_the_cli_takes_them_as_they_are():
    for alg in material.ASYMMETRIC_ALGORITHMS:
        kid = material.thumbprint(material.public_jwk(material.generate(alg), alg))
        assert len(kid) == 32 and int(kid, 16) >= 0


def test_probes_never_touch_the_database_and_loaded_keys_outlive_an_outage(es256_app, monkeypatch):
    client = es256_app.test_client()
    jwks = client.get("/.well-known/jwks.json").json  # loads the key set
    key_ring = ring.key_ring(es256_app)

    def database_down(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(key_ring, "reload", database_down)
    monkeypatch.setattr(key_ring, "_loaded_at", float("-inf"))  # stale: would reload now
    assert client.get("/healthz").status_code == 200  # liveness: no key reload at all
    assert key_ring._loaded_at == float("-inf")
    served = client.get("/.well-known/jwks.json")
    assert served.status_code == 200 and served.json == jwks  # the loaded keys, not a 503
    assert key_ring._loaded_at > float("-inf")  # retried after OUTAGE_RETRY_SECONDS, not per request


def test_a_worker_that_never_loaded_keys_answers_503_when_the_database_is_down(es256_app, monkeypatch):
    key_ring = ring.key_ring(es256_app)

    def database_down(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(key_ring, "reload", database_down)
    response = es256_app.test_client().get("/.well-known/jwks.json")
    assert response.status_code == 503 and response.json["error"] == "service_unavailable"


def test_a_secret_that_cannot_decrypt_the_current_key_keeps_verification_alive(es256_app, caplog):
    client = es256_app.test_client()
    client.post("/auth/register", json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD})
    token = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}).json
    key_ring = ring.key_ring(es256_app)  # keeps this worker's secret
    es256_app.config["SIGNING_KEYS_SECRET"] = ["another-secret-" + "x" * 32]  # an operator's, elsewhere
    run(es256_app, "add")
    with es256_app.app_context():
        services.rotate(force=True)  # the new current key is encrypted under the other secret
    with caplog.at_level(logging.ERROR):
        with es256_app.app_context():
            key_ring.reload()
    assert "SIGNING_KEYS_SECRET" in caplog.text
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/auth/me", headers=headers).status_code == 200  # verification: public keys
    assert client.get("/.well-known/jwks.json").status_code == 200
    # This worker still signs with the (published) key it holds: nobody is refused sign-in.
    again = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert again.status_code == 200


def test_a_worker_holding_no_usable_key_answers_sign_ins_with_503(database_url, monkeypatch):
    monkeypatch.setenv("JWT_ALGORITHM", "ES256")
    first = make_app(database_url)
    first.test_client().get("/.well-known/jwks.json")  # the current key, under first's secret
    monkeypatch.setenv("SECRET_KEY", "a-different-secret-" + "z" * 32)  # testing: encrypts keys
    second = make_app(database_url)
    client = second.test_client()
    client.post("/auth/register", json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD})
    response = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 503 and response.json["error"] == "service_unavailable"
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()


def test_rotation_waits_for_the_jwks_cache_and_the_workers_reload(es256_app):
    es256_app.test_client().get("/.well-known/jwks.json")
    run(es256_app, "add")
    with es256_app.app_context():
        with pytest.raises(services.KeyOperationRefused):
            services.rotate(now=utcnow() + timedelta(seconds=601))  # 600 s max-age + 30 s reload
        assert services.rotate(now=utcnow() + timedelta(seconds=631))


def test_reencryption_is_an_audit_event(es256_app):
    es256_app.test_client().get("/.well-known/jwks.json")
    assert run(es256_app, "reencrypt").exit_code == 0
    with es256_app.app_context():
        event = db.session.scalar(select(AuthEvent).where(AuthEvent.type == "signing_keys_reencrypted"))
        assert event.details == {"count": 1}


def test_the_database_allows_one_standby_key(es256_app):
    with es256_app.app_context():
        for _ in range(2):
            private = material.generate("ES256")
            jwk = material.public_jwk(private, "ES256")
            db.session.add(
                SigningKey(
                    kid=material.thumbprint(jwk),
                    alg="ES256",
                    state=STANDBY,
                    public_jwk=jwk,
                    private_key_encrypted="x",
                    created_at=utcnow(),
                )
            )
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_discovery_names_the_published_keys_algorithms_and_never_the_requests_host(database_url, monkeypatch):
    monkeypatch.setenv("JWT_ALGORITHM", "ES256")
    app = make_app(database_url)  # JWT_ISSUER stays "trikchi" and no PUBLIC_URL: a path
    client = app.test_client()
    client.get("/.well-known/jwks.json")
    run(app, "add", "--alg", "EdDSA")
    with app.app_context():
        ring.key_ring(app).reload()
    response = client.get("/.well-known/openid-configuration", headers={"Host": "evil.example"})
    assert set(response.json["id_token_signing_alg_values_supported"]) == {"ES256", "EdDSA"}
    assert response.json["jwks_uri"] == "/.well-known/jwks.json"
    assert "evil" not in response.get_data(as_text=True)
    # The same answer for every Host: a shared cache may keep it.
    assert response.headers["Cache-Control"] == "public, max-age=600"
    with app.app_context():
        db.engine.dispose()
