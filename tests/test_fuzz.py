"""schemathesis against the app's own OpenAPI document.

``test_schemathesis_finds_nothing`` runs the schemathesis CLI with ``--checks all`` over every
phase (examples, coverage, fuzzing, stateful) against the app under gunicorn, signed in as a
customer and, for ``/admin``, as an admin with TOTP on (tests/support/fuzz_hooks.py), with what
the document cannot say in ``schemathesis.toml`` and tests/support/fuzz.py. By hand, against a
running instance with those accounts::

    SCHEMATHESIS_HOOKS=tests.support.fuzz_hooks TRIKCHI_FUZZ_URL=... TRIKCHI_FUZZ_...=... \
        .venv/bin/schemathesis run http://127.0.0.1:5000/openapi.json --checks all

The other tests send generated valid (positive) and invalid (negative) input for every operation
to the app in-process, on SQLite and PostgreSQL: each answer must pass every check, and a
rejected request must not change the database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib

import pyotp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from sqlalchemy import func, select, update

from tests.conftest import PASSWORD, AuthActions, make_app
from tests.support.fuzz import SEMANTIC_REFUSALS  # and registers its check
from tests.support.live import ROOT, LiveServer
from trikchi.auth.models import AuthSession, User
from trikchi.extensions import db

pytestmark = pytest.mark.fuzz

EXAMPLES_PER_OPERATION = int(os.environ.get("TRIKCHI_FUZZ_EXAMPLES", "30"))
OPERATIONS = [
    ("post", "/auth/register"),
    ("post", "/auth/guest"),
    ("post", "/auth/login"),
    ("post", "/auth/refresh_token"),
    ("post", "/auth/logout"),
    ("get", "/auth/me"),
    ("patch", "/auth/me"),
    ("delete", "/auth/me"),
    ("post", "/auth/email"),
    ("post", "/auth/email/confirm"),
    ("get", "/auth/sessions"),
    ("delete", "/auth/sessions/{session_id}"),
    ("post", "/auth/logout_all"),
    ("post", "/auth/password"),
    ("post", "/auth/reauthenticate"),
    ("get", "/auth/mfa"),
    ("post", "/auth/mfa/totp/setup"),
    ("post", "/auth/mfa/totp/confirm"),
    ("delete", "/auth/mfa/totp"),
    ("post", "/auth/mfa/recovery_codes"),
    ("post", "/auth/mfa/verify"),
    ("get", "/auth/passkeys"),
    ("post", "/auth/passkeys/registration/options"),
    ("post", "/auth/passkeys/registration/verify"),
    ("patch", "/auth/passkeys/{passkey_id}"),
    ("delete", "/auth/passkeys/{passkey_id}"),
    ("post", "/auth/passkeys/authentication/options"),
    ("post", "/auth/passkeys/authentication/verify"),
    ("post", "/auth/verify_email/request"),
    ("post", "/auth/verify_email"),
    ("post", "/auth/password_reset/request"),
    ("post", "/auth/password_reset"),
    ("get", "/auth/providers"),
    ("get", "/auth/oauth/{provider}/authorize"),
    ("get", "/auth/oauth/{provider}/callback"),
    ("post", "/auth/telegram"),
    ("get", "/auth/identities"),
    ("delete", "/auth/identities/{identity_id}"),
    ("post", "/auth/phone/code"),
    ("post", "/auth/phone/verify"),
    ("post", "/auth/phone"),
    ("post", "/auth/phone/confirm"),
    ("delete", "/auth/phone"),
    ("get", "/admin/users"),
    ("get", "/admin/users/{user_id}"),
    ("patch", "/admin/users/{user_id}"),
    ("get", "/admin/users/{user_id}/sessions"),
    ("delete", "/admin/users/{user_id}/sessions/{session_id}"),
    ("post", "/admin/users/{user_id}/ban"),
    ("delete", "/admin/users/{user_id}/ban"),
    ("get", "/admin/audit"),
    ("get", "/admin/stats"),
    ("get", "/admin/deliveries"),
    ("post", "/admin/deliveries/{delivery_id}/retry"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration"),
]


@pytest.fixture
def fuzz_app(database_url):
    """Limits off so that generated input reaches the views, not the 429."""
    # No second-factor rule: the generated requests should reach the admin views themselves.
    app = make_app(
        database_url, RATELIMIT_ENABLED=False, MFA_REQUIRED_ROLES=[], TELEGRAM_BOT_TOKEN="123:fuzz-bot-token"
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def make_admin(app, email: str) -> None:
    with app.app_context():
        db.session.execute(update(User).where(User.email == email).values(role="admin"))
        db.session.commit()


def counts(app) -> tuple[int, int]:
    with app.app_context():
        users = db.session.scalar(select(func.count()).select_from(User))
        sessions = db.session.scalar(select(func.count()).select_from(AuthSession))
        db.session.remove()
    return users, sessions


def test_every_operation_is_fuzzed():
    app = make_app("sqlite://")
    operations = {
        (op.ok().method, op.ok().path)
        for op in schemathesis.openapi.from_wsgi("/openapi.json", app).get_all_operations()
    }
    assert operations == set(OPERATIONS)


# --- the schemathesis CLI, --checks all, every phase, against gunicorn ------------------------

# The bound of the run: examples per operation and phase. Generation is deterministic (Hypothesis'
# derandomize, no example database): every run generates the same requests.
CLI_EXAMPLES = int(os.environ.get("TRIKCHI_FUZZ_CLI_EXAMPLES", "100"))
CLI_TIMEOUT = 240
ADMIN_EMAIL = "fuzz-admin@example.com"
CUSTOMER_EMAIL = "fuzz-customer@example.com"
BYSTANDER_EMAIL = "fuzz-bystander@example.com"


@pytest.fixture
def fuzz_server(sqlite_template, tmp_path):
    """gunicorn on a SQLite copy: limits off, a sign-in stays fresh for the whole run."""
    path = tmp_path / "trikchi.db"
    shutil.copy(sqlite_template, path)
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": f"sqlite:///{path}",
            "TRIKCHI_TEST_LOGDIR": str(tmp_path),
            "RATELIMIT_ENABLED": "false",  # generated input should reach the views, not the 429
            "FRESH_SIGNIN_SECONDS": "3600",
            "TELEGRAM_BOT_TOKEN": "123:fuzz-bot-token",
        },
        workers=1,
    ).wait_ready()
    yield server
    server.stop()


def make_accounts(server: LiveServer) -> dict[str, str]:
    """The admin (TOTP on), the customer and the bystander: the environment of the CLI's hooks."""
    ids = {}
    for email in (ADMIN_EMAIL, CUSTOMER_EMAIL, BYSTANDER_EMAIL):
        body = {"name": "Fuzz", "email": email, "password": PASSWORD}
        registered = requests.post(f"{server.url}/auth/register", json=body, timeout=30)
        assert registered.status_code == 201, registered.text
        ids[email] = registered.json()["id"]
    result = server.flask("users", "set-role", ADMIN_EMAIL, "admin")
    assert result.returncode == 0, result.stdout + result.stderr
    login = requests.post(
        f"{server.url}/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}, timeout=30
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    secret = requests.post(f"{server.url}/auth/mfa/totp/setup", headers=headers, timeout=30).json()["secret"]
    confirmed = requests.post(
        f"{server.url}/auth/mfa/totp/confirm",
        headers=headers,
        json={"code": pyotp.TOTP(secret).now()},
        timeout=30,
    )
    assert confirmed.status_code == 200, confirmed.text
    return {
        "TRIKCHI_FUZZ_URL": server.url,
        "TRIKCHI_FUZZ_PASSWORD": PASSWORD,
        "TRIKCHI_FUZZ_ADMIN": ADMIN_EMAIL,
        "TRIKCHI_FUZZ_TOTP_SECRET": secret,
        "TRIKCHI_FUZZ_RECOVERY_CODES": ",".join(confirmed.json()["recovery_codes"]),
        "TRIKCHI_FUZZ_CUSTOMER": CUSTOMER_EMAIL,
        "TRIKCHI_FUZZ_BYSTANDER_ID": str(ids[BYSTANDER_EMAIL]),
    }


@pytest.mark.slow
def test_schemathesis_finds_nothing(fuzz_server, tmp_path):
    env = {
        **os.environ,
        **make_accounts(fuzz_server),
        "SCHEMATHESIS_HOOKS": "tests.support.fuzz_hooks",
        "NO_COLOR": "1",
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{fuzz_server.url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(CLI_EXAMPLES),
        "--generation-deterministic",  # and so no example database
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    summary = output[output.rfind("=" * 20 + " SUMMARY") :] if "SUMMARY" in output else output[-4000:]
    print(f"schemathesis took {time.monotonic() - started:.0f} s\n{summary}")
    assert result.returncode == 0, output[-20000:]


def test_the_allowances_are_for_the_listed_refusals():
    """schemathesis.toml takes a 422 to valid input exactly where tests/support/fuzz.py names fields."""
    config = tomllib.loads((ROOT / "schemathesis.toml").read_text())
    allowed = {
        operation["include-name"]
        for operation in config["operations"]
        if "422" in operation["checks"].get("positive_data_acceptance", {}).get("expected-statuses", [])
    }
    assert allowed == set(SEMANTIC_REFUSALS)


# --- in-process, per operation -----------------------------------------------------------------

# Operations that take no input at all have no invalid input to generate.
NO_INPUT = {
    ("post", "/auth/logout"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/auth/verify_email/request"),
    ("get", "/auth/identities"),
    ("get", "/auth/providers"),
    # Any query is the provider's to send; every one is answered by a redirect to the frontend.
    ("get", "/auth/oauth/{provider}/callback"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration"),
    ("post", "/auth/passkeys/authentication/options"),
}
CASES = [
    pytest.param(method, path, mode, id=f"{method.upper()} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and (method, path) in NO_INPUT)
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_conforms_to_its_schema(fuzz_app, method, path, mode):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    operation = schema[path][method.upper()]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run: a failure is the code's, not the draw's
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        credentials = {}
        if mode is GenerationMode.POSITIVE:
            # Valid input comes from a real signed-in browser, so authenticated operations
            # are explored past the 401. Negative cases are sent exactly as generated.
            browser = AuthActions(fuzz_app.test_client())
            if browser.login(email="fuzz@example.com").status_code != 200:
                browser.register(email="fuzz@example.com")
                make_admin(fuzz_app, "fuzz@example.com")  # so the admin API is explored too
                browser.login(email="fuzz@example.com")
            credentials = {
                "cookies": {
                    "refresh_token": browser.refresh_cookie(),
                    "csrf_refresh_token": browser.csrf_cookie(),
                },
                "headers": {
                    **(case.headers or {}),
                    "Authorization": f"Bearer {browser.access_token}",
                    "X-CSRF-TOKEN": browser.csrf_cookie(),
                },
            }
        before = counts(fuzz_app)
        response = case.call_and_validate(**credentials)
        if response.status_code >= 400:
            assert counts(fuzz_app) == before, "a rejected request changed the database"

    check()
