"""The OpenID Connect flow over real HTTP: trikchi under gunicorn (several workers, no shared
memory: the flow lives in its signed cookie), the provider, and a client that keeps cookies."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import migrate_to_head, require_or_skip
from tests.support.live import LiveServer
from tests.support.oidc import OIDCProvider, node_available, sign_in_at_provider
from tests.support.postgres import free_port

FRONTEND = "http://shop.test"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    if not node_available():
        require_or_skip("node or node_modules/oidc-provider missing (make node-deps)")
    port = free_port()
    provider = OIDCProvider([f"http://127.0.0.1:{port}"])
    path = tmp_path_factory.mktemp("social-live") / "trikchi.db"
    migrate_to_head(f"sqlite:///{path}")
    api = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": f"sqlite:///{path}",
            "FRONTEND_URL": FRONTEND,
            "TRIKCHI_TEST_LOGDIR": str(path.parent),
            **provider.environment(("test", "expired")),
        },
        workers=3,
        port=port,
    ).wait_ready()
    yield api, provider
    api.stop()
    provider.stop()


def test_the_whole_flow_over_http(servers):
    api, provider = servers
    browser = requests.Session()
    start = browser.get(f"{api.url}/auth/oauth/test/authorize?redirect_to=/checkout", allow_redirects=False)
    assert start.status_code == 302 and start.headers["Location"].startswith(provider.issuer)
    callback = sign_in_at_provider(browser, start.headers["Location"], "zara@example.com", api.url)

    landed = browser.get(callback, allow_redirects=False)
    assert landed.status_code == 302
    location = urlsplit(landed.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("http", "shop.test", "/checkout")
    csrf = parse_qs(location.fragment)["csrf_token"][0]

    refreshed = browser.post(f"{api.url}/auth/refresh_token", headers={"X-CSRF-TOKEN": csrf})
    assert refreshed.status_code == 200, refreshed.text
    me = browser.get(
        f"{api.url}/auth/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    )
    assert me.json()["email"] == "zara@example.com"

    # The callback again (the browser's back button, or an attacker who saw the URL): refused.
    again = requests.get(callback, allow_redirects=False)
    assert parse_qs(urlsplit(again.headers["Location"]).query)["error"] == ["invalid_state"]
    assert "refresh_token" not in again.headers.get("Set-Cookie", "")


def test_an_expired_id_token_over_http_signs_nobody_in(servers):
    api, provider = servers
    browser = requests.Session()
    start = browser.get(f"{api.url}/auth/oauth/expired/authorize", allow_redirects=False)
    callback = sign_in_at_provider(browser, start.headers["Location"], "zara@example.com", api.url)
    landed = browser.get(callback, allow_redirects=False)
    assert landed.headers["Location"] == FRONTEND + "/?error=invalid_id_token"
    assert browser.cookies.get("refresh_token") is None
    assert browser.post(f"{api.url}/auth/refresh_token").status_code == 401
