"""The reference page's phone sign-in (SPEC §14) in headless Chromium: the number, then the code
of the SMS, and the page is signed in."""

from __future__ import annotations

import pytest

from tests.conftest import make_app
from tests.support.sms import sms_code_for
from tests.support.web import browser_api, screenshot, status, wait_status
from trikchi.extensions import db

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def api(web_origin, tmp_path_factory):
    """The API under gunicorn, allowing the frontend's origin."""
    with browser_api(tmp_path_factory.mktemp("browser-phone"), web_origin, {}) as server:
        yield server


@pytest.fixture
def outbox(api):
    """An app on the API's database, to read the SMS it queued."""
    app = make_app(f"sqlite:///{api.database}")
    yield app
    with app.app_context():
        db.engine.dispose()


def test_signing_in_with_a_phone_number_and_the_sms_code(browser, web_origin, api, outbox):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{web_origin}/index.html?api={api.url}")
        wait_status(page, "Signed out")
        number = page.locator("#phone-form")
        number.locator("input[name=phone]").fill("90 123 45 67")
        number.locator("button").click()
        page.wait_for_function("() => !document.querySelector('#phone-code-form').hidden")
        screenshot(page, "phone-code")
        code = page.locator("#phone-code-form")
        code.locator("input[name=code]").fill(sms_code_for(outbox, "+998901234567"))
        code.locator("button").click()
        wait_status(page, "Signed in")
        assert page.locator("#profile-phone").inner_text() == "+998901234567"
        screenshot(page, "phone-signed-in")
        page.reload()
        page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
        assert status(page) == "Signed in"
    finally:
        context.close()


def test_a_wrong_code_is_said_and_nothing_signs_in(browser, web_origin, api, outbox):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{web_origin}/index.html?api={api.url}")
        wait_status(page, "Signed out")
        page.locator("#phone-form input[name=phone]").fill("+998 91 111 22 33")
        page.locator("#phone-form button").click()
        page.wait_for_function("() => !document.querySelector('#phone-code-form').hidden")
        right = sms_code_for(outbox, "+998911112233")
        page.locator("#phone-code-form input[name=code]").fill("000000" if right != "000000" else "111111")
        page.locator("#phone-code-form button").click()
        page.wait_for_function("() => document.querySelector('#message').textContent.includes('code')")
        assert status(page) == "Signed out"
    finally:
        context.close()
