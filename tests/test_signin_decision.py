"""SPEC §13: every way of signing in ends in the one sign-in decision — through gunicorn.

With TOTP on, OpenID Connect (against the real ``oidc-provider``), Telegram and the seed's
refresh cookie all end in the second step (no token, no cookie, no session); a code then
opens the session. A passkey still completes alone. Without TOTP nothing changes.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from sqlalchemy import create_engine, func, select

from tests.conftest import PASSWORD, migrate_to_head, require_or_skip
from tests.support import seed
from tests.support.live import LiveClient, LiveServer, bearer, enrol_totp, next_code
from tests.support.oidc import OIDCProvider, node_available, sign_in_at_provider
from tests.support.postgres import free_port
from tests.support.telegram import BOT_TOKEN, payload
from tests.support.webauthn import ORIGIN, RP_ID, SoftAuthenticator, add_passkey, passkey_sign_in
from trikchi.auth.models import AuthSession

FRONTEND = "http://shop.test"
SEED_USER = 7

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """trikchi under gunicorn with every sign-in method on: OIDC, Telegram, seed cookies, passkeys."""
    if not node_available():
        require_or_skip("node or node_modules/oidc-provider missing (make node-deps)")
    port = free_port()
    provider = OIDCProvider([f"http://127.0.0.1:{port}"])
    directory = tmp_path_factory.mktemp("signin-decision")
    url = f"sqlite:///{directory / 'trikchi.db'}"
    migrate_to_head(url)
    api = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": url,
            "FRONTEND_URL": FRONTEND,
            "TRIKCHI_TEST_LOGDIR": str(directory),
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "SEED_JWT_SECRET": seed.SEED_SECRET,
            "WEBAUTHN_RP_ID": RP_ID,
            "WEBAUTHN_ORIGINS": ORIGIN,
            "RATELIMIT_SOCIAL": "1000 per minute",
            **provider.environment(("test",)),
        },
        workers=2,
        port=port,
    ).wait_ready()
    seed.import_one_customer(api, directory, SEED_USER, "seeded@example.com", PASSWORD)
    yield SimpleNamespace(api=api, provider=provider, database=url)
    api.stop()
    provider.stop()


def sessions_of(database: str, user_id: int) -> int:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            return connection.scalar(
                select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user_id)
            )
    finally:
        engine.dispose()


def assert_second_step(response: requests.Response) -> str:
    """The JSON second step: no token, no cookie; its mfa_token."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True and body["methods"] == ["totp", "recovery_code"]
    assert "access_token" not in body
    assert "refresh_token" not in response.headers.get("Set-Cookie", "")
    assert "csrf_refresh_token" not in response.headers.get("Set-Cookie", "")
    return body["mfa_token"]


def complete(api: LiveServer, browser: requests.Session, mfa_token: str, authenticator: pyotp.TOTP):
    """POST /auth/mfa/verify with a fresh code: the login body and the refresh cookie."""
    verified = browser.post(
        f"{api.url}/auth/mfa/verify", json={"mfa_token": mfa_token, "code": next_code(authenticator)}
    )
    assert verified.status_code == 200, verified.text
    assert browser.cookies.get("refresh_token")
    me = browser.get(f"{api.url}/auth/me", headers=bearer(verified.json()["access_token"]))
    assert me.status_code == 200
    return verified.json()


def oidc_sign_in(servers, email: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    api = servers.api
    start = browser.get(f"{api.url}/auth/oauth/test/authorize?redirect_to=/checkout", allow_redirects=False)
    assert start.status_code == 302, start.text
    callback = sign_in_at_provider(browser, start.headers["Location"], email, api.url)
    return browser, browser.get(callback, allow_redirects=False)


def test_openid_connect_with_totp_on_ends_in_the_second_step(servers):
    api = servers.api
    # The first sign-in makes the account; its session enrols TOTP.
    browser, landed = oidc_sign_in(servers, "nodira@example.com")
    csrf = parse_qs(urlsplit(landed.headers["Location"]).fragment)["csrf_token"][0]
    first = browser.post(f"{api.url}/auth/refresh_token", headers={"X-CSRF-TOKEN": csrf}).json()
    authenticator = enrol_totp(api, first["access_token"])
    before = sessions_of(servers.database, first["user_id"])

    browser, landed = oidc_sign_in(servers, "nodira@example.com")
    assert landed.status_code == 302
    location = urlsplit(landed.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("http", "shop.test", "/checkout")
    fragment = parse_qs(location.fragment)
    assert fragment["methods"] == ["totp,recovery_code"] and "csrf_token" not in fragment
    assert "refresh_token" not in landed.headers.get("Set-Cookie", "")
    assert browser.cookies.get("refresh_token") is None
    assert sessions_of(servers.database, first["user_id"]) == before  # no session row yet

    body = complete(api, browser, fragment["mfa_token"][0], authenticator)
    assert body["user_id"] == first["user_id"]
    assert sessions_of(servers.database, first["user_id"]) == before + 1


def test_openid_connect_without_totp_still_opens_the_session(servers):
    _browser, landed = oidc_sign_in(servers, "plain@example.com")
    fragment = parse_qs(urlsplit(landed.headers["Location"]).fragment)
    assert "csrf_token" in fragment and "mfa_token" not in fragment
    assert "refresh_token=" in landed.headers.get("Set-Cookie", "")


def test_telegram_with_totp_on_ends_in_the_second_step(servers):
    api = servers.api
    user = 424242
    first = requests.post(
        f"{api.url}/auth/telegram", json=payload(id=user, auth_date=int(time.time()) - 5), timeout=10
    )
    assert first.status_code == 200, first.text
    authenticator = enrol_totp(api, first.json()["access_token"])

    browser = requests.Session()
    answer = browser.post(f"{api.url}/auth/telegram", json=payload(id=user, auth_date=int(time.time())))
    mfa_token = assert_second_step(answer)
    assert browser.cookies.get("refresh_token") is None
    assert complete(api, browser, mfa_token, authenticator)["user_id"] == first.json()["user_id"]


def test_a_seed_cookie_with_totp_on_ends_in_the_second_step(servers):
    api = servers.api
    login = requests.post(
        f"{api.url}/auth/login", json={"email": "seeded@example.com", "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    authenticator = enrol_totp(api, login.json()["access_token"])
    before = sessions_of(servers.database, SEED_USER)
    time.sleep(1.1)  # a cookie the seed minted after TOTP went on (its times are whole seconds)

    browser = requests.Session()
    browser.cookies.set("refresh_token", seed.create_refresh_token(SEED_USER), domain="127.0.0.1", path="/")
    answer = browser.post(f"{api.url}/auth/refresh_token")  # the seed's frontend: no CSRF header
    mfa_token = assert_second_step(answer)
    assert sessions_of(servers.database, SEED_USER) == before
    body = complete(api, browser, mfa_token, authenticator)
    assert body["user_id"] == SEED_USER
    assert sessions_of(servers.database, SEED_USER) == before + 1


def test_a_passkey_still_completes_alone_with_totp_on(servers):
    api = servers.api
    registered = requests.post(
        f"{api.url}/auth/register",
        json={"name": "Pari", "email": "pari@example.com", "password": PASSWORD},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    login = requests.post(
        f"{api.url}/auth/login", json={"email": "pari@example.com", "password": PASSWORD}, timeout=10
    ).json()
    authenticator = SoftAuthenticator()
    token = login["access_token"]
    owner = SimpleNamespace(client=LiveClient(api.url), headers=lambda: bearer(token))
    assert add_passkey(owner, authenticator).status_code == 201
    enrol_totp(api, token)

    # The password now asks for the second step; the passkey does not.
    second = requests.post(
        f"{api.url}/auth/login", json={"email": "pari@example.com", "password": PASSWORD}, timeout=10
    )
    assert_second_step(second)
    signed_in = passkey_sign_in(LiveClient(api.url), authenticator)
    assert signed_in.status_code == 200 and "access_token" in signed_in.json
    assert "refresh_token=" in signed_in.headers.get("Set-Cookie", "")
