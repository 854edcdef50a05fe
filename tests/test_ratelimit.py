"""Abuse limits: per IP, per account, known devices, proxies, Redis shared across processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from tests.conftest import PASSWORD, AuthActions, make_app
from tests.support.live import LiveServer
from trikchi.extensions import db

LIMITS = {
    "RATELIMIT_LOGIN": "100 per minute",
    "RATELIMIT_LOGIN_FAILURES_PER_IP": "3 per minute",
    "RATELIMIT_LOGIN_FAILURES_PER_EMAIL": "4 per minute",
}


@pytest.fixture(params=["memory", "redis"])
def limit_storage(request) -> str:
    """Limits counted in process memory (development) and in a real Redis (production)."""
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("redis_url")


@pytest.fixture
def limited_app(database_url, limit_storage):
    def build(**overrides):
        app = make_app(database_url, **{**LIMITS, "RATELIMIT_STORAGE_URI": limit_storage, **overrides})
        apps.append(app)
        return app

    apps = []
    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def login_from(
    app, ip: str, email: str, password: str = "wrong password 1", client=None, xff: str | None = None
):
    client = client or app.test_client()
    environ = {"REMOTE_ADDR": ip}
    headers = {"X-Forwarded-For": xff} if xff else {}
    return client.post(
        "/auth/login", json={"email": email, "password": password}, environ_base=environ, headers=headers
    )


def assert_429(response) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.is_json and response.json["code"] == 429 and response.json["message"]
    assert response.json["error"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


def test_one_ip_spraying_many_accounts_is_limited(limited_app):
    app = limited_app()
    for i in range(3):
        assert login_from(app, "203.0.113.1", f"user{i}@example.com").status_code == 401
    assert_429(login_from(app, "203.0.113.1", "user9@example.com"))
    assert login_from(app, "203.0.113.2", "user9@example.com").status_code == 401  # other IPs unaffected


def test_rotating_ips_against_one_account_is_limited(limited_app):
    app = limited_app(RATELIMIT_LOGIN_FAILURES_PER_IP="100 per minute")
    for i in range(4):
        assert login_from(app, f"203.0.113.{i + 1}", "victim@example.com").status_code == 401
    assert_429(login_from(app, "203.0.113.50", "victim@example.com"))
    assert login_from(app, "203.0.113.50", "other@example.com").status_code == 401


def test_spellings_of_one_address_count_against_one_account(limited_app):
    app = limited_app(RATELIMIT_LOGIN_FAILURES_PER_IP="100 per minute")
    spellings = [
        "victim@example.com",
        "VICTIM@example.com",
        "victim@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # fullwidth domain
        "victim@EXAMPLE.com",
    ]
    for i, spelling in enumerate(spellings):
        assert login_from(app, f"203.0.113.{i + 1}", spelling).status_code == 401
    assert_429(login_from(app, "203.0.113.50", "Victim@\uff25XAMPLE.COM"))


def test_a_right_password_starts_the_accounts_count_again(limited_app):
    app = limited_app(RATELIMIT_LOGIN_FAILURES_PER_IP="100 per minute")
    AuthActions(app.test_client()).register(email="ada@example.com")
    for i in range(3):
        assert login_from(app, f"203.0.113.{i + 1}", "ada@example.com").status_code == 401
    # A new browser (no device cookie) with the right password: counted, then forgotten.
    assert login_from(app, "198.51.100.1", "ada@example.com", password=PASSWORD).status_code == 200
    for i in range(4):
        assert login_from(app, f"203.0.113.{i + 10}", "ada@example.com").status_code == 401
    assert_429(login_from(app, "203.0.113.50", "ada@example.com"))


def test_successful_logins_do_not_count_as_failures(limited_app):
    app = limited_app()
    actions = AuthActions(app.test_client())
    actions.register()
    for _ in range(6):
        assert actions.login().status_code == 200


def test_known_device_still_signs_in_while_its_account_is_under_attack(limited_app):
    app = limited_app(RATELIMIT_LOGIN_FAILURES_PER_IP="100 per minute")
    customer = AuthActions(app.test_client())
    customer.signup(email="victim@example.com")  # this browser now holds a device cookie
    assert customer.client.get_cookie("trikchi_device", path="/auth") is not None
    for i in range(6):
        login_from(app, f"198.51.100.{i + 1}", "victim@example.com")
    assert_429(login_from(app, "198.51.100.99", "victim@example.com", password=PASSWORD))  # new device
    response = customer.login(email="victim@example.com")
    assert response.status_code == 200


def test_a_device_cookie_of_another_account_does_not_exempt(limited_app):
    app = limited_app(RATELIMIT_LOGIN_FAILURES_PER_IP="100 per minute")
    attacker = AuthActions(app.test_client())
    attacker.signup(email="attacker@example.com")
    for _ in range(4):
        assert (
            login_from(app, "198.51.100.7", "victim@example.com", client=attacker.client).status_code == 401
        )
    assert_429(login_from(app, "198.51.100.7", "victim@example.com", client=attacker.client))


def test_registration_is_limited_per_ip(limited_app):
    app = limited_app(RATELIMIT_REGISTER="2 per minute")
    client = app.test_client()
    for i in range(2):
        body = {"name": "A", "email": f"u{i}@example.com", "password": PASSWORD}
        assert client.post("/auth/register", json=body).status_code == 201
    assert_429(
        client.post("/auth/register", json={"name": "A", "email": "x@example.com", "password": PASSWORD})
    )


def test_refresh_is_limited(limited_app):
    app = limited_app(RATELIMIT_REFRESH="2 per minute")
    actions = AuthActions(app.test_client())
    actions.signup()
    assert actions.refresh().status_code == 200
    assert actions.refresh().status_code == 200
    assert_429(actions.refresh())


def test_disabled_limits_never_trip(limited_app):
    app = limited_app(RATELIMIT_ENABLED=False)
    for _ in range(10):
        assert login_from(app, "203.0.113.1", "victim@example.com").status_code == 401


def test_spoofed_x_forwarded_for_does_not_escape_the_ip_limit_without_a_trusted_proxy(limited_app):
    app = limited_app()
    for i in range(3):
        login_from(app, "203.0.113.1", f"u{i}@example.com", xff=f"192.0.2.{i}")
    assert_429(login_from(app, "203.0.113.1", "u9@example.com", xff="192.0.2.200"))


def test_x_forwarded_for_is_honoured_with_one_trusted_hop(limited_app):
    app = limited_app(TRUSTED_PROXY_HOPS=1)
    proxy = "127.0.0.1"
    for i in range(3):
        login_from(app, proxy, f"u{i}@example.com", xff="192.0.2.1")
    assert_429(login_from(app, proxy, "u9@example.com", xff="192.0.2.1"))
    # Another client behind the same proxy has its own count.
    assert login_from(app, proxy, "u9@example.com", xff="192.0.2.2").status_code == 401
    # With one trusted hop only the last address counts: a prepended spoof changes nothing.
    assert_429(login_from(app, proxy, "u9@example.com", xff="6.6.6.6, 192.0.2.1"))


@pytest.mark.slow
def test_two_gunicorn_instances_share_one_count_through_redis(database_url, redis_url, tmp_path):
    env = {
        "TRIKCHI_CONFIG": "testing",
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_LOGIN_FAILURES_PER_IP": "4 per minute",
        "RATELIMIT_LOGIN_FAILURES_PER_EMAIL": "100 per minute",
        "TRIKCHI_TEST_LOGDIR": str(tmp_path),
    }
    first, second = LiveServer(env, workers=2), LiveServer(env, workers=2)
    try:
        first.wait_ready()
        second.wait_ready()
        statuses = []
        for i in range(4):
            server = (first, second)[i % 2]
            body = {"email": f"u{i}@example.com", "password": "wrong password 1"}
            statuses.append(requests.post(server.url + "/auth/login", json=body, timeout=30).status_code)
        assert statuses == [401] * 4
        for server in (first, second):
            response = requests.post(
                server.url + "/auth/login",
                json={"email": "x@example.com", "password": "nope nope"},
                timeout=30,
            )
            assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
            assert response.json()["code"] == 429
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
def test_parallel_wrong_passwords_never_pass_the_per_account_limit(database_url, limit_storage, tmp_path):
    """25 wrong passwords for one account at once, through gunicorn: at most the limit gets a 401.

    In memory the count lives in one process, so one worker with 8 threads races on it; with
    Redis four worker processes race on the shared count.
    """
    shared = limit_storage.startswith("redis")
    env = {
        "TRIKCHI_CONFIG": "testing",
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": limit_storage,
        "RATELIMIT_LOGIN": "1000 per minute",
        "RATELIMIT_LOGIN_FAILURES_PER_IP": "1000 per minute",
        "RATELIMIT_LOGIN_FAILURES_PER_EMAIL": "5 per minute",
        # A real hashing cost keeps each attempt busy for a while, as in production.
        "ARGON2_MEMORY_COST": "8192",
        "ARGON2_TIME_COST": "2",
        "GUNICORN_THREADS": "1" if shared else "8",
        "TRIKCHI_TEST_LOGDIR": str(tmp_path),
    }
    server = LiveServer(env, workers=4 if shared else 1).wait_ready()
    try:
        body = {"name": "Victim", "email": "victim@example.com", "password": PASSWORD}
        assert requests.post(server.url + "/auth/register", json=body, timeout=30).status_code == 201
        barrier = Barrier(25)

        def attempt(_i: int) -> int:
            barrier.wait()
            wrong = {"email": "victim@example.com", "password": "wrong password 1"}
            return requests.post(server.url + "/auth/login", json=wrong, timeout=60).status_code

        with ThreadPoolExecutor(25) as pool:
            statuses = list(pool.map(attempt, range(25)))
        assert sorted(set(statuses)) == [401, 429], statuses
        assert statuses.count(401) == 5, statuses
        right = {"email": "victim@example.com", "password": PASSWORD}
        assert requests.post(server.url + "/auth/login", json=right, timeout=30).status_code == 429
    finally:
        server.stop()
