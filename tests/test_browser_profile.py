"""Self-service in the reference frontend (examples/web/profile.js), in headless Chromium: edit
the profile, switch the language, change the email through the mailed link (re-authenticating
when the sign-in is stale), delete the account."""

from __future__ import annotations

import re
import sqlite3

import pytest

from tests.conftest import PASSWORD
from tests.support.mails import text_of, wait_for_subject
from tests.support.web import browser_api, screenshot, sign_up, status, unique, wait_status

pytestmark = pytest.mark.browser

FRESH_SECONDS = 60


@pytest.fixture(scope="module")
def api(web_origin, smtp_server, tmp_path_factory):
    """The API under gunicorn with real mail and links to the page's origin."""
    settings = {
        "FRONTEND_URL": web_origin,
        "FRESH_SIGNIN_SECONDS": str(FRESH_SECONDS),
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "MAIL_USE_TLS": "false",
        "RATELIMIT_REGISTER": "1000 per minute",
    }
    directory = tmp_path_factory.mktemp("browser-profile")
    with browser_api(directory, web_origin, settings, outbox_worker=True) as server:
        yield server


@pytest.fixture
def page(browser, web_origin, api):
    context = browser.new_context(user_agent="trikchi-browser-test/profile")
    page = context.new_page()
    page.goto(f"{web_origin}/index.html?api={api.url}")
    page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
    yield page
    context.close()


def message(page) -> str:
    return page.locator("#message").inner_text()


def test_edit_profile_and_switch_language(page):
    sign_up(page, unique("profile"))
    form = page.locator("#profile-form")
    form.locator("input[name=name]").fill("Zarina Karimova")
    form.locator("select[name=locale]").select_option("ru")
    form.locator("button").click()
    page.wait_for_function("() => document.querySelector('#profile-name').textContent === 'Zarina Karimova'")
    assert page.evaluate("document.documentElement.lang") == "ru"
    screenshot(page, "profile")
    page.reload()
    wait_status(page, "Signed in")
    assert form.locator("select[name=locale]").input_value() == "ru"
    # The server now answers this user in Russian.
    form.locator("input[name=name]").fill(" ")
    form.locator("button").click()
    page.wait_for_function("() => document.querySelector('#message').textContent !== ''")
    assert "Данные не прошли проверку." in message(page)


def test_change_email_with_reauthentication_and_the_mailed_link(page, web_origin, api, smtp_server):
    old, new = unique("browser-old"), unique("browser-new")
    sign_up(page, old)
    # The sign-in is no longer fresh: its session authenticated an hour ago, which the access
    # token of the page's silent refresh on reload carries.
    with sqlite3.connect(api.database) as connection:
        connection.execute(
            "UPDATE sessions SET auth_time = datetime(auth_time, '-1 hour')"
            " WHERE user_id = (SELECT id FROM users WHERE email = ?)",
            (old,),
        )
    page.reload()
    wait_status(page, "Signed in")
    page.locator("#email-form input[name=new_email]").fill(new)
    page.locator("#email-form button").click()
    reauth = page.locator("#reauth-form")
    reauth.wait_for(state="visible")
    reauth.locator("input[name=password]").fill(PASSWORD)
    reauth.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('new address')")
    assert status(page) == "Signed in"

    mail = wait_for_subject(smtp_server, new, "Confirm your new email")
    link = re.search(re.escape(web_origin) + r"/confirm-email\?token=\S+", text_of(mail)).group(0)
    page.goto(link)
    page.wait_for_function("() => document.querySelector('#result').dataset.result === 'confirmed'")
    assert new in page.locator("#result").inner_text()
    screenshot(page, "email-confirmed")
    wait_for_subject(smtp_server, old, "Your trikchi.uz email was changed")


def test_delete_account_through_the_page(page, browser, web_origin, api, smtp_server):
    email = unique("browser-delete")
    sign_up(page, email)
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#delete-account").click()
    wait_status(page, "Signed out")
    assert "deleted" in message(page)
    wait_for_subject(smtp_server, email, "Your trikchi.uz account was deleted")
    page.reload()
    wait_status(page, "Signed out")
    # The account is gone: signing in fails; the address can register again.
    page.locator("#login-form input[name=email]").fill(email)
    page.locator("#login-form input[name=password]").fill(PASSWORD)
    page.locator("#login-form button").click()
    page.wait_for_function("() => document.querySelector('#message').textContent !== ''")
    assert status(page) == "Signed out"
    sign_up(page, email)
