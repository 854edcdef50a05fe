"""The reference page's pretend shop in headless Chromium (SPEC §15): a visitor starts as a guest at
the first "Add to cart", and checks out by registering — the same user id before and after, so
the cart stays."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.support.web import browser_api, screenshot, status, unique, wait_status

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def api(web_origin, tmp_path_factory):
    settings = {"RATELIMIT_REGISTER": "1000 per minute", "RATELIMIT_GUEST": "1000 per minute"}
    with browser_api(tmp_path_factory.mktemp("browser-guests"), web_origin, settings) as server:
        yield server


@pytest.fixture
def page(browser, web_origin, api):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{web_origin}/index.html?api={api.url}")
    page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading…'")
    yield page
    context.close()


def cart(page) -> list[str]:
    return page.locator("#cart li").all_inner_texts()


def me(page) -> dict:
    return page.evaluate("() => window.trikchi.me()")


def add_to_cart(page, count: int) -> None:
    for _ in range(count):
        before = len(cart(page))
        page.locator("#add-to-cart").click()
        page.wait_for_function(f"() => document.querySelectorAll('#cart li').length === {before + 1}")


def test_a_guest_fills_a_cart_and_checks_out_keeping_its_id(page):
    assert status(page) == "Signed out" and cart(page) == []
    add_to_cart(page, 2)
    wait_status(page, "Guest")
    guest = me(page)
    assert guest["is_guest"] is True and guest["role"] == "guest"
    assert page.locator("#cart").get_attribute("data-user-id") == str(guest["id"])
    items = cart(page)
    assert len(items) == 2 and page.locator("#checkout-note").is_visible()
    screenshot(page, "guest-cart")

    page.reload()  # the guest survives a reload, its cart with it
    page.wait_for_function("() => document.querySelector('#status').textContent === 'Guest'")
    assert cart(page) == items

    checkout = page.locator("#register-form")
    assert checkout.locator("h2").inner_text() == "Check out: create an account"
    email = unique("checkout")
    checkout.locator("input[name=name]").fill("Ada Lovelace")
    checkout.locator("input[name=email]").fill(email)
    checkout.locator("input[name=password]").fill(PASSWORD)
    checkout.locator("button").click()
    wait_status(page, "Signed in")

    customer = me(page)
    assert customer["id"] == guest["id"]  # the same user id before and after
    assert (customer["is_guest"], customer["role"], customer["email"]) == (False, "customer", email)
    assert cart(page) == items and page.locator("#cart").get_attribute("data-user-id") == str(guest["id"])
    assert page.locator("#checkout-note").is_hidden()
    assert page.locator("#sessions li.current").count() == 1  # the guest's session went on
    screenshot(page, "guest-checked-out")

    page.reload()
    page.wait_for_function("() => document.querySelector('#status').textContent === 'Signed in'")
    assert me(page)["id"] == guest["id"] and cart(page) == items


def test_a_taken_email_at_checkout_keeps_the_guest_and_its_cart(page, api):
    email = unique("taken")
    body = {"name": "Bo", "email": email, "password": PASSWORD}
    assert page.request.post(f"{api.url}/auth/register", data=body).status == 201
    add_to_cart(page, 1)
    wait_status(page, "Guest")
    guest_id = me(page)["id"]
    checkout = page.locator("#register-form")
    checkout.locator("input[name=name]").fill("Ada")
    checkout.locator("input[name=email]").fill(email)
    checkout.locator("input[name=password]").fill(PASSWORD)
    checkout.locator("button").click()
    page.wait_for_function("() => document.querySelector('#message').textContent !== ''")
    assert "already registered" in page.locator("#message").inner_text()
    assert status(page) == "Guest" and me(page)["id"] == guest_id and len(cart(page)) == 1
