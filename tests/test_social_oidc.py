"""OpenID Connect sign-in against a real provider (Node's oidc-provider on 127.0.0.1): the code +
PKCE flow, the linking rules, and every way a callback must be refused with nobody signed in."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import PASSWORD, AuthActions, make_app, require_or_skip
from tests.support.oidc import VARIANTS, OIDCProvider, node_available, sign_in_at_provider
from trikchi.auth.models import AuthSession, User
from trikchi.events import AuthEvent
from trikchi.extensions import db
from trikchi.social.models import Identity

FRONTEND = "http://shop.test"
CALLBACK_BASE = "http://localhost"  # the Flask test client's host


@pytest.fixture(scope="module")
def provider():
    if not node_available():
        require_or_skip("node or node_modules/oidc-provider missing (make node-deps)")
    server = OIDCProvider([CALLBACK_BASE])
    yield server
    server.stop()


@pytest.fixture
def app(database_url, provider):
    app = make_app(
        database_url,
        OAUTH_PROVIDERS=provider.providers(),
        OAUTH_CALLBACK_BASE_URL=CALLBACK_BASE,
        FRONTEND_URL=FRONTEND,
        RATELIMIT_SOCIAL="1000 per minute",
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def start(client, name="test", redirect_to="/account"):
    """GET authorize: the provider's URL (the state cookie stays in the test client)."""
    response = client.get(f"/auth/oauth/{name}/authorize?" + urlencode({"redirect_to": redirect_to}))
    assert response.status_code == 302, response.json
    return response.headers["Location"]


def provider_round_trip(client, login, name="test", redirect_to="/account", tamper=None):
    """authorize → the provider's pages as ``login`` → the callback URL (not yet called)."""
    url = start(client, name, redirect_to)
    if tamper:
        url = tamper(url)
    return sign_in_at_provider(requests.Session(), url, login, f"{CALLBACK_BASE}/auth/oauth/{name}/callback")


def call_back(client, callback_url):
    parts = urlsplit(callback_url)
    return client.get(parts.path + "?" + parts.query)


def sign_in(client, login, name="test", redirect_to="/account"):
    return call_back(client, provider_round_trip(client, login, name, redirect_to))


def count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def events(app, type_):
    with app.app_context():
        return db.session.scalars(
            select(AuthEvent).where(AuthEvent.type == type_).order_by(AuthEvent.id)
        ).all()


def error_of(response) -> str:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(FRONTEND + "/")
    return parse_qs(urlsplit(location).query)["error"][0]


def assert_nobody_signed_in(app, client, response):
    assert count(app, AuthSession) == 0
    assert client.get_cookie("refresh_token") is None
    assert client.get_cookie("csrf_refresh_token") is None
    assert "refresh_token" not in response.headers.get("Set-Cookie", "").replace("csrf_refresh_token", "")


def test_code_flow_with_pkce_signs_in_and_lands_on_the_frontend(app, client, provider):
    url = start(client)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(provider.issuer + "/auth?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["response_type"] == ["code"] and query["scope"] == ["openid email profile"]
    assert query["redirect_uri"] == [f"{CALLBACK_BASE}/auth/oauth/test/callback"]
    assert query["state"][0] and query["nonce"][0]
    state_cookie = client.get_cookie("trikchi_oauth_test", path="/auth/oauth/test/callback")
    assert state_cookie is not None and state_cookie.http_only
    assert query["state"][0] not in state_cookie.value  # signed, but not a readable "state=" to match

    callback = sign_in_at_provider(
        requests.Session(), url, "ada@example.com", f"{CALLBACK_BASE}/auth/oauth/test/callback"
    )
    response = call_back(client, callback)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location._replace(fragment="").geturl() == FRONTEND + "/account"
    # Only the CSRF value, in the fragment (for a frontend that cannot read the API's cookies).
    assert parse_qs(location.fragment) == {"csrf_token": [client.get_cookie("csrf_refresh_token").value]}
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get_cookie("refresh_token").http_only
    assert client.get_cookie("refresh_token").value not in response.headers["Location"]
    assert client.get_cookie("trikchi_oauth_test", path="/auth/oauth/test/callback") is None

    auth = AuthActions(client)
    assert auth.refresh().status_code == 200  # the frontend gets its access token this way
    me = auth.me().json
    assert me["email"] == "ada@example.com" and me["email_verified"] is True and me["name"] == "Test ada"
    with app.app_context():
        session = db.session.scalars(select(AuthSession)).one()
        assert session.auth_method == "oidc:test"
        user = db.session.get(User, me["id"])
        assert user.password_hash is None
    login = events(app, "login_succeeded")[-1]
    assert login.details == {"method": "oidc:test"}
    assert [e.details for e in events(app, "identity_linked")] == [{"provider": "test", "new_account": True}]
    identities = client.get("/auth/identities", headers=auth.headers()).json
    assert [(i["provider"], i["email"]) for i in identities] == [("test", "ada@example.com")]

    # The same person again: the same account, no second identity.
    other = app.test_client()
    assert sign_in(other, "ada@example.com").status_code == 302
    assert count(app, User) == 1 and count(app, Identity) == 1 and count(app, AuthSession) == 2


def test_password_sign_in_of_a_passwordless_account_is_the_generic_401(app, client):
    sign_in(client, "nopass@example.com")
    response = app.test_client().post(
        "/auth/login", json={"email": "nopass@example.com", "password": PASSWORD}
    )
    assert response.status_code == 401 and response.json["error"] == "invalid_credentials"


def test_verified_email_links_to_the_existing_account(app, client):
    auth = AuthActions(client)
    auth.signup("grace@example.com")
    with app.app_context():
        db.session.execute(db.update(User).values(email_verified=True))
        db.session.commit()
    browser = app.test_client()
    assert sign_in(browser, "grace@example.com").status_code == 302
    assert count(app, User) == 1
    with app.app_context():
        identity = db.session.scalars(select(Identity)).one()
        user = db.session.scalars(select(User)).one()
        assert identity.user_id == user.id and user.password_hash is not None  # the password still works
    assert AuthActions(app.test_client()).login("grace@example.com").status_code == 200
    assert [e.details for e in events(app, "identity_linked")] == [{"provider": "test"}]


def test_verified_email_of_an_unverified_account_links_and_removes_the_unproven_password(app, client):
    # Someone registered grace's address with a password of theirs, never proving the address.
    squatter = AuthActions(client)
    squatter.signup("grace@example.com")
    assert squatter.refresh().status_code == 200
    browser = app.test_client()
    assert sign_in(browser, "grace@example.com").status_code == 302
    assert count(app, User) == 1
    assert AuthActions(app.test_client()).login("grace@example.com").status_code == 401
    assert squatter.refresh().status_code == 401  # the squatter's session ended
    assert AuthActions(browser).refresh().status_code == 200


def test_unverified_email_does_not_link_and_takes_no_address(app, client):
    AuthActions(client).signup("unverified-bob@example.com")
    browser = app.test_client()
    assert sign_in(browser, "unverified-bob@example.com").status_code == 302
    assert count(app, User) == 2  # a new account, not a merge
    auth = AuthActions(browser)
    assert auth.refresh().status_code == 200
    me = auth.me().json
    assert me["email"] is None and me["email_verified"] is False
    with app.app_context():
        identity = db.session.scalars(select(Identity)).one()
        assert identity.user_id == me["id"] and identity.email == "unverified-bob@example.com"
    # A free unverified address is not taken either: its owner can still register it.
    assert sign_in(app.test_client(), "unverified-carol@example.com").status_code == 302
    assert AuthActions(app.test_client()).register("unverified-carol@example.com").status_code == 201


def test_unlinking_the_last_way_to_sign_in_is_refused(app, client):
    sign_in(client, "dora@example.com")
    auth = AuthActions(client)
    auth.refresh()
    (identity,) = client.get("/auth/identities", headers=auth.headers()).json
    response = client.delete(f"/auth/identities/{identity['id']}", headers=auth.headers())
    assert response.status_code == 409 and response.json["error"] == "last_sign_in_method"
    assert count(app, Identity) == 1


def test_unlinking_an_identity_of_an_account_with_a_password(app, client):
    auth = AuthActions(client)
    auth.signup("erin@example.com")
    with app.app_context():
        db.session.execute(db.update(User).values(email_verified=True))
        db.session.commit()
    sign_in(app.test_client(), "erin@example.com")
    (identity,) = client.get("/auth/identities", headers=auth.headers()).json
    other = AuthActions(app.test_client())
    other.signup("frank@example.com")
    assert client.delete(f"/auth/identities/{identity['id']}", headers=other.headers()).status_code == 404
    assert client.delete("/auth/identities/2147483648", headers=auth.headers()).status_code == 404
    assert client.delete(f"/auth/identities/{identity['id']}", headers=auth.headers()).status_code == 204
    assert client.get("/auth/identities", headers=auth.headers()).json == []
    assert [e.details for e in events(app, "identity_unlinked")] == [{"provider": "test"}]
    # Unlinked: the next sign-in with it is a new identity (linked again: the email is verified).
    sign_in(app.test_client(), "erin@example.com")
    assert count(app, Identity) == 1 and count(app, User) == 2


def test_unlinking_needs_a_fresh_sign_in(app, client):
    auth = AuthActions(client)
    auth.signup("gina@example.com")
    with app.app_context():
        db.session.execute(db.update(User).values(email_verified=True))
        db.session.commit()
    sign_in(app.test_client(), "gina@example.com")
    (identity,) = client.get("/auth/identities", headers=auth.headers()).json
    with app.app_context():
        from datetime import timedelta

        from trikchi.database import utcnow

        db.session.execute(db.update(AuthSession).values(auth_time=utcnow() - timedelta(seconds=3600)))
        db.session.commit()
    auth.refresh()
    response = client.delete(f"/auth/identities/{identity['id']}", headers=auth.headers())
    assert response.status_code == 401 and response.json["error"] == "fresh_signin_required"
    assert count(app, Identity) == 1


def test_tampered_state_is_refused(app, client):
    callback = provider_round_trip(client, "mallory@example.com")
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    query["state"] = [query["state"][0][:-2] + ("AA" if not query["state"][0].endswith("AA") else "BB")]
    response = client.get(parts.path + "?" + urlencode(query, doseq=True))
    assert error_of(response) == "invalid_state"
    assert_nobody_signed_in(app, client, response)
    assert count(app, User) == 0
    assert events(app, "social_login_failed")[-1].details == {"provider": "test", "reason": "invalid_state"}


def test_a_callback_without_the_flow_cookie_is_refused(app, client):
    """Login CSRF: an attacker's own callback URL, opened in the victim's browser."""
    callback = provider_round_trip(app.test_client(), "mallory@example.com")
    victim = app.test_client()
    response = call_back(victim, callback)
    assert error_of(response) == "invalid_state"
    assert response.headers["Location"] == FRONTEND + "/?error=invalid_state"
    assert_nobody_signed_in(app, victim, response)


def test_wrong_nonce_is_refused(app, client):
    def other_nonce(url):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        query["nonce"] = ["a-nonce-the-flow-never-made"]
        return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))

    callback = provider_round_trip(client, "mallory@example.com", tamper=other_nonce)
    response = call_back(client, callback)
    assert error_of(response) == "invalid_id_token"
    assert response.headers["Location"].startswith(FRONTEND + "/account?error=")
    assert_nobody_signed_in(app, client, response)


def test_replayed_callback_is_refused(app, client):
    callback = provider_round_trip(client, "ivy@example.com")
    state_cookie = client.get_cookie("trikchi_oauth_test", path="/auth/oauth/test/callback").value
    assert call_back(client, callback).status_code == 302
    assert count(app, AuthSession) == 1
    # The same callback again, even with the flow's cookie put back: the provider refuses the
    # used code (and the cookie was cleared, so a browser would not even have it).
    replay = app.test_client()
    replay.set_cookie("trikchi_oauth_test", state_cookie, path="/auth/oauth/test/callback")
    response = call_back(replay, callback)
    assert error_of(response) == "token_exchange_failed"
    assert count(app, AuthSession) == 1
    assert replay.get_cookie("refresh_token") is None
    # And without the cookie (what the browser has after the first callback):
    response = call_back(client, callback)
    assert error_of(response) == "invalid_state"
    assert count(app, AuthSession) == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_misbehaving_provider_id_tokens_are_refused(app, client, variant):
    """A real code exchange whose ID token has a foreign iss or aud, is expired, or is not signed
    by a key of the provider's JWKS."""
    callback = provider_round_trip(client, "mallory@example.com", name=variant)
    response = call_back(client, callback)
    assert error_of(response) == "invalid_id_token"
    assert_nobody_signed_in(app, client, response)
    assert count(app, User) == 0 and count(app, Identity) == 0


@pytest.mark.parametrize(
    "redirect_to",
    [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil",
        "/a\nb",
        "\\\\evil",
    ],
)
def test_open_redirects_are_refused_before_the_provider(app, client, redirect_to):
    response = client.get("/auth/oauth/test/authorize?" + urlencode({"redirect_to": redirect_to}))
    assert response.status_code == 422 and response.json["error"] == "validation_failed"
    assert "redirect_to" in response.json["errors"]
    assert client.get_cookie("trikchi_oauth_test", path="/auth/oauth/test/callback") is None


def test_a_forged_flow_cookie_cannot_redirect_elsewhere(app, client):
    """The flow cookie is signed: a cookie made without SECRET_KEY (to land on //evil) is no flow."""
    from itsdangerous import URLSafeTimedSerializer

    callback = provider_round_trip(client, "mallory@example.com")
    state = parse_qs(urlsplit(callback).query)["state"][0]
    forged = URLSafeTimedSerializer("not-the-secret", salt="trikchi.oauth-state").dumps(
        {"p": "test", "s": state, "n": "x", "v": "y" * 43, "r": "//evil.example"}
    )
    client.set_cookie("trikchi_oauth_test", forged, path="/auth/oauth/test/callback")
    response = call_back(client, callback)
    assert response.headers["Location"] == FRONTEND + "/?error=invalid_state"
    assert_nobody_signed_in(app, client, response)


def test_the_person_declining_at_the_provider(app, client):
    url = start(client)
    state = parse_qs(urlsplit(url).query)["state"][0]
    response = client.get(
        "/auth/oauth/test/callback?" + urlencode({"error": "access_denied", "state": state})
    )
    assert error_of(response) == "provider_denied"
    assert_nobody_signed_in(app, client, response)


def test_unknown_provider(client):
    response = client.get("/auth/oauth/nosuch/authorize")
    assert response.status_code == 404 and response.json["error"] == "not_found"
    response = client.get("/auth/oauth/nosuch/callback?code=x&state=y")
    assert response.headers["Location"] == FRONTEND + "/?error=unknown_provider"
    assert "Set-Cookie" not in response.headers


def test_a_disabled_account_is_not_signed_in(app, client):
    sign_in(app.test_client(), "hank@example.com")
    with app.app_context():
        db.session.execute(db.update(User).values(is_active=False))
        db.session.commit()
    response = sign_in(client, "hank@example.com")
    assert error_of(response) == "account_disabled"
    assert client.get_cookie("refresh_token") is None
    assert count(app, AuthSession, AuthSession.revoked_at.is_(None)) == 1  # only the first, from before


def test_authorize_and_callback_are_rate_limited(app, client):
    app.config["RATELIMIT_SOCIAL"] = "2 per minute"
    assert client.get("/auth/oauth/test/authorize").status_code == 302
    assert client.get("/auth/oauth/test/authorize").status_code == 302
    response = client.get("/auth/oauth/test/authorize")
    assert response.status_code == 429 and response.json["error"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0


def test_providers_lists_the_buttons_to_show(app, client):
    assert client.get("/auth/providers").json == {"oidc": sorted(("test", *VARIANTS)), "telegram_bot": None}
    app.config.update(TELEGRAM_BOT_TOKEN="123:abc", TELEGRAM_BOT_NAME="trikchi_bot")
    assert client.get("/auth/providers").json["telegram_bot"] == "trikchi_bot"


def test_a_password_reset_gives_a_social_account_its_password(provider, smtp_server, mail_app_factory):
    import re
    import time

    app = mail_app_factory(
        OAUTH_PROVIDERS=provider.providers(("test",)),
        OAUTH_CALLBACK_BASE_URL=CALLBACK_BASE,
        FRONTEND_URL=FRONTEND,
        NOTIFY_NEW_DEVICE=False,  # the first mail to the address is the reset link, not a notice
    )
    email = f"reset-{time.monotonic_ns()}@example.com"
    sign_in(app.test_client(), email)
    anonymous = app.test_client()
    assert anonymous.post("/auth/password_reset/request", json={"email": email}).status_code == 202
    text = smtp_server.wait_for(email).get_body(preferencelist=("plain",)).get_content()
    token = re.search(re.escape(f"{FRONTEND}/reset-password?token=") + r"([A-Za-z0-9_.\-]+)", text).group(1)
    response = anonymous.post("/auth/password_reset", json={"token": token, "new_password": PASSWORD})
    assert response.status_code == 204
    assert AuthActions(app.test_client()).login(email, PASSWORD).status_code == 200
    # The link worked once: the password it set changed what it was bound to.
    again = anonymous.post("/auth/password_reset", json={"token": token, "new_password": PASSWORD + "!"})
    assert again.status_code == 401


def test_provider_settings_from_the_environment(monkeypatch):
    from config import GOOGLE_DISCOVERY_URL, ConfigError, load_config

    monkeypatch.setenv("OAUTH_PROVIDERS", "Google, corp")
    monkeypatch.setenv("OAUTH_GOOGLE_CLIENT_ID", "g-id")
    monkeypatch.setenv("OAUTH_GOOGLE_CLIENT_SECRET", "g-secret")
    monkeypatch.setenv("OAUTH_CORP_CLIENT_ID", "c-id")
    monkeypatch.setenv("OAUTH_CORP_DISCOVERY_URL", "https://id.corp.example/.well-known/openid-configuration")
    monkeypatch.setenv("OAUTH_CORP_SCOPES", "openid email")
    providers = load_config("testing").OAUTH_PROVIDERS
    assert providers["google"] == {
        "discovery_url": GOOGLE_DISCOVERY_URL,
        "client_id": "g-id",
        "client_secret": "g-secret",
        "scopes": "openid email profile",
    }
    assert providers["corp"]["client_secret"] is None and providers["corp"]["scopes"] == "openid email"
    monkeypatch.delenv("OAUTH_CORP_DISCOVERY_URL")
    with pytest.raises(ConfigError, match="OAUTH_CORP_DISCOVERY_URL"):
        load_config("testing")
    monkeypatch.setenv("OAUTH_PROVIDERS", "google")
    monkeypatch.delenv("OAUTH_GOOGLE_CLIENT_ID")
    with pytest.raises(ConfigError, match="OAUTH_GOOGLE_CLIENT_ID"):
        load_config("testing")
    monkeypatch.setenv("OAUTH_PROVIDERS", "telegram")
    with pytest.raises(ConfigError, match="OAUTH_PROVIDERS"):
        load_config("testing")
    monkeypatch.setenv("OAUTH_PROVIDERS", "")
    monkeypatch.setenv("TELEGRAM_AUTH_MAX_AGE_SECONDS", "172800")
    with pytest.raises(ConfigError, match="TELEGRAM_AUTH_MAX_AGE_SECONDS"):
        load_config("testing")
