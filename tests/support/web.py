"""The reference frontend (examples/web) on its own origin, and Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import PASSWORD, require_or_skip
from tests.support.live import ROOT
from tests.support.postgres import free_port

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def reference_page(host: str = "127.0.0.1") -> Iterator[str]:
    """examples/web served by a plain static server on 127.0.0.1; yields ``http://<host>:<port>``."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(ROOT / "examples/web"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/index.html", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def chromium_executable() -> str | None:
    """Debian's Chromium (or ``TRIKCHI_CHROMIUM``), if installed."""
    return os.environ.get("TRIKCHI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium(executable: str, extra_args: Sequence[str] = ()) -> Iterator[Any]:
    """Headless Chromium launched by Playwright with the test flags (and ``extra_args``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browser_api(directory: Path, web_origin: str, settings: dict[str, str], **server: Any) -> Iterator[Any]:
    """The API under gunicorn (2 workers) on a fresh SQLite file in ``directory``, built with
    ``flask db upgrade``, allowing the page's origin; ``settings`` add to or override that.
    The server's ``database`` is the file's path."""
    from tests.conftest import migrate_to_head
    from tests.support.live import LiveServer

    path = directory / "trikchi.db"
    migrate_to_head(f"sqlite:///{path}")
    live = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": f"sqlite:///{path}",
            "CORS_ORIGINS": web_origin,
            "TRIKCHI_TEST_LOGDIR": str(directory),
            **settings,
        },
        workers=2,
        **server,
    ).wait_ready()
    live.database = path
    try:
        yield live
    finally:
        live.stop()


# Shared by the browser tests (tests/test_browser*.py): the page's origin, Chromium, and
# the page's own gestures.
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def web_origin():
    """examples/web served by a plain static server on its own port."""
    with reference_page() as origin:
        yield origin


@pytest.fixture(scope="module")
def browser():
    executable = chromium_executable()
    if executable is None:
        require_or_skip("Chromium not found (apt-get install chromium)")
    with chromium(executable) as browser:
        yield browser


def status(page) -> str:
    return page.locator("#status").inner_text()


def wait_status(page, expected: str) -> None:
    page.wait_for_function(
        f"() => document.querySelector('#status').textContent === {expected!r}", timeout=30000
    )


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_up(page, email: str) -> None:
    form = page.locator("#register-form")
    form.locator("input[name=name]").fill("Ada Lovelace")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button").click()
    wait_status(page, "Signed in")


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    form = page.locator("#login-form")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(password)
    form.locator("button").click()
    wait_status(page, "Signed in")


def unique(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}@example.com"
