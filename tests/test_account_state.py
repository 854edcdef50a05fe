"""Credentials tied to the account's state (issue 27), each tried as an attacker would, through
gunicorn with real mail:

- a never-verified account whose address its owner proves (a Google sign-in, a reset link)
  starts clean: the squatter's password, passkey and TOTP go with every session;
- a pending email-change link and a seed refresh cookie die with a password change, a reset
  and sign-out everywhere; a seed cookie's session is not fresh;
- a single-use link works once however many requests race with it.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import PASSWORD, migrate_to_head, require_or_skip
from tests.support import seed
from tests.support.live import LiveClient, LiveServer, bearer, enrol_totp
from tests.support.mails import FRONTEND, link_token, unique, wait_for_subject
from tests.support.oidc import OIDCProvider, node_available, sign_in_at_provider
from tests.support.postgres import free_port
from tests.support.races import race
from tests.support.webauthn import ORIGIN, RP_ID, SoftAuthenticator, add_passkey, passkey_sign_in

NEW_PASSWORD = "Another-passphrase-42"  # noqa: S105 - a test value
SEED_USER = 11

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp_server):
    """trikchi under gunicorn with its outbox worker mailing the real SMTP server, the OIDC
    provider, passkeys, and the seed's user 11 imported."""
    if not node_available():
        require_or_skip("node or node_modules/oidc-provider missing (make node-deps)")
    port = free_port()
    provider = OIDCProvider([f"http://127.0.0.1:{port}"])
    directory = tmp_path_factory.mktemp("account-state")
    url = f"sqlite:///{directory / 'trikchi.db'}"
    migrate_to_head(url)
    api = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": url,
            "FRONTEND_URL": FRONTEND,
            "TRIKCHI_TEST_LOGDIR": str(directory),
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(smtp_server.port),
            "MAIL_USE_TLS": "false",
            "SEED_JWT_SECRET": seed.SEED_SECRET,
            "WEBAUTHN_RP_ID": RP_ID,
            "WEBAUTHN_ORIGINS": ORIGIN,
            "RATELIMIT_REGISTER": "1000 per minute",
            "RATELIMIT_LOGIN": "1000 per minute",
            "RATELIMIT_PASSWORD_RESET": "1000 per minute",
            "RATELIMIT_PASSWORD_RESET_PER_EMAIL": "1000 per minute",
            "RATELIMIT_EMAIL_CHANGE": "1000 per minute",
            "RATELIMIT_PASSWORD": "1000 per minute",
            **provider.environment(("test",)),
        },
        workers=4,
        port=port,
        outbox_worker=True,
    ).wait_ready()
    seed.import_one_customer(api, directory, SEED_USER, "from-seed@example.com", PASSWORD)
    yield SimpleNamespace(api=api, provider=provider, smtp=smtp_server)
    api.stop()
    provider.stop()


def post(server, path: str, **kwargs) -> requests.Response:
    return requests.post(server.api.url + path, timeout=15, **kwargs)


def register_and_login(server, email: str, password: str = PASSWORD) -> dict:
    registered = post(
        server, "/auth/register", json={"name": "Someone", "email": email, "password": password}
    )
    assert registered.status_code == 201, registered.text
    return login(server, email, password)


def login(server, email: str, password: str = PASSWORD) -> dict:
    response = post(server, "/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def squat(server, email: str) -> SimpleNamespace:
    """Someone registers another person's address (never verified), adds a passkey and TOTP."""
    body = register_and_login(server, email)
    token = body["access_token"]
    authenticator = SoftAuthenticator()
    owner = SimpleNamespace(client=LiveClient(server.api.url), headers=lambda: bearer(token))
    assert add_passkey(owner, authenticator).status_code == 201
    enrol_totp(server.api, token)
    assert "mfa_required" in post(server, "/auth/login", json={"email": email, "password": PASSWORD}).json()
    return SimpleNamespace(authenticator=authenticator, token=token, user_id=body["user_id"])


def assert_squatter_is_out(server, email: str, squatter: SimpleNamespace) -> None:
    assert passkey_sign_in(LiveClient(server.api.url), squatter.authenticator).status_code == 401
    refused = post(server, "/auth/login", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 401
    me = requests.get(f"{server.api.url}/auth/me", headers=bearer(squatter.token), timeout=10)
    assert me.status_code == 401


def test_a_google_sign_in_with_the_proven_address_starts_the_account_clean(server):
    email = unique("squatted")
    squatter = squat(server, email)

    browser = requests.Session()
    start = browser.get(f"{server.api.url}/auth/oauth/test/authorize?redirect_to=/", allow_redirects=False)
    callback = sign_in_at_provider(browser, start.headers["Location"], email, server.api.url)
    landed = browser.get(callback, allow_redirects=False)
    fragment = parse_qs(urlsplit(landed.headers["Location"]).fragment)
    # The squatter's TOTP is gone: the owner is not asked for the squatter's code.
    assert "csrf_token" in fragment and "mfa_token" not in fragment, fragment
    owner = browser.post(
        f"{server.api.url}/auth/refresh_token", headers={"X-CSRF-TOKEN": fragment["csrf_token"][0]}
    )
    assert owner.json()["user_id"] == squatter.user_id
    status = requests.get(
        f"{server.api.url}/auth/mfa", headers=bearer(owner.json()["access_token"]), timeout=10
    )
    assert status.json() == {"totp": False, "recovery_codes_left": 0, "passkeys": 0}

    assert_squatter_is_out(server, email, squatter)


def test_a_reset_link_of_a_never_verified_account_starts_it_clean(server):
    email = unique("squatted-reset")
    squatter = squat(server, email)

    assert post(server, "/auth/password_reset/request", json={"email": email}).status_code == 202
    token = link_token(wait_for_subject(server.smtp, email, "Reset your"), "reset-password")
    assert (
        post(server, "/auth/password_reset", json={"token": token, "new_password": NEW_PASSWORD}).status_code
        == 204
    )

    assert_squatter_is_out(server, email, squatter)
    owner = login(server, email, NEW_PASSWORD)  # one step: the squatter's TOTP went with the rest
    assert "access_token" in owner
    me = requests.get(f"{server.api.url}/auth/me", headers=bearer(owner["access_token"]), timeout=10)
    assert me.json()["email_verified"] is True


def change_password(server, email: str, body: dict) -> None:
    changed = post(
        server,
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(body["access_token"]),
    )
    assert changed.status_code == 204, changed.text


def next_mail(server, address: str, subject: str):
    """Wait for one more mail of ``subject`` to ``address`` than there is now (an address may get several)."""
    before = sum(subject in str(m["Subject"]) for m in server.smtp.messages_to(address))
    return lambda: wait_for_subject(server.smtp, address, subject, count=before + 1)


def reset_password(server, email: str, body: dict, new_password: str = NEW_PASSWORD) -> None:
    mail = next_mail(server, email, "Reset your")
    assert post(server, "/auth/password_reset/request", json={"email": email}).status_code == 202
    token = link_token(mail(), "reset-password")
    reset = post(server, "/auth/password_reset", json={"token": token, "new_password": new_password})
    assert reset.status_code == 204, reset.text


def sign_out_everywhere(server, email: str, body: dict) -> None:
    assert post(server, "/auth/logout_all", headers=bearer(body["access_token"])).status_code == 204


SECURITY_CHANGES = [change_password, reset_password, sign_out_everywhere]


@pytest.mark.parametrize("security_change", SECURITY_CHANGES)
def test_a_pending_email_change_link_dies_with_a_security_change(server, security_change):
    email, new_email = unique("mover"), unique("moved-to")
    body = register_and_login(server, email)
    requested = post(
        server, "/auth/email", json={"new_email": new_email}, headers=bearer(body["access_token"])
    )
    assert requested.status_code == 202, requested.text
    token = link_token(wait_for_subject(server.smtp, new_email, "Confirm your new email"), "confirm-email")

    security_change(server, email, body)

    refused = post(server, "/auth/email/confirm", json={"token": token})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_link", refused.text


@pytest.mark.parametrize("security_change", SECURITY_CHANGES)
def test_a_seed_cookie_dies_with_a_security_change(server, security_change):
    email = "from-seed@example.com"
    cookie = seed.create_refresh_token(SEED_USER)  # what the seed's frontend still holds
    time.sleep(1.1)  # the seed's tokens carry whole seconds
    security_change(server, email, login(server, email))
    if security_change is not sign_out_everywhere:  # the seed's password again, for the next case
        reset_password(server, email, {}, new_password=PASSWORD)

    browser = requests.Session()
    browser.cookies.set("refresh_token", cookie, domain="127.0.0.1", path="/")
    refused = browser.post(f"{server.api.url}/auth/refresh_token")
    assert refused.status_code == 401 and refused.json()["error"] == "session_ended", refused.text
    assert "refresh_token=" not in refused.headers.get("Set-Cookie", "")


def test_a_seed_cookie_signs_in_but_not_freshly(server):
    # Minted now, after every security change of the account so far.
    time.sleep(1.1)
    browser = requests.Session()
    browser.cookies.set("refresh_token", seed.create_refresh_token(SEED_USER), domain="127.0.0.1", path="/")
    opened = browser.post(f"{server.api.url}/auth/refresh_token")
    assert opened.status_code == 200, opened.text
    sensitive = post(server, "/auth/mfa/totp/setup", headers=bearer(opened.json()["access_token"]))
    assert sensitive.status_code == 401 and sensitive.json()["error"] == "fresh_signin_required"


def statuses_of(responses: list[requests.Response]) -> list[int]:
    return sorted(response.status_code for response in responses)


def test_twenty_parallel_resets_with_one_link_reset_once(server):
    email = unique("racer")
    register_and_login(server, email)
    assert post(server, "/auth/password_reset/request", json={"email": email}).status_code == 202
    token = link_token(wait_for_subject(server.smtp, email, "Reset your"), "reset-password")
    statuses = statuses_of(
        race(
            20,
            lambda _i: post(
                server, "/auth/password_reset", json={"token": token, "new_password": NEW_PASSWORD}
            ),
        )
    )
    assert statuses == [204] + [401] * 19


def test_parallel_uses_of_one_email_change_link_change_it_once(server):
    email, new_email = unique("racer-email"), unique("racer-new")
    body = register_and_login(server, email)
    post(server, "/auth/email", json={"new_email": new_email}, headers=bearer(body["access_token"]))
    token = link_token(wait_for_subject(server.smtp, new_email, "Confirm your new email"), "confirm-email")
    statuses = statuses_of(race(10, lambda _i: post(server, "/auth/email/confirm", json={"token": token})))
    assert statuses == [200] + [401] * 9
