"""The staff console (``/console/``) in headless Chromium: the page's gestures, and what it drew."""

from __future__ import annotations

import sqlite3
from typing import Any

import requests

from tests.conftest import PASSWORD
from tests.support.live import ROOT

ARTIFACTS = ROOT / "tests" / "artifacts" / "console"

# Recorded in every page before its own scripts run: CSP violations the browser reports.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def screenshot(page, name: str) -> None:
    """A full-page picture for the reviewer (tests/artifacts/console, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def state(page) -> str:
    return page.evaluate("() => document.body.dataset.state")


def wait_state(page, expected: str, timeout: float = 30000) -> None:
    page.wait_for_function(f"() => document.body.dataset.state === {expected!r}", timeout=timeout)


def wait_page(page, name: str) -> None:
    """Until the console's page ``name`` has drawn everything (its data-ready)."""
    page.wait_for_selector(f".page[data-page={name}][data-ready=true]", timeout=30000)


def open_console(context, url: str, hash_: str = ""):
    page = context.new_page()
    page.goto(f"{url}/console/{hash_}")
    page.wait_for_function("() => document.body.dataset.state !== 'loading'")
    return page


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    """Type the email and password and press Enter (the keyboard, as staff do)."""
    form = page.locator("#sign-in-form")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(password)
    form.locator("input[name=password]").press("Enter")


def chart_table(page, chart: str) -> dict[str, dict[str, int]]:
    """The numbers a chart was drawn from (its visually hidden table): {date: {series: value}}."""
    return page.evaluate(
        """(chart) => {
          const table = document.querySelector(`table.chart-data[data-chart="${chart}"]`);
          if (!table) return {};
          const keys = [...table.querySelectorAll("thead th[data-series]")].map((th) => th.dataset.series);
          const rows = {};
          for (const row of table.querySelectorAll("tbody tr")) {
            const values = [...row.querySelectorAll("td")].map((td) => Number(td.textContent));
            const date = row.querySelector("th").textContent;
            rows[date] = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
          }
          return rows;
        }""",
        chart,
    )


def api_login(url: str, email: str, user_agent: str, password: str = PASSWORD) -> requests.Session:
    """A customer's device: signed in over HTTP, its cookies kept."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    response = session.post(f"{url}/auth/login", json={"email": email, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    return session


def refresh(session: requests.Session, url: str) -> requests.Response:
    """A real refresh request of that device (cookie and CSRF header)."""
    csrf = session.cookies.get("csrf_refresh_token") or ""
    return session.post(f"{url}/auth/refresh_token", headers={"X-CSRF-TOKEN": csrf}, timeout=10)


def query(database, sql: str, *params: Any) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql, params).fetchall()
