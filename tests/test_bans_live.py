"""SPEC §16 bans through gunicorn, on SQLite and PostgreSQL: a ban ends every session at once (access
and refresh), every sign-in method — password (after the right one only), passkey, OpenID Connect
(against the real ``oidc-provider``), Telegram, the seed's cookie, the second step — is refused
with 403 ``account_banned``, a timed ban lifts by itself, and the last admin cannot be banned."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import PASSWORD, migrate_to_head, require_or_skip
from tests.support import seed
from tests.support.live import LiveClient, LiveServer, bearer, enrol_totp, next_code
from tests.support.oidc import OIDCProvider, node_available, sign_in_at_provider
from tests.support.postgres import free_port
from tests.support.telegram import BOT_TOKEN, payload
from tests.support.webauthn import ORIGIN, RP_ID, SoftAuthenticator, add_passkey, passkey_sign_in

FRONTEND = "http://shop.test"
SEED_USER = 7
ADMIN = "boss@example.com"

pytestmark = pytest.mark.slow


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ],
)
def servers(request, tmp_path_factory):
    """trikchi under gunicorn with every sign-in method on, an admin, and a customer from the seed."""
    if not node_available():
        require_or_skip("node or node_modules/oidc-provider missing (make node-deps)")
    directory = tmp_path_factory.mktemp(f"bans-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'trikchi.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database("trikchi_bans_live")
    migrate_to_head(url)
    port = free_port()
    provider = OIDCProvider([f"http://127.0.0.1:{port}"])
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
            "MFA_REQUIRED_ROLES": "",
            "RATELIMIT_ENABLED": "false",  # these tests sign in often from one address
            **provider.environment(("test",)),
        },
        workers=2,
        port=port,
    ).wait_ready()
    try:
        seed.import_one_customer(api, directory, SEED_USER, "seeded@example.com", PASSWORD)
        created = api.flask(
            "users", "create", "--email", ADMIN, "--name", "Boss", "--role", "admin", "--password", PASSWORD
        )
        assert created.returncode == 0, created.stdout + created.stderr
        yield SimpleNamespace(api=api, provider=provider, admin=login(api, ADMIN).json())
    finally:
        api.stop()
        provider.stop()


def login(api: LiveServer, email: str, password: str = PASSWORD, browser=None) -> requests.Response:
    return (browser or requests).post(
        f"{api.url}/auth/login", json={"email": email, "password": password}, timeout=10
    )


def customer(api: LiveServer, email: str) -> int:
    registered = requests.post(
        f"{api.url}/auth/register", json={"name": "Ada", "email": email, "password": PASSWORD}, timeout=10
    )
    assert registered.status_code == 201, registered.text
    return registered.json()["id"]


def ban(servers, user_id: int, until: datetime | None = None, reason: str | None = "abuse"):
    body = {"until": until.isoformat() if until else None, "reason": reason}
    return requests.post(
        f"{servers.api.url}/admin/users/{user_id}/ban",
        json=body,
        headers=bearer(servers.admin["access_token"]),
        timeout=10,
    )


def banned_ok(servers, user_id: int, until: datetime | None = None) -> None:
    answer = ban(servers, user_id, until)
    assert answer.status_code == 200, answer.text
    assert answer.json()["banned"] is True


def assert_banned(response: requests.Response, until: datetime | None = None) -> None:
    """403 ``account_banned`` with ``banned_until``, and no session handed out."""
    assert response.status_code == 403, response.text
    body = response.json if isinstance(response.json, dict) else response.json()  # LiveClient's or not
    assert body["error"] == "account_banned"
    if until is None:
        assert body["banned_until"] is None
    else:
        assert datetime.fromisoformat(body["banned_until"]) == until
    assert "access_token" not in body
    assert "refresh_token=" not in response.headers.get("Set-Cookie", "")


def refresh(api: LiveServer, browser: requests.Session) -> requests.Response:
    csrf = browser.cookies.get("csrf_refresh_token")
    return browser.post(f"{api.url}/auth/refresh_token", headers={"X-CSRF-TOKEN": csrf or ""}, timeout=10)


def test_a_ban_ends_every_session_at_once_and_refuses_the_right_password_only(servers):
    api = servers.api
    user_id = customer(api, "ada@example.com")
    phone, laptop = requests.Session(), requests.Session()
    tokens = [
        login(api, "ada@example.com", browser=device).json()["access_token"] for device in (phone, laptop)
    ]
    for device, token in zip((phone, laptop), tokens, strict=True):
        assert device.get(f"{api.url}/auth/me", headers=bearer(token), timeout=10).status_code == 200

    banned_ok(servers, user_id)
    for device, token in zip((phone, laptop), tokens, strict=True):
        me = device.get(f"{api.url}/auth/me", headers=bearer(token), timeout=10)
        assert me.status_code == 401 and me.json()["error"] == "session_ended"
        assert refresh(api, device).status_code == 401

    assert_banned(login(api, "ada@example.com"))
    wrong = login(api, "ada@example.com", "not the password")
    unknown = login(api, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() and wrong.json()["error"] == "invalid_credentials"


def test_a_timed_ban_lifts_by_itself(servers):
    api = servers.api
    user_id = customer(api, "timed@example.com")
    until = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    banned_ok(servers, user_id, until)
    assert_banned(login(api, "timed@example.com"), until)
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.5)
    assert login(api, "timed@example.com").status_code == 200


def test_a_passkey_of_a_banned_account_is_refused(servers):
    api = servers.api
    user_id = customer(api, "pari@example.com")
    token = login(api, "pari@example.com").json()["access_token"]
    authenticator = SoftAuthenticator()
    owner = SimpleNamespace(client=LiveClient(api.url), headers=lambda: bearer(token))
    assert add_passkey(owner, authenticator).status_code == 201
    banned_ok(servers, user_id)
    assert_banned(passkey_sign_in(LiveClient(api.url), authenticator))


def test_openid_connect_sign_in_of_a_banned_account_is_refused(servers):
    api = servers.api
    browser = requests.Session()
    start = browser.get(f"{api.url}/auth/oauth/test/authorize?redirect_to=/checkout", allow_redirects=False)
    landed = browser.get(
        sign_in_at_provider(browser, start.headers["Location"], "nodira@example.com", api.url),
        allow_redirects=False,
    )
    csrf = parse_qs(urlsplit(landed.headers["Location"]).fragment)["csrf_token"][0]
    user_id = browser.post(f"{api.url}/auth/refresh_token", headers={"X-CSRF-TOKEN": csrf}).json()["user_id"]
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    banned_ok(servers, user_id, until)

    browser = requests.Session()
    start = browser.get(f"{api.url}/auth/oauth/test/authorize?redirect_to=/checkout", allow_redirects=False)
    landed = browser.get(
        sign_in_at_provider(browser, start.headers["Location"], "nodira@example.com", api.url),
        allow_redirects=False,
    )
    assert landed.status_code == 302
    location = urlsplit(landed.headers["Location"])
    assert (location.netloc, location.path, location.fragment) == ("shop.test", "/checkout", "")
    query = parse_qs(location.query)
    assert query["error"] == ["account_banned"]
    assert datetime.fromisoformat(query["banned_until"][0]) == until
    assert "refresh_token=" not in landed.headers.get("Set-Cookie", "")


def test_telegram_sign_in_of_a_banned_account_is_refused(servers):
    api = servers.api
    first = requests.post(
        f"{api.url}/auth/telegram", json=payload(id=5150, auth_date=int(time.time()) - 5), timeout=10
    )
    assert first.status_code == 200, first.text
    banned_ok(servers, first.json()["user_id"])
    again = requests.post(
        f"{api.url}/auth/telegram", json=payload(id=5150, auth_date=int(time.time())), timeout=10
    )
    assert_banned(again)


def test_the_seed_cookie_of_a_banned_account_is_refused(servers):
    api = servers.api
    until = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    banned_ok(servers, SEED_USER, until)
    time.sleep(1.1)  # a cookie the seed minted after the ban (its times are whole seconds)
    browser = requests.Session()
    browser.cookies.set("refresh_token", seed.create_refresh_token(SEED_USER), domain="127.0.0.1", path="/")
    assert_banned(browser.post(f"{api.url}/auth/refresh_token", timeout=10), until)


def test_the_second_step_of_a_banned_account_is_refused(servers):
    api = servers.api
    user_id = customer(api, "totp@example.com")
    authenticator = enrol_totp(api, login(api, "totp@example.com").json()["access_token"])
    step = login(api, "totp@example.com").json()
    assert step["mfa_required"] is True
    banned_ok(servers, user_id)
    verified = requests.post(
        f"{api.url}/auth/mfa/verify",
        json={"mfa_token": step["mfa_token"], "code": next_code(authenticator)},
        timeout=10,
    )
    assert_banned(verified)


def test_the_last_admin_cannot_be_banned(servers):
    refused = ban(servers, servers.admin["user_id"])
    assert refused.status_code == 409 and refused.json()["error"] == "last_admin"
    me = requests.get(f"{servers.api.url}/auth/me", headers=bearer(servers.admin["access_token"]), timeout=10)
    assert me.status_code == 200
