"""Passkeys and TOTP through the reference frontend (examples/web) in headless Chromium.

Passkeys use Chromium's virtual authenticator (CDP ``WebAuthn.addVirtualAuthenticator``: CTAP2,
internal transport, resident keys, user verification on). WebAuthn needs a secure context and
an RP ID that is a domain, not an IP address: the page and the API are opened as
``http://localhost:<port>`` (a secure context), with ``localhost`` mapped to 127.0.0.1.
"""

from __future__ import annotations

import sqlite3
import time

import pyotp
import pytest

from tests.conftest import require_or_skip
from tests.support.web import (
    browser_api,
    chromium,
    chromium_executable,
    reference_page,
    screenshot,
    sign_in,
    sign_up,
    status,
    unique,
    wait_status,
)

pytestmark = pytest.mark.browser

VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@pytest.fixture(scope="module")
def web_origin():
    """examples/web on its own port, opened as http://localhost:<port>."""
    with reference_page("localhost") as origin:
        yield origin


@pytest.fixture(scope="module")
def api(web_origin, tmp_path_factory):
    """The API under gunicorn: relying party ``localhost``, the page's origin allowed."""
    settings = {
        "WEBAUTHN_RP_ID": "localhost",
        "WEBAUTHN_ORIGINS": web_origin,
        "RATELIMIT_REGISTER": "1000 per minute",
    }
    with browser_api(tmp_path_factory.mktemp("browser-passkeys"), web_origin, settings) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (as in test_browser.py), localhost pinned to 127.0.0.1 where the servers listen."""
    executable = chromium_executable()
    if executable is None:
        require_or_skip("Chromium not found (apt-get install chromium)")
    with chromium(executable, ["--host-resolver-rules=MAP localhost 127.0.0.1"]) as browser:
        yield browser


@pytest.fixture
def open_page(browser, web_origin, api):
    """A new browser (context) on the page, talking to the API as http://localhost:<port>."""
    contexts = []
    api_url = f"http://localhost:{api.port}"

    def open_():
        context = browser.new_context(user_agent=f"trikchi-passkey-test/{len(contexts)}")
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{web_origin}/index.html?api={api_url}")
        page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
        assert page.evaluate("() => window.isSecureContext") is True
        return page

    yield open_
    for context in contexts:
        context.close()


def add_authenticator(page) -> tuple[object, str]:
    """A virtual platform authenticator for this page; the CDP session and its id."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    result = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
    return cdp, result["authenticatorId"]


def add_passkey(page, name: str) -> None:
    page.locator("#passkey-name").fill(name)
    page.locator("#passkey-add").click()
    page.wait_for_function("() => document.querySelector('#message').textContent === 'Passkey added.'")
    page.wait_for_function("() => document.querySelectorAll('#passkeys li').length === 1")


def passkey_sign_in(page) -> None:
    page.locator("#passkey-sign-in").click()


def sign_out(page) -> None:
    page.locator("#logout").click()
    wait_status(page, "Signed out")


def events(api, type_: str) -> list[str]:
    with sqlite3.connect(api.database) as connection:
        return [
            row[0] for row in connection.execute("SELECT details FROM auth_events WHERE type = ?", (type_,))
        ]


def test_register_a_passkey_sign_out_and_sign_in_with_it(open_page, api):
    page = open_page()
    cdp, authenticator = add_authenticator(page)
    email = unique("passkey")
    sign_up(page, email)
    add_passkey(page, "Test laptop")
    assert "Test laptop" in page.locator("#passkeys li").inner_text()
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(stored) == 1 and stored[0]["isResidentCredential"] is True and stored[0]["rpId"] == "localhost"
    screenshot(page, "passkey-added")

    sign_out(page)
    passkey_sign_in(page)
    wait_status(page, "Signed in")
    assert page.locator("#profile-email").inner_text() == email
    assert "last used" in page.locator("#passkeys li").inner_text()
    assert any('"passkey"' in details for details in events(api, "login_succeeded"))
    screenshot(page, "passkey-signed-in")


def test_a_cloned_passkey_whose_counter_does_not_grow_is_refused(open_page, api):
    original = open_page()
    cdp, authenticator = add_authenticator(original)
    sign_up(original, unique("clone"))
    add_passkey(original, "Original")
    sign_out(original)
    passkey_sign_in(original)  # the stored counter grows past the clone's
    wait_status(original, "Signed in")
    (credential,) = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert credential["signCount"] >= 1

    thief = open_page()
    thief_cdp, thief_authenticator = add_authenticator(thief)
    thief_cdp.send(
        "WebAuthn.addCredential",
        {"authenticatorId": thief_authenticator, "credential": {**credential, "signCount": 0}},
    )
    before = len(events(api, "passkey_counter_regressed"))
    passkey_sign_in(thief)
    thief.wait_for_function("() => document.querySelector('#message').textContent.includes('passkey')")
    assert status(thief) == "Signed out"
    assert len(events(api, "passkey_counter_regressed")) == before + 1
    screenshot(thief, "passkey-clone-refused")

    # The genuine authenticator still signs in: its counter keeps growing.
    sign_out(original)
    passkey_sign_in(original)
    wait_status(original, "Signed in")


def test_set_up_totp_then_sign_in_with_a_code(open_page):
    page = open_page()
    email = unique("totp")
    sign_up(page, email)
    page.locator("#totp-setup").click()
    page.wait_for_function("() => !document.querySelector('#totp-enrol').hidden")
    assert page.locator("#totp-qr").get_attribute("src").startswith("data:image/svg+xml")
    # The QR code renders (an SVG document the browser decodes).
    page.wait_for_function("() => document.querySelector('#totp-qr').complete")
    assert page.evaluate("() => document.querySelector('#totp-qr').naturalWidth") > 0
    app = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    screenshot(page, "totp-setup")
    confirm = page.locator("#totp-confirm-form")
    confirm.locator("input[name=code]").fill(app.now())
    confirm.locator("button").click()
    page.wait_for_function("() => document.querySelectorAll('#recovery-codes li').length === 10")
    page.wait_for_function("() => document.querySelector('#mfa-status').textContent.includes(': on')")
    assert "10 recovery codes left" in page.locator("#mfa-status").inner_text()
    recovery = page.locator("#recovery-codes li").first.inner_text()

    other = open_page()  # another browser: password, then the code
    form = other.locator("#login-form")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill("correct horse battery staple")
    form.locator("button").click()
    other.wait_for_function("() => !document.querySelector('#mfa-form').hidden")
    assert status(other) == "Signed out"
    other.locator("#mfa-form input[name=code]").fill(recovery)
    other.locator("#mfa-form button").click()
    wait_status(other, "Signed in")
    assert other.locator("#profile-email").inner_text() == email
    # A third browser with a TOTP code.
    third = open_page()
    form = third.locator("#login-form")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill("correct horse battery staple")
    form.locator("button").click()
    third.wait_for_function("() => !document.querySelector('#mfa-form').hidden")
    third.locator("#mfa-form input[name=code]").fill(app.at(time.time() + 30))  # the next step's code
    third.locator("#mfa-form button").click()
    wait_status(third, "Signed in")


def test_the_password_sign_in_without_a_second_factor_is_unchanged(open_page):
    page = open_page()
    email = unique("plain")
    sign_up(page, email)
    sign_out(page)
    sign_in(page, email)
    assert page.locator("#mfa-form").is_hidden()
