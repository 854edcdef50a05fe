"""schemathesis against the app's own OpenAPI document.

For every operation, valid (positive) and invalid (negative) inputs are generated
from the document and sent to the app in-process. Each answer must be no 5xx,
documented, and match its documented schema; a rejected request must not change
the database.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from sqlalchemy import func, select, update

from tests.conftest import AuthActions, make_app
from trikchi.auth.models import AuthSession, User
from trikchi.extensions import db

pytestmark = pytest.mark.fuzz

EXAMPLES_PER_OPERATION = int(os.environ.get("TRIKCHI_FUZZ_EXAMPLES", "30"))
OPERATIONS = [
    ("post", "/auth/register"),
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
    ("get", "/admin/users"),
    ("patch", "/admin/users/{user_id}"),
    ("get", "/admin/audit"),
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


# Well-formed input these refuse for what it means, which no schema can express: a wrong password
# or code (401/422), a credential no authenticator signed (422/401), TOTP not on (409).
SEMANTIC_REFUSALS = {
    "/auth/reauthenticate",
    "/auth/mfa/totp/confirm",
    "/auth/mfa/totp",
    "/auth/mfa/recovery_codes",
    "/auth/mfa/verify",
    "/auth/passkeys/registration/verify",
    "/auth/passkeys/authentication/verify",
}
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
    excluded = []
    if path in {"/auth/register", "/auth/password", "/auth/email"} | SEMANTIC_REFUSALS:
        # A well-formed body with a common password (or a wrong current one) is a
        # semantic refusal (422 naming the field, or 401 for a wrong password to
        # re-authenticate with), which no schema can express; so is an address that
        # mail cannot reach (a reserved domain such as .test, a non-ASCII local part).
        excluded.append(schemathesis.checks.positive_data_acceptance)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
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
        response = case.call_and_validate(**credentials, excluded_checks=excluded)
        if response.status_code >= 400:
            assert counts(fuzz_app) == before, "a rejected request changed the database"

    check()
