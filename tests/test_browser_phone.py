"""The reference page's phone sign-in (SPEC §14) in headless Chromium: the number, then the code
of the SMS, and the page is signed in. The API runs under gunicorn with the real outbox worker
beside it, which sends the SMS to the Eskiz stand-in; the code is read from what it received."""

from __future__ import annotations

import pytest

from tests.support.sms import code_from_gateway
from tests.support.sms_gateways import Eskiz, eskiz_environment
from tests.support.web import browser_api, screenshot, status, wait_status

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def eskiz():
    gateway = Eskiz().start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def api(web_origin, eskiz, tmp_path_factory):
    """The API under gunicorn, allowing the frontend's origin; SMS leave through the outbox worker
    to the Eskiz stand-in."""
    directory = tmp_path_factory.mktemp("browser-phone")
    with browser_api(directory, web_origin, eskiz_environment(eskiz), outbox_worker=True) as server:
        yield server


def test_signing_in_with_a_phone_number_and_the_sms_code(browser, web_origin, api, eskiz):
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
        code.locator("input[name=code]").fill(code_from_gateway(eskiz, "+998901234567"))
        code.locator("button").click()
        wait_status(page, "Signed in")
        assert page.locator("#profile-phone").inner_text() == "+998901234567"
        screenshot(page, "phone-signed-in")
        page.reload()
        page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
        assert status(page) == "Signed in"
    finally:
        context.close()


def test_a_wrong_code_is_said_and_nothing_signs_in(browser, web_origin, api, eskiz):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{web_origin}/index.html?api={api.url}")
        wait_status(page, "Signed out")
        page.locator("#phone-form input[name=phone]").fill("+998 91 111 22 33")
        page.locator("#phone-form button").click()
        page.wait_for_function("() => !document.querySelector('#phone-code-form').hidden")
        right = code_from_gateway(eskiz, "+998911112233")
        page.locator("#phone-code-form input[name=code]").fill("000000" if right != "000000" else "111111")
        page.locator("#phone-code-form button").click()
        page.wait_for_function("() => document.querySelector('#message').textContent.includes('code')")
        assert status(page) == "Signed out"
    finally:
        context.close()
