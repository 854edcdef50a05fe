"""Social sign-in through the reference frontend (examples/web) in headless Chromium: the whole
OpenID Connect code + PKCE flow against a real provider (Node's oidc-provider), the API under
gunicorn, and the Telegram widget's callback; with TOTP on, both end in the page's second step
(SPEC §13)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

import pyotp
import pytest

from tests.conftest import require_or_skip
from tests.support.oidc import OIDCProvider, node_available
from tests.support.postgres import free_port
from tests.support.web import browser_api, screenshot

pytestmark = pytest.mark.browser

BOT_TOKEN = "123456789:AAF-browser-test-bot-token"  # noqa: S105 - a test value


@pytest.fixture(scope="module")
def api_port():
    return free_port()


@pytest.fixture(scope="module")
def provider(api_port):
    if not node_available():
        require_or_skip("node or node_modules/oidc-provider missing (make node-deps)")
    server = OIDCProvider([f"http://127.0.0.1:{api_port}"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(web_origin, provider, api_port, tmp_path_factory):
    settings = {
        "FRONTEND_URL": web_origin,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_BOT_NAME": "trikchi_test_bot",
        **provider.environment(("test",)),
    }
    directory = tmp_path_factory.mktemp("browser-social")
    with browser_api(directory, web_origin, settings, port=api_port) as server:
        yield server


@pytest.fixture
def page(browser, web_origin, api):
    context = browser.new_context()
    # The widget's script comes from telegram.org, which the tests do not reach.
    context.route("https://telegram.org/**", lambda route: route.abort())
    page = context.new_page()
    page.goto(f"{web_origin}/index.html?" + urlencode({"api": api.url}))
    page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
    yield page
    context.close()


def wait_status(page, expected: str) -> None:
    page.wait_for_function(
        f"() => document.querySelector('#status').textContent === {expected!r}", timeout=15000
    )


def refresh_cookies(page) -> list[str]:
    """The names of the refresh and CSRF-refresh cookies the browser holds (HttpOnly ones too)."""
    return [cookie["name"] for cookie in page.context.cookies() if "refresh" in cookie["name"]]


def telegram_user(**fields) -> dict:
    """The widget's user object with these fields, signed for BOT_TOKEN as Telegram does."""
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    digest = hmac.new(hashlib.sha256(BOT_TOKEN.encode()).digest(), check.encode(), hashlib.sha256)
    return {**fields, "hash": digest.hexdigest()}


def enrol_totp(page) -> pyotp.TOTP:
    """Turn TOTP on through the signed-in page (its sign-in is fresh); the authenticator app."""
    page.locator("#totp-setup").click()
    page.wait_for_function("() => !document.querySelector('#totp-enrol').hidden")
    app = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    confirm = page.locator("#totp-confirm-form")
    # The previous step's code (accepted, ±1 step): the next step's stays free for the sign-in.
    confirm.locator("input[name=code]").fill(app.generate_otp(int(time.time()) // 30 - 1))
    confirm.locator("button").click()
    page.wait_for_function("() => document.querySelector('#mfa-status').textContent.includes(': on')")
    return app


def answer_second_step(page, app: pyotp.TOTP) -> None:
    """The page asks for the code, nobody is signed in yet; enter the next step's code."""
    page.wait_for_function("() => !document.querySelector('#mfa-form').hidden", timeout=15000)
    assert page.locator("#status").inner_text() == "Signed out"
    assert page.locator("#message").inner_text() == "Enter the code from your authenticator app."
    assert refresh_cookies(page) == []  # no session before the second factor
    page.locator("#mfa-form input[name=code]").fill(app.generate_otp(int(time.time()) // 30 + 1))
    page.locator("#mfa-form button").click()
    wait_status(page, "Signed in")
    assert page.locator("#mfa-form").is_hidden()
    assert refresh_cookies(page)  # the session's cookie, set by POST /auth/mfa/verify


def test_sign_in_with_the_provider_through_the_page(page, web_origin, provider):
    button = page.locator("#social-buttons a[data-provider=test]")
    button.wait_for()
    assert button.inner_text() == "Sign in with Test"
    button.click()
    page.wait_for_url(provider.issuer + "/**")
    page.locator("input[name=login]").fill("lola@example.com")
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]", has_text="Continue").click()  # consent
    page.wait_for_url(web_origin + "/**")
    wait_status(page, "Signed in")
    assert page.locator("#profile-email").inner_text() == "lola@example.com"
    assert page.locator("#identities li").count() == 1
    assert "test" in page.locator("#identities li").inner_text()
    # The fragment with the CSRF value is gone from the address bar; no token is readable.
    assert "#" not in page.url and "csrf_token" not in page.url
    cookies = page.evaluate("document.cookie")
    assert "refresh_token=" not in cookies.replace("csrf_refresh_token=", "")
    screenshot(page, "social-signed-in")

    # A reload stays signed in, like after a password sign-in.
    page.reload()
    wait_status(page, "Signed in")

    # The only way to sign in: unlinking it is refused, and the page says why.
    page.locator("#identities button.unlink").click()
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('last way')")
    assert page.locator("#identities li").count() == 1


def test_cancelling_at_the_provider_lands_signed_out_with_the_error(page, web_origin, provider):
    page.locator("#social-buttons a[data-provider=test]").click()
    page.wait_for_url(provider.issuer + "/**")
    page.get_by_text("[ Cancel ]").click()
    page.wait_for_url(web_origin + "/**")
    page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
    assert page.locator("#status").inner_text() == "Signed out"
    assert page.locator("#message").inner_text() == "The sign-in was cancelled at the provider."
    assert "error=" not in page.url


def test_telegram_widget_callback_signs_in(page):
    signed = telegram_user(id=42424242, first_name="Bobur", username="bobur", auth_date=int(time.time()))
    # The widget's script is there (from telegram.org, blocked here); it would call this.
    assert page.locator("#telegram-widget script").get_attribute("data-telegram-login") == "trikchi_test_bot"
    page.wait_for_function("() => typeof window.onTelegramAuth === 'function'")
    page.evaluate("(user) => window.onTelegramAuth(user)", signed)
    wait_status(page, "Signed in")
    assert page.locator("#profile-name").inner_text() == "Bobur"
    assert "telegram" in page.locator("#identities li").inner_text()


def test_provider_sign_in_with_totp_on_asks_for_the_code_on_the_page(page, web_origin, provider):
    page.locator("#social-buttons a[data-provider=test]").click()
    page.wait_for_url(provider.issuer + "/**")
    page.locator("input[name=login]").fill("mira@example.com")
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]", has_text="Continue").click()  # consent
    page.wait_for_url(web_origin + "/**")
    wait_status(page, "Signed in")
    app = enrol_totp(page)
    page.locator("#logout").click()
    wait_status(page, "Signed out")
    assert refresh_cookies(page) == []

    # Still signed in at the provider (its session and the consent): straight back to the page,
    # whose URL fragment now carries the second step instead of a CSRF value.
    fragments = []
    page.on("framenavigated", lambda frame: fragments.append(frame.url.partition("#")[2]))
    page.locator("#social-buttons a[data-provider=test]").click()
    page.wait_for_url(web_origin + "/**")
    answer_second_step(page, app)
    assert any(
        "mfa_token=" in fragment and "methods=totp%2Crecovery_code" in fragment for fragment in fragments
    )
    # The token is out of the address bar, and the session is a real one.
    assert "#" not in page.url and "mfa_token" not in page.url
    assert page.locator("#profile-email").inner_text() == "mira@example.com"
    assert page.evaluate("async () => (await window.trikchi.me()).email") == "mira@example.com"
    screenshot(page, "social-mfa-signed-in")
    page.reload()
    wait_status(page, "Signed in")


def test_telegram_sign_in_with_totp_on_asks_for_the_code_on_the_page(page):
    page.wait_for_function("() => typeof window.onTelegramAuth === 'function'")
    now = int(time.time())
    page.evaluate(
        "(user) => window.onTelegramAuth(user)",
        telegram_user(id=51515151, first_name="Dilnoza", auth_date=now - 1),
    )
    wait_status(page, "Signed in")
    app = enrol_totp(page)
    page.locator("#logout").click()
    wait_status(page, "Signed out")

    # A new widget payload (the first one signs in once): the second step, then the code.
    page.evaluate(
        "(user) => window.onTelegramAuth(user)",
        telegram_user(id=51515151, first_name="Dilnoza", auth_date=now),
    )
    answer_second_step(page, app)
    assert page.locator("#profile-name").inner_text() == "Dilnoza"
    assert page.evaluate("async () => (await window.trikchi.me()).name") == "Dilnoza"
