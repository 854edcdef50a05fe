"""The staff console (SPEC §17) in headless Chromium, served by a live trikchi on its own origin.

One server for the module (gunicorn, 2 workers, with the outbox worker; role changes go out as
webhooks to a receiver in this process, one attempt each), opened as ``http://localhost:<port>``
(a secure context, for passkeys). An admin with TOTP signs in once, through the console, and the
tests use that browser. Screenshots go to tests/artifacts/console/.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import PASSWORD, require_or_skip
from tests.support.console import (
    WATCH_CSP,
    api_login,
    chart_table,
    open_console,
    query,
    refresh,
    screenshot,
    sign_in,
    state,
    wait_page,
    wait_state,
)
from tests.support.live import bearer, enrol_totp, next_code
from tests.support.postgres import free_port
from tests.support.web import browser_api, chromium, chromium_executable, unique
from tests.support.webhooks import SECRET, Receiver

pytestmark = pytest.mark.browser

ADMIN = "console-admin@example.com"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@pytest.fixture(scope="module")
def receiver():
    """Webhook receiver: refuses (500) until told to accept."""
    box = {"accept": False}
    server = Receiver(answer=lambda _id, _attempt: 200 if box["accept"] else 500).start()
    server.box = box
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory, receiver):
    port = free_port()
    origin = f"http://localhost:{port}"
    settings = {
        "RATELIMIT_ENABLED": "false",
        # Short access tokens: the console renews them every few seconds all along the module.
        "ACCESS_TOKEN_SECONDS": "6",
        "WEBAUTHN_RP_ID": "localhost",
        "WEBAUTHN_ORIGINS": origin,
        "WEBHOOK_URLS": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_EVENTS": "role_changed",
        "WEBHOOK_MAX_ATTEMPTS": "1",
    }
    with browser_api(
        tmp_path_factory.mktemp("console"), origin, settings, port=port, outbox_worker=True
    ) as server:
        server.origin = origin
        yield server


@pytest.fixture(scope="module")
def browser():
    executable = chromium_executable()
    if executable is None:
        require_or_skip("Chromium not found (apt-get install chromium)")
    with chromium(executable, ["--host-resolver-rules=MAP localhost 127.0.0.1"]) as browser:
        yield browser


def register(api, email: str, name: str = "Ada Lovelace") -> int:
    response = requests.post(
        f"{api.url}/auth/register", json={"name": name, "email": email, "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def new_context(browser, api, requests_seen: list[str], **options):
    """A browser (context) that records every request it makes and every CSP violation."""
    context = browser.new_context(**options)
    context.add_init_script(WATCH_CSP)
    context.on("request", lambda request: requests_seen.append(request.url))
    return context


@pytest.fixture(scope="module")
def seen() -> list[str]:
    """Every URL any console browser of this module asked for."""
    return []


@pytest.fixture(scope="module")
def admin(browser, api, seen):
    """The admin's browser: created with the CLI, TOTP set up over the API, then signed in through
    the console with the password and a code (typed, Enter to submit)."""
    register(api, ADMIN, name="Console Admin")
    result = api.flask("users", "set-role", ADMIN, "admin")
    assert result.returncode == 0, result.stderr
    token = requests.post(
        f"{api.url}/auth/login", json={"email": ADMIN, "password": PASSWORD}, timeout=10
    ).json()["access_token"]
    authenticator = enrol_totp(api, token)

    context = new_context(browser, api, seen, user_agent="console-admin-browser")
    page = open_console(context, api.origin)
    assert state(page) == "signed-out"
    screenshot(page, "01-sign-in")
    sign_in(page, ADMIN)
    wait_state(page, "second-step")
    screenshot(page, "02-second-step")
    code = page.locator("#mfa-form input[name=code]")
    assert page.evaluate("() => document.activeElement.name") == "code"
    code.fill(next_code(authenticator))
    code.press("Enter")
    wait_state(page, "signed-in")
    wait_page(page, "overview")
    page.signed_in_with = "totp"
    yield page
    context.close()


def go(page, hash_: str, name: str) -> None:
    page.evaluate(f"() => {{ location.hash = {hash_!r}; }}")
    wait_page(page, name)


def test_the_console_is_served_with_a_strict_csp_and_nothing_inline(api):
    page = requests.get(f"{api.url}/console/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == CONSOLE_CSP
    assert page.headers["X-Frame-Options"] == "DENY"
    assert (
        "<script>" not in page.text
        and "style=" not in page.text
        and " on" not in page.text.split("<body")[1].split(">")[0]
    )
    for asset, kind in (("console.js", "javascript"), ("console.css", "text/css")):
        response = requests.get(f"{api.url}/console/{asset}", timeout=10)
        assert response.status_code == 200 and kind in response.headers["Content-Type"]
        assert response.headers["Content-Security-Policy"] == CONSOLE_CSP
    assert (
        requests.get(f"{api.url}/console", allow_redirects=False, timeout=10)
        .headers["Location"]
        .endswith("/console/")
    )
    missing = requests.get(f"{api.url}/console/nothing.js", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    # The API keeps its own policy.
    assert (
        requests.get(f"{api.url}/healthz", timeout=10)
        .headers["Content-Security-Policy"]
        .startswith("default-src 'none'; frame-ancestors")
    )


def test_an_admin_signs_in_with_totp_and_sees_the_overview(admin):
    assert state(admin) == "signed-in"
    assert admin.locator("#nav a[aria-current=page]").inner_text() in (
        "Overview",
        "Обзор",
        "Umumiy ko‘rinish",
    )
    assert admin.locator("table.chart-data[data-chart=sign-ins]").count() == 1
    # The access token is in memory only: nothing in storage, the refresh cookie unreadable.
    assert (
        admin.evaluate("() => Object.keys(localStorage).filter((k) => !k.startsWith('trikchi.console.'))")
        == []
    )
    assert "refresh_token=" not in admin.evaluate("document.cookie").replace("csrf_refresh_token=", "")
    screenshot(admin, "03-overview")


def test_find_a_customer_by_email_and_revoke_one_of_their_sessions(admin, api):
    email = unique("shopper")
    customer_id = register(api, email, name="Shopper Karimova")
    laptop = api_login(api.url, email, "shopper-laptop")
    phone = api_login(api.url, email, "shopper-phone")

    go(admin, "#/users", "users")
    search = admin.locator("#user-search input[name=q]")
    search.fill(email)
    search.press("Enter")  # the form submits with Enter
    row = f"#users-table tr[data-user-id='{customer_id}']"
    admin.wait_for_function(f"() => location.hash.includes('q=') && document.querySelector({row!r})")
    wait_page(admin, "users")
    assert admin.locator("#users-table tbody tr").count() == 1
    screenshot(admin, "04-users-search")
    admin.locator(f"#users-table tr[data-user-id='{customer_id}'] a").click()
    wait_page(admin, "user")
    assert email in admin.locator("#profile").inner_text()
    assert admin.locator("#sessions-table tbody tr").count() == 2
    screenshot(admin, "05-user")

    (laptop_session,) = query(
        api.database,
        "SELECT id FROM sessions WHERE user_agent = 'shopper-laptop' AND user_id = ?",
        customer_id,
    )
    admin.locator(f"#sessions-table tr[data-session-id='{laptop_session[0]}'] button.revoke").click()
    admin.wait_for_function("() => document.querySelectorAll('#sessions-table tbody tr').length === 1")
    wait_page(admin, "user")
    # The revoked device's next refresh fails; the other device goes on.
    refused = refresh(laptop, api.url)
    assert refused.status_code == 401 and refused.json()["error"] == "session_ended"
    assert refresh(phone, api.url).status_code == 200
    (event,) = query(
        api.database,
        "SELECT details FROM auth_events WHERE type = 'session_revoked' AND session_id = ?",
        laptop_session[0],
    )
    assert (
        json.loads(event[0])["by"] == query(api.database, "SELECT id FROM users WHERE email = ?", ADMIN)[0][0]
    )


def test_search_by_id_and_filters(admin, api):
    email = unique("filter")
    user_id = register(api, email, name="Filter Person")
    go(admin, f"#/users?q={user_id}", "users")
    assert admin.locator(f"#users-table tr[data-user-id='{user_id}']").count() == 1
    go(admin, "#/users?role=admin", "users")
    roles = admin.locator("#users-table tbody tr td:nth-child(4)").all_inner_texts()
    assert roles and set(roles) == {
        admin.evaluate("() => document.querySelector('#users-table tbody tr td:nth-child(4)').textContent")
    }
    assert admin.locator(f"#users-table tr[data-user-id='{user_id}']").count() == 0


def test_change_a_role_then_retry_the_dead_webhook_it_made(admin, api, receiver):
    email = unique("promoted")
    user_id = register(api, email, name="Soon Staff")
    go(admin, f"#/users/{user_id}", "user")
    admin.locator("#role-form select[name=role]").select_option("admin")
    admin.locator("#role-form button").click()
    admin.wait_for_function("() => document.querySelector('#user-messages .note')")
    wait_page(admin, "user")
    assert query(api.database, "SELECT role FROM users WHERE id = ?", user_id) == [("admin",)]
    assert "admin" in admin.locator("#profile").inner_text()

    # The role_changed webhook: refused once by the receiver, dead after its one attempt.
    def dead_delivery():
        rows = query(
            api.database,
            "SELECT o.id FROM outbox o JOIN auth_events e ON e.id = o.event_id "
            "WHERE o.status = 'dead' AND e.type = 'role_changed' AND e.user_id = ?",
            user_id,
        )
        return rows[0][0] if rows else None

    deadline = time.monotonic() + 30
    while dead_delivery() is None:
        assert time.monotonic() < deadline, "the webhook never died"
        time.sleep(0.1)
    delivery_id = dead_delivery()

    go(admin, "#/deliveries", "deliveries")
    row = admin.locator(f"#deliveries-table tr[data-delivery-id='{delivery_id}']")
    assert row.get_attribute("data-status") == "dead"
    screenshot(admin, "06-deliveries-dead")
    receiver.box["accept"] = True
    row.locator("button.retry").click()
    admin.wait_for_function("() => document.querySelector('#delivery-messages .note')")
    deadline = time.monotonic() + 30
    while query(api.database, "SELECT status FROM outbox WHERE id = ?", delivery_id) != [("sent",)]:
        assert time.monotonic() < deadline, "the retried webhook was never sent"
        time.sleep(0.1)
    assert any(r.payload and r.payload["type"] == "role_changed" for r in receiver.delivered().values())
    go(admin, "#/deliveries?status=sent", "deliveries")
    assert (
        admin.locator(f"#deliveries-table tr[data-delivery-id='{delivery_id}']").get_attribute("data-status")
        == "sent"
    )


def test_deactivate_and_activate(admin, api):
    email = unique("sleepy")
    user_id = register(api, email)
    device = api_login(api.url, email, "sleepy-device")
    go(admin, f"#/users/{user_id}", "user")
    admin.locator("#toggle-active").click()
    admin.wait_for_function("() => document.querySelector('#user-messages .note')")
    wait_page(admin, "user")
    assert query(api.database, "SELECT is_active FROM users WHERE id = ?", user_id) == [(0,)]
    assert refresh(device, api.url).status_code == 401
    admin.locator("#toggle-active").click()
    admin.wait_for_function("() => document.querySelector('#user-messages .note')")
    assert query(api.database, "SELECT is_active FROM users WHERE id = ?", user_id) == [(1,)]


def test_the_audit_log_filters_by_user_and_type(admin, api):
    email = unique("audited")
    user_id = register(api, email)
    api_login(api.url, email, "audited-device")
    go(admin, f"#/audit?user_id={user_id}&type=login_succeeded", "audit")
    rows = admin.locator("#audit-table tbody tr")
    assert rows.count() == 1 and "login_succeeded" in rows.first.inner_text()
    screenshot(admin, "07-audit")


def test_the_overview_draws_what_happened(admin, api):
    """Known sign-ins, refusals and registrations since the last look: the charts' numbers grew by them."""
    go(admin, "#/", "overview")
    before = chart_table(admin, "sign-ins")
    registrations_before = chart_table(admin, "registrations")
    sessions_before = chart_table(admin, "active-sessions")
    today = max(before) if before else max(registrations_before)

    emails = [unique("counted") for _ in range(2)]
    for email in emails:
        register(api, email)
    for email in emails * 2:  # 4 password sign-ins, 4 sessions
        api_login(api.url, email, "counted-device")
    for _ in range(3):  # 3 refused
        wrong = requests.post(
            f"{api.url}/auth/login", json={"email": emails[0], "password": "not it at all"}, timeout=10
        )
        assert wrong.status_code == 401

    admin.reload()
    wait_state(admin, "signed-in")  # back through the refresh cookie alone
    wait_page(admin, "overview")
    after = chart_table(admin, "sign-ins")
    day_before = before.get(today, {})
    assert after[today]["password:succeeded"] - day_before.get("password:succeeded", 0) == 4
    assert after[today]["password:failed"] - day_before.get("password:failed", 0) == 3
    assert (
        chart_table(admin, "registrations")[today]["registrations"]
        - registrations_before[today]["registrations"]
        == 2
    )
    assert (
        chart_table(admin, "active-sessions")[today]["active_sessions"]
        - sessions_before[today]["active_sessions"]
        == 4
    )
    assert chart_table(admin, "sms")[today]["sms_sent"] == 0
    assert len(after) == 30
    # The charts are drawn (canvas), beside their tables.
    assert admin.locator("figure[data-chart=sign-ins] canvas").count() >= 1
    screenshot(admin, "08-overview-after")


def test_a_customer_sees_only_a_refusal_in_their_language(browser, api, seen):
    email = unique("nosy")
    register(api, email)
    context = new_context(browser, api, seen, user_agent="nosy-browser", locale="uz-UZ")
    page = open_console(context, api.origin)
    assert page.evaluate("() => document.documentElement.lang") == "uz"
    sign_in(page, email)
    wait_state(page, "refused")
    text = page.locator("#refusal").inner_text()
    assert "(forbidden)" in text and "Ruxsat yo‘q" in text
    # The API's own 403 message, in the console's language (the console sends Accept-Language).
    customer = requests.post(f"{api.url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
    refusal = requests.get(
        f"{api.url}/admin/users",
        headers={**bearer(customer.json()["access_token"]), "Accept-Language": "uz"},
        timeout=10,
    ).json()
    assert refusal["error"] == "forbidden" and refusal["message"] in text
    assert page.locator("#nav").is_hidden()
    screenshot(page, "09-refused")
    # Signed out again: no refresh cookie left, and a refresh is refused.
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert not cookies.get("refresh_token")
    answer = page.evaluate(
        "async () => (await fetch('/auth/refresh_token',"
        " {method: 'POST', headers: {'X-CSRF-TOKEN': 'x'}})).status"
    )
    assert answer == 401
    context.close()


def test_the_language_switch_and_a_narrow_screen(admin):
    page = admin.context.new_page()  # another tab of the admin's browser: signed in on load
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(admin.url.split("#")[0])
    wait_state(page, "signed-in")
    wait_page(page, "overview")
    page.locator("#lang").select_option("ru")
    wait_page(page, "overview")
    assert page.evaluate("() => document.documentElement.lang") == "ru"
    assert "Пользователи" in page.locator("#nav").inner_text()
    for hash_, name in (
        ("#/", "overview"),
        ("#/users", "users"),
        ("#/audit", "audit"),
        ("#/deliveries", "deliveries"),
    ):
        go(page, hash_, name)
        # Nothing wider than the screen: tables scroll inside their own boxes.
        wide = page.evaluate(
            "() => [...document.querySelectorAll('body *')]"
            ".filter((e) => e.getBoundingClientRect().right > 361)"
            ".map((e) => e.tagName + '.' + e.className + '#' + e.id).slice(0, 8)"
        )
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360, (name, wide)
        screenshot(page, f"10-narrow-{name}")
    # Keyboard: Tab reaches the controls, and the focused one shows it.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => document.activeElement.tagName + ':' + getComputedStyle(document.activeElement).outlineStyle"
    )
    assert focused.split(":")[0] in ("A", "SELECT", "BUTTON", "INPUT") and focused.split(":")[1] != "none"
    page.locator("#lang").select_option("en")
    page.close()


def test_an_admin_with_a_passkey_signs_in_with_it(browser, api, seen):
    """A passkey (a second factor for MFA_REQUIRED_ROLES, and a sign-in of its own) opens the console."""
    email = unique("passkey-admin")
    register(api, email, name="Passkey Admin")
    token = requests.post(
        f"{api.url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    ).json()["access_token"]
    context = new_context(browser, api, seen, user_agent="passkey-admin-browser")
    page = open_console(context, api.origin)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    options = requests.post(
        f"{api.url}/auth/passkeys/registration/options", headers=bearer(token), timeout=10
    ).json()
    credential = page.evaluate(
        """async (options) => {
          const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
          const created = await navigator.credentials.create({publicKey});
          return created.toJSON();
        }""",
        options,
    )
    added = requests.post(
        f"{api.url}/auth/passkeys/registration/verify", json=credential, headers=bearer(token), timeout=10
    )
    assert added.status_code in (200, 201), added.text
    assert api.flask("users", "set-role", email, "admin").returncode == 0
    page.locator("#passkey-sign-in").click()
    wait_state(page, "signed-in")
    wait_page(page, "overview")
    (method,) = query(
        api.database,
        "SELECT method FROM auth_events WHERE type = 'login_succeeded'"
        " AND user_id = (SELECT id FROM users WHERE email = ?) ORDER BY id DESC LIMIT 1",
        email,
    )
    assert method == ("passkey",)
    # Sign-out ends the session: a reload lands on the sign-in form.
    page.locator("#sign-out").click()
    wait_state(page, "signed-out")
    page.reload()
    page.wait_for_function("() => document.body.dataset.state !== 'loading'")
    assert state(page) == "signed-out"
    context.close()


def test_the_access_token_is_renewed_before_it_expires(admin, api):
    """6-second access tokens: the console refreshes on its own (CSRF header included) ahead of expiry,
    so that its calls never meet an expired token."""
    refreshes, refused = [], []
    admin.on(
        "request", lambda r: refreshes.append(r.headers) if r.url.endswith("/auth/refresh_token") else None
    )
    admin.on("response", lambda r: refused.append(r.url) if r.status == 401 else None)
    admin.wait_for_timeout(9000)
    assert refreshes and all(headers.get("x-csrf-token") for headers in refreshes)
    go(admin, "#/users", "users")
    assert state(admin) == "signed-in" and not refused


def test_find_a_customer_by_phone(admin, api):
    email = unique("phoned")
    user_id = register(api, email)
    query(api.database, "UPDATE users SET phone = '+998901234567', phone_verified = 1 WHERE id = ?", user_id)
    go(admin, "#/users", "users")
    search = admin.locator("#user-search input[name=q]")
    search.fill("90 123 45 67")  # as people write it
    search.press("Enter")
    row = f"#users-table tr[data-user-id='{user_id}']"
    admin.wait_for_function(f"() => location.hash.includes('q=') && document.querySelector({row!r})")
    wait_page(admin, "users")
    assert "+998901234567" in admin.locator(row).inner_text()
    admin.locator(f"{row} a").click()
    wait_page(admin, "user")
    assert "+998901234567" in admin.locator("#profile").inner_text()
    screenshot(admin, "12-user-with-phone")


def test_ban_and_unban(admin, api):
    email = unique("fraud")
    user_id = register(api, email)
    device = api_login(api.url, email, "fraud-device")
    go(admin, f"#/users/{user_id}", "user")
    admin.locator("#ban-form input[name=until]").fill("2099-01-01T12:00")  # UTC, as the label says
    admin.locator("#ban-form input[name=reason]").fill("card fraud")
    admin.locator("#ban-form input[name=reason]").press("Enter")
    admin.wait_for_function("() => document.querySelector('#user-messages .note')")
    wait_page(admin, "user")
    assert refresh(device, api.url).status_code in (401, 403)
    assert (
        "banned until" in admin.locator("#profile").inner_text()
        and "2099" in admin.locator("#profile").inner_text()
    )
    assert query(
        api.database, "SELECT count(*) FROM auth_events WHERE type = 'user_banned' AND user_id = ?", user_id
    ) == [(1,)]
    screenshot(admin, "11-banned")
    admin.locator("#unban").click()
    admin.wait_for_function("() => document.querySelector('#user-messages .note')")
    wait_page(admin, "user")
    assert "banned" not in admin.locator("#profile").inner_text().lower()


def test_no_request_left_for_another_origin_and_no_csp_violation(admin, api, seen):
    """Last in the module: everything the console browsers asked for was the server's own."""
    assert seen
    origins = {
        f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in seen if not url.startswith("data:")
    }
    assert origins == {api.origin}, origins
    assert admin.evaluate("() => window.__cspViolations") == []
