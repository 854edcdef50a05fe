"""A real OpenID Connect provider (Node's oidc-provider, tests/support/oidc_provider.mjs) for the
social sign-in tests, and a person signing in on its pages with ``requests``."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests

from tests.support.live import ROOT
from tests.support.postgres import free_port

SCRIPT = ROOT / "tests" / "support" / "oidc_provider.mjs"
CLIENT_ID = "trikchi-test"
CLIENT_SECRET = "trikchi-test-secret-0123456789abcdef"  # noqa: S105 - a test client's secret
# Provider names trikchi is configured with in the tests: the genuine provider and the
# misbehaving variants of tests/support/oidc_provider.mjs.
VARIANTS = ("foreign_iss", "foreign_aud", "expired", "bad_signature", "alg_none")
NAMES = ("test", *VARIANTS)


def node_available() -> bool:
    """Node.js and the installed oidc-provider package (``make node-deps``)."""
    return shutil.which("node") is not None and (ROOT / "node_modules" / "oidc-provider").is_dir()


class OIDCProvider:
    """oidc-provider on 127.0.0.1, knowing the client ``trikchi-test`` with callbacks under ``bases``."""

    def __init__(self, bases: list[str]) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        redirect_uris = [f"{base}/auth/oauth/{name}/callback" for base in bases for name in NAMES]
        config = {
            "port": self.port,
            "clients": [
                {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris}
            ],
        }
        self.process = subprocess.Popen(
            ["node", str(SCRIPT), json.dumps(config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"oidc-provider did not start: {line!r}")
        deadline = time.monotonic() + 30
        while not self._serves_discovery(timeout=max(1.0, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("oidc-provider does not serve its discovery document")
            time.sleep(0.1)

    def _serves_discovery(self, timeout: float) -> bool:
        try:
            return requests.get(self.discovery_url("test"), timeout=timeout).status_code == 200
        except requests.RequestException:
            return False

    def discovery_url(self, name: str) -> str:
        """The discovery document trikchi's provider ``name`` is configured with."""
        if name == "test":
            return f"{self.issuer}/.well-known/openid-configuration"
        return f"{self.issuer}/variant/{name}/.well-known/openid-configuration"

    def providers(self, names: tuple[str, ...] = NAMES) -> dict[str, dict[str, str | None]]:
        """trikchi's ``OAUTH_PROVIDERS`` setting for these names."""
        return {
            name: {
                "discovery_url": self.discovery_url(name),
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scopes": "openid email profile",
            }
            for name in names
        }

    def environment(self, names: tuple[str, ...] = NAMES) -> dict[str, str]:
        """The same as environment variables (for gunicorn)."""
        env = {"OAUTH_PROVIDERS": ",".join(names)}
        for name in names:
            prefix = f"OAUTH_{name.upper()}_"
            env[prefix + "DISCOVERY_URL"] = self.discovery_url(name)
            env[prefix + "CLIENT_ID"] = CLIENT_ID
            env[prefix + "CLIENT_SECRET"] = CLIENT_SECRET
        return env

    def stop(self) -> None:
        """Terminate the provider."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


class _Forms(HTMLParser):
    """The POST forms of a page: their action and their named inputs' values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and (values.get("method") or "").lower() == "post":
            self.forms.append({"action": values.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value") or ""


def sign_in_at_provider(session: requests.Session, url: str, login: str, stop_at: str) -> str:
    """Follow ``url`` through the provider's login and consent pages as ``login``.

    Returns the first redirect to a URL starting with ``stop_at`` (trikchi's callback)
    without following it.
    """
    method, data = "GET", None
    for _step in range(20):
        response = session.request(method, url, data=data, allow_redirects=False, timeout=10)
        if response.is_redirect:
            url = urljoin(url, response.headers["Location"])
            if url.startswith(stop_at):
                return url
            method, data = "GET", None
            continue
        assert response.status_code == 200, (response.status_code, response.text[:500])
        parser = _Forms()
        parser.feed(response.text)
        assert parser.forms, response.text[:500]
        form = parser.forms[0]
        data = dict(form["fields"])
        if data.get("prompt") == "login":
            data.update(login=login, password="any password")  # noqa: S105 - the provider takes any
        url, method = urljoin(url, form["action"]), "POST"
    raise AssertionError("the provider never redirected back")
