"""Real gunicorn workers racing with one TOTP code, one recovery code, one mfa_token."""

from __future__ import annotations

import time

import pyotp
import pytest
import requests

from tests.conftest import PASSWORD
from tests.support.races import race

pytestmark = pytest.mark.slow
RACERS = 8
EMAIL = "race@example.com"


@pytest.fixture
def enrolled(racing_server):
    """A user with TOTP on: (authenticator app, recovery codes, access token)."""
    url = racing_server.url
    body = {"name": "Ada", "email": EMAIL, "password": PASSWORD}
    assert requests.post(url + "/auth/register", json=body, timeout=30).status_code == 201
    login = requests.post(url + "/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=30).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    setup = requests.post(url + "/auth/mfa/totp/setup", headers=headers, timeout=30).json()
    app = pyotp.TOTP(setup["secret"])
    confirm = requests.post(
        url + "/auth/mfa/totp/confirm", json={"code": app.now()}, headers=headers, timeout=30
    )
    assert confirm.status_code == 200, confirm.text
    return app, confirm.json()["recovery_codes"], headers


def mfa_tokens(url: str, count: int) -> list[str]:
    body = {"email": EMAIL, "password": PASSWORD}
    return [
        requests.post(url + "/auth/login", json=body, timeout=30).json()["mfa_token"] for _ in range(count)
    ]


def verify(url: str, body: dict) -> requests.Response:
    return requests.post(url + "/auth/mfa/verify", json=body, timeout=30)


def test_one_totp_code_raced_from_eight_sign_ins_signs_in_once(racing_server, enrolled):
    app, _codes, _headers = enrolled
    tokens = mfa_tokens(racing_server.url, RACERS)
    code = app.at(time.time() + 30)  # the next step's: the confirmation used this one
    responses = race(RACERS, lambda i: verify(racing_server.url, {"mfa_token": tokens[i], "code": code}))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * (RACERS - 1), (statuses, racing_server.log()[-3000:])
    assert {r.json()["error"] for r in responses if r.status_code == 401} == {"invalid_mfa_code"}


def test_one_recovery_code_raced_from_eight_sign_ins_signs_in_once(racing_server, enrolled):
    _app, codes, headers = enrolled
    tokens = mfa_tokens(racing_server.url, RACERS)
    responses = race(
        RACERS, lambda i: verify(racing_server.url, {"mfa_token": tokens[i], "recovery_code": codes[0]})
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * (RACERS - 1), (statuses, racing_server.log()[-3000:])
    status = requests.get(racing_server.url + "/auth/mfa", headers=headers, timeout=30).json()
    assert status["recovery_codes_left"] == 9


def test_one_mfa_token_raced_with_eight_good_codes_signs_in_once(racing_server, enrolled):
    _app, codes, headers = enrolled
    (token,) = mfa_tokens(racing_server.url, 1)
    responses = race(
        RACERS, lambda i: verify(racing_server.url, {"mfa_token": token, "recovery_code": codes[i]})
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * (RACERS - 1), (statuses, racing_server.log()[-3000:])
    assert {r.json()["error"] for r in responses if r.status_code == 401} == {"mfa_token_invalid"}
    # The losers' recovery codes were not spent.
    status = requests.get(racing_server.url + "/auth/mfa", headers=headers, timeout=30).json()
    assert status["recovery_codes_left"] == 9
