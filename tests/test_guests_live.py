"""SPEC §15 through gunicorn: each way a guest becomes a customer keeping its id (registration, OpenID
Connect against the real provider, Telegram), the merge into an existing account (the guest's
session ended, the webhook received and verified with ``standardwebhooks``), the 409, the 403
``account_required``, racing upgrades of one guest and pruning — the last two on both databases."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from sqlalchemy import create_engine, text, update

from tests.conftest import PASSWORD, migrate_to_head, require_or_skip
from tests.support.live import LiveServer
from tests.support.oidc import OIDCProvider, node_available, sign_in_at_provider
from tests.support.postgres import free_port
from tests.support.races import race
from tests.support.telegram import BOT_TOKEN, payload
from tests.support.webhooks import SECRET, Receiver, body_of
from trikchi.auth.models import AuthSession, User
from trikchi.database import utcnow

pytestmark = pytest.mark.slow
FRONTEND = "http://shop.test"
RACERS = 6


@pytest.fixture(scope="module")
def provider_and_port():
    """oidc-provider knowing trikchi's callbacks on a port picked now (None without Node)."""
    port = free_port()
    provider = OIDCProvider([f"http://127.0.0.1:{port}"]) if node_available() else None
    yield provider, port
    if provider is not None:
        provider.stop()


@pytest.fixture(scope="module")
def webhooks():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def api(provider_and_port, webhooks, tmp_path_factory):
    """gunicorn (3 workers) with Telegram, the provider, webhooks of guest_merged and the outbox worker."""
    provider, port = provider_and_port
    directory = tmp_path_factory.mktemp("guests-live")
    url = f"sqlite:///{directory / 'trikchi.db'}"
    migrate_to_head(url)
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": url,
            "FRONTEND_URL": FRONTEND,
            "TRIKCHI_TEST_LOGDIR": str(directory),
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "WEBHOOK_URLS": webhooks.url,
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_EVENTS": "guest_merged",
            "RATELIMIT_ENABLED": "false",
            **(provider.environment(("test",)) if provider is not None else {}),
        },
        workers=3,
        port=port,
        outbox_worker=True,
    ).wait_ready()
    yield server
    server.stop()


@pytest.fixture
def oidc(provider_and_port):
    provider, _port = provider_and_port
    if provider is None:
        require_or_skip("node or node_modules/oidc-provider missing (make node-deps)")
    return provider


def unique(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}@example.com"


class Browser:
    """A browser (a cookie jar) talking to the API; starts as a guest."""

    def __init__(self, url: str) -> None:
        self.url, self.session = url, requests.Session()
        self.access_token: str | None = None
        self.csrf: str | None = None

    def take(self, response: requests.Response) -> requests.Response:
        if response.ok and "access_token" in response.text:
            self.access_token, self.csrf = response.json()["access_token"], response.json()["csrf_token"]
        return response

    def start_guest(self) -> int:
        response = self.take(self.session.post(f"{self.url}/auth/guest", json={}, timeout=15))
        assert response.status_code == 201, response.text
        return response.json()["user_id"]

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.access_token}"}

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.url + path, timeout=15, **kwargs)

    def refresh(self) -> requests.Response:
        return self.take(self.post("/auth/refresh_token", headers={"X-CSRF-TOKEN": self.csrf or ""}))

    def me(self, token: str | None = None) -> requests.Response:
        return self.session.get(f"{self.url}/auth/me", headers=self.bearer(token), timeout=15)

    def register(self, email: str, name: str = "Ada") -> requests.Response:
        body = {"name": name, "email": email, "password": PASSWORD}
        return self.post("/auth/register", json=body, headers=self.bearer())

    def oidc(self, provider: OIDCProvider, login: str) -> dict[str, list[str]]:
        """The whole OpenID Connect flow in this browser; the fragment the frontend lands with."""
        start = self.session.get(
            f"{self.url}/auth/oauth/test/authorize?redirect_to=/checkout", allow_redirects=False
        )
        assert start.status_code == 302, start.text
        callback = sign_in_at_provider(self.session, start.headers["Location"], login, self.url)
        landed = self.session.get(callback, allow_redirects=False)
        assert landed.status_code == 302 and landed.headers["Location"].startswith(FRONTEND + "/checkout")
        fragment = parse_qs(urlsplit(landed.headers["Location"]).fragment)
        self.csrf = fragment["csrf_token"][0]
        return fragment

    def telegram(self, **fields) -> requests.Response:
        return self.take(
            self.post("/auth/telegram", json=payload(**fields), headers={"X-CSRF-TOKEN": self.csrf})
        )


def role_claim(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["role"]


# --- registration --------------------------------------------------------------------------------


def test_a_guest_registers_over_http_and_keeps_its_id_and_session(api):
    browser = Browser(api.url)
    guest_id = browser.start_guest()
    assert role_claim(browser.access_token) == "guest"
    email = unique("register")
    registered = browser.register(email)
    assert registered.status_code == 201, registered.text
    assert registered.json()["id"] == guest_id and registered.json()["is_guest"] is False

    assert browser.refresh().status_code == 200  # the guest's session goes on, as a customer's
    assert role_claim(browser.access_token) == "customer"
    login = requests.post(f"{api.url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=15)
    assert login.json()["user_id"] == guest_id


def test_a_taken_email_is_409_over_http_and_the_guest_stays(api):
    email = unique("taken")
    assert (
        requests.post(
            f"{api.url}/auth/register", json={"name": "Bo", "email": email, "password": PASSWORD}, timeout=15
        ).status_code
        == 201
    )
    browser = Browser(api.url)
    guest_id = browser.start_guest()
    refused = browser.register(email)
    assert refused.status_code == 409 and refused.json()["error"] == "email_taken"
    me = browser.me().json()
    assert (me["id"], me["is_guest"], me["email"]) == (guest_id, True, None)
    assert browser.refresh().status_code == 200 and role_claim(browser.access_token) == "guest"


def test_account_only_operations_answer_a_guest_403_over_http(api):
    browser = Browser(api.url)
    browser.start_guest()
    body = {"current_password": PASSWORD, "new_password": "another long passphrase"}
    for path, json in (
        ("/auth/password", body),
        ("/auth/mfa/totp/setup", None),
        ("/auth/email", {"new_email": unique("e")}),
    ):
        response = browser.post(path, json=json, headers=browser.bearer())
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"] == "account_required"


# --- OpenID Connect against the real provider -----------------------------------------------------


def test_an_oidc_sign_in_in_a_guests_browser_makes_the_guest_that_customer(api, oidc):
    browser = Browser(api.url)
    guest_id = browser.start_guest()
    email = unique("zara")
    browser.oidc(oidc, email)
    refreshed = browser.refresh()
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["user_id"] == guest_id
    me = browser.me().json()
    assert (me["id"], me["email"], me["email_verified"], me["role"]) == (guest_id, email, True, "customer")
    identities = browser.session.get(
        f"{api.url}/auth/identities", headers=browser.bearer(), timeout=15
    ).json()
    assert [i["provider"] for i in identities] == ["test"]


def test_an_oidc_sign_in_of_an_existing_account_merges_the_guest_and_tells_the_shop(api, oidc, webhooks):
    email = unique("owner")
    owner = Browser(api.url)
    owner.oidc(oidc, email)  # the account exists, made by this provider
    owner_id = owner.refresh().json()["user_id"]

    browser = Browser(api.url)
    guest_id = browser.start_guest()
    guest_token = browser.access_token
    browser.oidc(oidc, email)
    assert browser.refresh().json()["user_id"] == owner_id  # signed into the existing account

    ended = browser.me(guest_token)
    assert ended.status_code == 401 and ended.json()["error"] == "session_ended"
    merged = wait_for_merge(webhooks, guest_id)
    assert merged["type"] == "guest_merged"
    assert merged["data"]["guest_id"] == guest_id and merged["data"]["user_id"] == owner_id


def wait_for_merge(webhooks: Receiver, guest_id: int) -> dict:
    """The guest_merged webhook of ``guest_id``, received and verified by ``standardwebhooks``."""

    def of_guest(receiver: Receiver) -> list:
        return [
            r
            for r in receiver.delivered().values()
            if r.payload and r.payload["data"].get("guest_id") == guest_id
        ]

    webhooks.wait_for(lambda receiver: bool(of_guest(receiver)))
    [record] = of_guest(webhooks)
    assert record.verified and record.payload == body_of(record)
    return record.payload


# --- Telegram ------------------------------------------------------------------------------------


def test_a_telegram_sign_in_in_a_guests_browser_upgrades_or_merges_it(api, webhooks):
    browser = Browser(api.url)
    guest_id = browser.start_guest()
    telegram_id = time.monotonic_ns() % 10**9
    upgraded = browser.telegram(id=telegram_id)
    assert upgraded.status_code == 200 and upgraded.json()["user_id"] == guest_id
    assert browser.me().json()["role"] == "customer"

    other = Browser(api.url)
    other_guest = other.start_guest()
    old_token = other.access_token
    # Another payload of the same Telegram user (a payload signs in once).
    merged = other.telegram(id=telegram_id, auth_date=int(time.time()) - 5)
    assert merged.status_code == 200 and merged.json()["user_id"] == guest_id
    assert other.me(old_token).status_code == 401
    assert wait_for_merge(webhooks, other_guest)["data"]["user_id"] == guest_id


# --- racing upgrades and pruning, on both databases -----------------------------------------------


@pytest.mark.parametrize("same_email", [False, True], ids=["different-emails", "same-email"])
def test_racing_registrations_of_one_guest_leave_one_account(racing_server, database_url, same_email):
    browser = Browser(racing_server.url)
    guest_id = browser.start_guest()
    emails = [unique("tab")] * RACERS if same_email else [unique(f"tab{i}") for i in range(RACERS)]
    headers = browser.bearer()

    def register(i: int) -> requests.Response:
        body = {"name": f"Tab {i}", "email": emails[i], "password": PASSWORD}
        return requests.post(f"{racing_server.url}/auth/register", json=body, headers=headers, timeout=60)

    responses = race(RACERS, register)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (RACERS - 1), (statuses, racing_server.log()[-3000:])
    [won] = [r.json() for r in responses if r.status_code == 201]
    assert won["id"] == guest_id

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            users = conn.execute(text("SELECT id, role, email, name, password_hash FROM users")).all()
            upgrades = conn.scalar(text("SELECT count(*) FROM auth_events WHERE type = 'guest_upgraded'"))
    finally:
        engine.dispose()
    assert len(users) == 1 and upgrades == 1  # one account, no second row, nothing half-written
    [(user_id, role, email, name, password_hash)] = users
    assert (user_id, role, email, name) == (guest_id, "customer", won["email"], won["name"])
    assert password_hash and password_hash.startswith("$argon2id$")


def test_prune_guests_through_the_cli_beside_gunicorn(racing_server, database_url):
    idle = [Browser(racing_server.url) for _ in range(3)]
    ids = [browser.start_guest() for browser in idle]
    fresh = Browser(racing_server.url)
    fresh.start_guest()
    then = utcnow() - timedelta(days=40)
    users, sessions = User.__table__, AuthSession.__table__
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(update(users).where(users.c.id.in_(ids)).values(created_at=then))
            conn.execute(
                update(sessions).where(sessions.c.user_id.in_(ids)).values(created_at=then, last_used_at=then)
            )
    finally:
        engine.dispose()

    result = racing_server.flask("users", "prune-guests", "--batch-size", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "Removed 3 idle guest(s)."
    for browser in idle:
        assert browser.refresh().status_code == 401
    assert fresh.refresh().status_code == 200
    assert fresh.me().json()["is_guest"] is True
