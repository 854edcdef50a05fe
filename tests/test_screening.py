"""SPEC §16: breached passwords (against a local stand-in of the range API, in its real format) and
throwaway addresses, on registration, password change, reset and email change."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, AuthActions, make_app
from tests.support.hibp import RangeApi, sha1_parts
from tests.support.mails import link_token, unique
from trikchi.addresses import disposable_domains
from trikchi.auth.models import User
from trikchi.extensions import db

BREACHED = "monkey business 2019"  # not one of the common passwords the policy refuses anyway
ALSO_BREACHED = "sunflower meadow 77"
PADDED = "padding only passphrase"  # its suffix is served as a padding line (count 0): no match


@pytest.fixture
def range_api():
    api = RangeApi(breached={BREACHED: 3861, ALSO_BREACHED: 12, PADDED: 0}).start()
    yield api
    api.stop()


def checking_app(database_url, range_api, **overrides):
    return make_app(
        database_url,
        PASSWORD_BREACH_CHECK="hibp",
        HIBP_RANGE_URL=range_api.url,
        PASSWORD_BREACH_TIMEOUT_SECONDS=1,
        **overrides,
    )


@pytest.fixture
def app(database_url, range_api):
    app = checking_app(database_url, range_api)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def register(client, password: str, email: str = "ada@example.com"):
    return client.post("/auth/register", json={"name": "Ada", "email": email, "password": password})


def assert_breached(response, field: str) -> None:
    assert response.status_code == 422, response.json
    assert response.json["error"] == "password_breached"
    assert list(response.json["errors"]) == [field]


def test_a_breached_password_is_refused_at_registration_naming_the_field(app, client, range_api):
    assert_breached(register(client, BREACHED), "password")
    assert users(app) == 0
    assert register(client, PASSWORD).status_code == 201


def test_only_the_prefix_leaves_with_the_padding_header(app, client, range_api):
    register(client, BREACHED)
    prefix, suffix = sha1_parts(BREACHED)
    (request,) = range_api.requests
    assert request.path == f"/range/{prefix}"
    assert request.headers["add-padding"] == "true"
    sent = request.path + repr(request.headers)
    assert suffix not in sent and suffix.lower() not in sent and BREACHED not in sent


def test_a_padding_line_is_no_match(app, client, range_api):
    assert register(client, PADDED).status_code == 201


def test_a_breached_password_is_refused_as_a_new_password(app, auth):
    auth.signup()
    changed = auth.client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": BREACHED},
        headers=auth.headers(),
    )
    assert_breached(changed, "new_password")
    assert auth.me().status_code == 200
    assert AuthActions(app.test_client()).login(password=PASSWORD).status_code == 200


def test_a_breached_password_is_refused_by_a_reset_link_which_still_works(
    mail_app_factory, smtp_server, range_api
):
    app = mail_app_factory(
        PASSWORD_BREACH_CHECK="hibp",
        HIBP_RANGE_URL=range_api.url,
        NOTIFY_PASSWORD_CHANGED=False,
        NOTIFY_NEW_DEVICE=False,
    )
    email = unique("breach-reset")
    AuthActions(app.test_client()).signup(email=email)
    anonymous = app.test_client()
    assert anonymous.post("/auth/password_reset/request", json={"email": email}).status_code == 202
    token = link_token(smtp_server.wait_for(email), "reset-password")
    refused = anonymous.post("/auth/password_reset", json={"token": token, "new_password": ALSO_BREACHED})
    assert_breached(refused, "new_password")
    accepted = anonymous.post("/auth/password_reset", json={"token": token, "new_password": "a new secret 4"})
    assert accepted.status_code == 204


def test_answers_are_kept_per_prefix(app, client, range_api):
    assert_breached(register(client, BREACHED), "password")
    assert_breached(register(client, BREACHED, "bob@example.com"), "password")
    assert len(range_api.requests) == 1  # the second check asked nobody
    assert register(client, PASSWORD).status_code == 201
    assert len(range_api.requests) == 2  # another prefix


def test_answers_are_shared_through_redis(database_url, range_api, redis_url):
    """Two apps (two worker processes) keeping the rate limits in Redis share the range answers."""
    first, second = (checking_app(database_url, range_api, RATELIMIT_STORAGE_URI=redis_url) for _ in "12")
    assert_breached(register(first.test_client(), BREACHED), "password")
    assert_breached(register(second.test_client(), BREACHED), "password")
    assert len(range_api.requests) == 1
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()


def test_the_service_down_accepts_the_password_with_a_warning(app, client, range_api, caplog):
    range_api.stop()
    with caplog.at_level(logging.WARNING, logger="trikchi.auth.screening"):
        assert register(client, BREACHED).status_code == 201
    assert "accepted unchecked" in caplog.text
    prefix, suffix = sha1_parts(BREACHED)
    assert BREACHED not in caplog.text and suffix not in caplog.text and prefix not in caplog.text


@pytest.mark.parametrize("failure", ["down", "5xx", "slow"])
def test_the_service_failing_closed_is_503_and_nothing_is_kept(database_url, range_api, failure):
    app = checking_app(database_url, range_api, PASSWORD_BREACH_FAIL_CLOSED=True)
    client = app.test_client()
    if failure == "down":
        range_api.stop()
    elif failure == "5xx":
        range_api.status = 502
    else:
        range_api.delay = 2.5
    started = time.monotonic()
    refused = register(client, BREACHED)
    assert time.monotonic() - started < 2.4  # the timeout (1 s), not the server's pace
    assert refused.status_code == 503 and refused.json["error"] == "service_unavailable"
    assert "Retry-After" in refused.headers
    assert users(app) == 0
    if failure != "down":  # a failed answer was not kept: the next check asks again
        range_api.status, range_api.delay = 200, 0
        assert_breached(register(client, BREACHED), "password")
        assert len(range_api.requests) == 2
    with app.app_context():
        db.engine.dispose()


def test_the_check_is_off_by_default_and_asks_nobody(database_url, range_api):
    app = make_app(database_url, HIBP_RANGE_URL=range_api.url)
    assert register(app.test_client(), BREACHED).status_code == 201
    assert range_api.requests == []
    with app.app_context():
        db.engine.dispose()


def test_the_refusal_is_translated(app, client):
    for language in ("uz", "ru", "en"):
        refused = client.post(
            "/auth/register",
            json={"name": "Ada", "email": "ada@example.com", "password": BREACHED},
            headers={"Accept-Language": language},
        )
        assert refused.json["error"] == "password_breached"
        message = refused.json["errors"]["password"][0]
        english = "This password has appeared in a data breach elsewhere; choose another one."
        assert (message == english) == (language == "en"), (language, message)


# Throwaway addresses.

THROWAWAY = ["mailinator.com", "10minutemail.com", "guerrillamail.com", "inbox.mailinator.com"]
ORDINARY = ["gmail.com", "mail.ru", "umail.uz", "example.com", "yandex.ru", "trikchi.uz"]


def test_the_test_domains_are_as_the_list_says():
    listed = disposable_domains()
    assert {"mailinator.com", "10minutemail.com", "guerrillamail.com"} <= listed
    assert not listed & set(ORDINARY)


@pytest.mark.parametrize("domain", THROWAWAY)
def test_registration_at_a_throwaway_domain_is_refused(client, domain):
    refused = register(client, PASSWORD, f"ada@{domain.upper()}")
    assert refused.status_code == 422, refused.json
    assert refused.json["error"] == "disposable_email" and list(refused.json["errors"]) == ["email"]


@pytest.mark.parametrize("domain", ORDINARY)
def test_registration_at_an_ordinary_domain_is_accepted(client, domain):
    assert register(client, PASSWORD, f"ada@{domain}").status_code == 201


def test_throwaway_domains_are_accepted_when_the_setting_is_off(database_url):
    app = make_app(database_url, BLOCK_DISPOSABLE_EMAILS=False)
    assert register(app.test_client(), PASSWORD, "ada@mailinator.com").status_code == 201
    with app.app_context():
        db.engine.dispose()


def test_an_email_change_to_a_throwaway_domain_is_refused(client, auth):
    auth.signup()
    refused = client.post("/auth/email", json={"new_email": "ada@10minutemail.com"}, headers=auth.headers())
    assert refused.status_code == 422, refused.json
    assert refused.json["error"] == "disposable_email" and list(refused.json["errors"]) == ["new_email"]
    accepted = client.post("/auth/email", json={"new_email": "ada@umail.uz"}, headers=auth.headers())
    assert accepted.status_code == 202, accepted.json
