"""SPEC §14 end to end through processes: trikchi under gunicorn, the real outbox worker (``flask
worker``) beside it sending to an Eskiz or Play Mobile stand-in over HTTP, and the code read from
what the stand-in received — as the customer's phone would show it."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.conftest import migrate_to_head
from tests.support.live import LiveServer, bearer
from tests.support.sms import code_from_gateway, gateway_texts_to
from tests.support.sms_gateways import Eskiz, PlayMobile, eskiz_environment, playmobile_environment

pytestmark = pytest.mark.slow

GATEWAYS = {"eskiz": (Eskiz, eskiz_environment), "playmobile": (PlayMobile, playmobile_environment)}


@pytest.fixture(scope="module", params=sorted(GATEWAYS))
def live(request, tmp_path_factory):
    """(gunicorn with the outbox worker, the gateway stand-in it sends SMS to), per gateway."""
    standin_class, environment = GATEWAYS[request.param]
    standin = standin_class().start()
    directory = tmp_path_factory.mktemp(f"phone-live-{request.param}")
    url = f"sqlite:///{directory / 'trikchi.db'}"
    migrate_to_head(url)
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": url,
            "TRIKCHI_TEST_LOGDIR": str(directory),
            "RATELIMIT_ENABLED": "false",
            **environment(standin),
        },
        workers=2,
        outbox_worker=True,
    )
    try:
        yield server.wait_ready(), standin
    finally:
        server.stop()
        standin.stop()


def new_number() -> str:
    """A valid Uzbek mobile number no other test uses."""
    return f"+99890{secrets.randbelow(10**7):07d}"


def test_a_phone_sign_in_end_to_end_with_the_code_the_gateway_received(live):
    server, standin = live
    phone = new_number()
    browser = requests.Session()
    asked = browser.post(f"{server.url}/auth/phone/code", json={"phone": phone[4:]}, timeout=15)
    assert asked.status_code == 202, asked.text
    code = code_from_gateway(standin, phone)
    [message] = [m for m in standin.delivered() if m.phone == phone.removeprefix("+")]
    assert message.sender in ("4546", "3700")  # the gateway's default sender name

    signed_in = browser.post(
        f"{server.url}/auth/phone/verify", json={"phone": phone, "code": code}, timeout=15
    )
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    me = browser.get(f"{server.url}/auth/me", headers=bearer(body["access_token"]), timeout=15).json()
    assert (me["id"], me["phone"], me["phone_verified"], me["role"]) == (
        body["user_id"],
        phone,
        True,
        "customer",
    )

    refreshed = browser.post(
        f"{server.url}/auth/refresh_token", headers={"X-CSRF-TOKEN": body["csrf_token"]}, timeout=15
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["user_id"] == body["user_id"]

    # The code works once; the next sign-in reads the next SMS.
    again = browser.post(f"{server.url}/auth/phone/verify", json={"phone": phone, "code": code}, timeout=15)
    assert again.status_code == 401 and again.json()["error"] == "invalid_code"
    assert browser.post(f"{server.url}/auth/phone/code", json={"phone": phone}, timeout=15).status_code == 202
    second = code_from_gateway(standin, phone, seen=1)
    other = requests.post(
        f"{server.url}/auth/phone/verify", json={"phone": phone, "code": second}, timeout=15
    )
    assert other.status_code == 200 and other.json()["user_id"] == body["user_id"]

    # Neither gunicorn nor the worker wrote a code or the whole number to its log.
    log = server.log()
    assert code not in log and second not in log and phone not in log


def test_the_sms_is_in_the_language_of_the_request(live):
    server, standin = live
    phone = new_number()
    asked = requests.post(
        f"{server.url}/auth/phone/code", json={"phone": phone}, headers={"Accept-Language": "ru"}, timeout=15
    )
    assert asked.status_code == 202
    code = code_from_gateway(standin, phone)
    [text] = gateway_texts_to(standin, phone)
    assert code in text and any("\u0400" <= character <= "\u04ff" for character in text)  # Cyrillic
