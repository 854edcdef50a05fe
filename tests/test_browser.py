"""The reference frontend (examples/web) in a real headless Chromium, on its own origin."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.support.web import browser_api, screenshot, sign_in, sign_up, status, unique, wait_status

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def api(web_origin, tmp_path_factory):
    """The API under gunicorn, allowing the frontend's origin, with 4-second access tokens."""
    settings = {"ACCESS_TOKEN_SECONDS": "4", "RATELIMIT_REGISTER": "1000 per minute"}
    with browser_api(tmp_path_factory.mktemp("browser"), web_origin, settings) as server:
        yield server


@pytest.fixture
def open_page(browser, web_origin, api):
    contexts = []

    def open_(context=None):
        if context is None:
            context = browser.new_context(user_agent=f"trikchi-browser-test/{len(contexts)}")
            contexts.append(context)
        page = context.new_page()
        page.goto(f"{web_origin}/index.html?api={api.url}")
        page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
        return page

    yield open_
    for context in contexts:
        context.close()


def test_sign_up_and_sign_in_through_the_page(open_page):
    page = open_page()
    assert status(page) == "Signed out"
    screenshot(page, "signed-out")
    email = unique("ada")
    sign_up(page, email)
    assert page.locator("#profile-email").inner_text() == email
    assert page.locator("#sessions li.current").count() == 1
    cookies = page.evaluate("document.cookie")
    assert "refresh_token=" not in cookies.replace("csrf_refresh_token=", "")
    screenshot(page, "signed-in")

    other = open_page()  # a second browser, signing in with the form
    sign_in(other, email)
    assert "refresh_token=" not in other.evaluate("document.cookie").replace("csrf_refresh_token=", "")


def test_reload_keeps_the_user_signed_in(open_page):
    page = open_page()
    sign_up(page, unique("reload"))
    page.reload()
    page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
    assert status(page) == "Signed in"
    assert page.locator("#profile-name").inner_text() == "Ada Lovelace"


def test_two_tabs_refreshing_at_the_same_moment_both_stay_signed_in(open_page):
    first = open_page()
    sign_up(first, unique("tabs"))
    second = open_page(first.context)
    assert status(second) == "Signed in"
    for page in (first, second):
        page.evaluate("() => { window.__refreshed = window.trikchi.refresh(); }")
    assert first.evaluate("() => window.__refreshed") is True
    assert second.evaluate("() => window.__refreshed") is True
    for page in (first, second):
        page.locator("#reload-profile").click()
        page.wait_for_timeout(300)
        assert status(page) == "Signed in" and page.locator("#message").inner_text() == ""
    first.reload()
    first.wait_for_function("() => document.querySelector('#status').textContent === 'Signed in'")


def test_ending_a_session_signs_the_other_browser_out_at_its_next_refresh(open_page):
    email = unique("end")
    laptop = open_page()
    sign_up(laptop, email)
    phone = open_page()
    sign_in(phone, email)
    laptop.locator("#reload-profile").click()
    laptop.wait_for_function("() => document.querySelectorAll('#sessions li').length === 2")
    laptop.locator("#sessions li:not(.current) button.end-session").click()
    laptop.wait_for_function("() => document.querySelectorAll('#sessions li').length === 1")
    assert phone.evaluate("() => window.trikchi.refresh()") is False
    wait_status(phone, "Signed out")
    assert status(laptop) == "Signed in"


def test_sign_out_then_reload_shows_signed_out(open_page):
    page = open_page()
    sign_up(page, unique("out"))
    page.locator("#logout").click()
    wait_status(page, "Signed out")
    page.reload()
    page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
    assert status(page) == "Signed out"


def test_an_expired_access_token_is_renewed_without_the_user_noticing(open_page):
    page = open_page()
    refreshes = []
    page.on(
        "request", lambda request: refreshes.append(request.url) if "refresh_token" in request.url else None
    )
    sign_up(page, unique("expiry"))
    page.wait_for_timeout(6000)  # the 4-second access token has expired (and been renewed) meanwhile
    page.locator("#reload-profile").click()
    page.wait_for_timeout(500)
    assert status(page) == "Signed in"
    assert page.locator("#message").inner_text() == ""
    assert refreshes, "the client never renewed its access token"


def test_password_change_through_the_page_signs_other_devices_out(open_page):
    email = unique("pw")
    laptop = open_page()
    sign_up(laptop, email)
    phone = open_page()
    sign_in(phone, email)
    form = laptop.locator("#password-form")
    form.locator("input[name=current]").fill(PASSWORD)
    form.locator("input[name=new]").fill("a fresh new secret")
    form.locator("button").click()
    laptop.wait_for_function(
        "() => document.querySelector('#message').textContent.includes('Password changed')"
    )
    screenshot(laptop, "password-changed")
    assert phone.evaluate("() => window.trikchi.refresh()") is False
    wait_status(phone, "Signed out")
    weak = laptop.locator("#password-form")
    weak.locator("input[name=current]").fill("a fresh new secret")
    weak.locator("input[name=new]").fill("password1")
    weak.locator("button").click()
    laptop.wait_for_function("() => document.querySelector('#message').textContent.includes('new_password')")
