"""The staff console's files (SPEC §17): built from the lockfile, served with their own CSP.

The built files are committed (trikchi/console/static), so that a fresh clone serves the console
after ``make run`` without node; this test builds them again from console/ with the locked
esbuild and fails when the committed ones differ (run ``make console`` and commit).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import require_or_skip
from tests.support.live import ROOT
from trikchi.http import CONSOLE_CSP

STATIC = ROOT / "trikchi" / "console" / "static"


def test_the_committed_console_is_what_the_sources_build(tmp_path):
    if shutil.which("node") is None or not (ROOT / "node_modules" / "esbuild").is_dir():
        require_or_skip("node or node_modules/esbuild missing (make node-deps)")
    subprocess.run(["node", str(ROOT / "console" / "build.mjs"), str(tmp_path)], check=True, timeout=120)
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built == sorted(p.name for p in STATIC.iterdir()) == ["console.css", "console.js", "index.html"]
    for name in built:
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), (
            f"{name} differs from a fresh build: run `make console` and commit trikchi/console/static"
        )


def test_the_page_loads_only_its_own_files_and_nothing_inline():
    page = (STATIC / "index.html").read_text()
    assert re.findall(r'<script[^>]*src="([^"]+)"', page) == ["console.js"]
    assert re.findall(r'<link[^>]*href="([^"]+)"', page) == ["console.css"]
    assert not re.search(r"<script(?![^>]*src=)[^>]*>", page)  # no inline script
    assert " style=" not in page and "<style" not in page and not re.search(r"\son[a-z]+=", page)
    for name in ("console.js", "console.css"):  # nothing from another origin
        assert not re.search(r"https?://", (STATIC / name).read_text()), name


@pytest.mark.parametrize("path", ["/console/", "/console/console.js", "/console/console.css"])
def test_console_files_are_served_with_the_console_csp(client, path):
    with client.get(path) as response:
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == CONSOLE_CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert (
            "no-cache" in response.headers["Cache-Control"]
            or "max-age=0" in response.headers["Cache-Control"]
        )


def test_the_console_policy_allows_nothing_from_elsewhere():
    directives = dict(part.strip().split(" ", 1) for part in CONSOLE_CSP.split(";"))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'"
    assert "'unsafe-inline'" not in CONSOLE_CSP and "'unsafe-eval'" not in CONSOLE_CSP
    assert directives["frame-ancestors"] == "'none'"


def test_unknown_console_paths_are_json_404s(client):
    for path in ("/console/missing.js", "/console/../wsgi.py", "/console/%2e%2e/config.py"):
        response = client.get(path)
        assert response.status_code == 404 and response.json["error"] == "not_found"
    assert client.get("/console").status_code == 308
    assert client.get("/console").headers["Location"].endswith("/console/")


def test_the_api_keeps_its_own_policy(client):
    assert client.get("/healthz").headers["Content-Security-Policy"].startswith("default-src 'none'; frame")
    assert "script-src" not in client.get("/consoles").headers["Content-Security-Policy"]
