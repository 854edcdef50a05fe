"""Rate limits of the auth endpoints (Flask-Limiter), configured by ``RATELIMIT_*``.

Login has three limits: every attempt per IP (hashing is expensive), failed
attempts per IP (one address spraying many accounts) and failed attempts per
account (many addresses against one account) — the last one skipped for a
browser with a device cookie of that account (see ``auth.devices``).

Wrong codes of a second factor count per account wherever they are entered (a sign-in's
second step, re-authentication, enrolment), with the limiter's own storage: the account is
only known once the ``mfa_token`` or the access token has been read (``check_code_budget``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable

from flask import current_app, request
from flask.wrappers import Response
from flask_limiter.util import get_remote_address
from limits import parse_many

from trikchi.auth.devices import is_known_device
from trikchi.errors import AppError, ErrorCode
from trikchi.extensions import limiter
from trikchi.i18n import N_

log = logging.getLogger(__name__)


def setting(name: str) -> Callable[[], str]:
    """The limit string, read from the config at request time."""
    return lambda: current_app.config[name]


def failed(response: Response) -> bool:
    """Counts against a failures-only limit: the attempt was refused (401)."""
    return response.status_code == 401


def login_email() -> str | None:
    """The normalised email of a login (or reset request) body, if it has one."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return email.strip().lower() if isinstance(email, str) and email.strip() else None


def _email_key() -> str:
    """Counts per account; the email is hashed so that the limiter store holds no addresses."""
    email = login_email()
    if email is None:
        return "ip:" + get_remote_address()
    return "email:" + hashlib.sha256(email.encode()).hexdigest()


def _known_device() -> bool:
    return is_known_device(login_email())


login_attempts = limiter.limit(setting("RATELIMIT_LOGIN"), scope="login")
login_failures_per_ip = limiter.limit(
    setting("RATELIMIT_LOGIN_FAILURES_PER_IP"), scope="login-failures-ip", deduct_when=failed
)
login_failures_per_email = limiter.limit(
    setting("RATELIMIT_LOGIN_FAILURES_PER_EMAIL"),
    key_func=_email_key,
    scope="login-failures-email",
    deduct_when=failed,
    exempt_when=_known_device,
)
register_attempts = limiter.limit(setting("RATELIMIT_REGISTER"), scope="register")
refresh_attempts = limiter.limit(setting("RATELIMIT_REFRESH"), scope="refresh")
password_attempts = limiter.limit(setting("RATELIMIT_PASSWORD"), scope="password")
reauthenticate_attempts = limiter.limit(setting("RATELIMIT_REAUTHENTICATE"), scope="reauthenticate")
verify_email_requests = limiter.limit(setting("RATELIMIT_VERIFY_EMAIL"), scope="verify-email")
password_reset_requests = limiter.limit(setting("RATELIMIT_PASSWORD_RESET"), scope="password-reset")
password_reset_requests_per_email = limiter.limit(
    setting("RATELIMIT_PASSWORD_RESET_PER_EMAIL"), key_func=_email_key, scope="password-reset-email"
)
email_change_requests = limiter.limit(setting("RATELIMIT_EMAIL_CHANGE"), scope="email-change")
account_deletions = limiter.limit(setting("RATELIMIT_PASSWORD"), scope="account-deletion")


class TooManyAttempts(AppError):
    """429 with ``Retry-After``, like the decorator limits."""

    status = 429
    error = ErrorCode.RATE_LIMITED
    message = N_("Too many attempts; wait before trying again.")


def _account_limits():
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return []
    return parse_many(current_app.config["RATELIMIT_MFA_FAILURES_PER_ACCOUNT"])


def check_code_budget(user_id: int) -> None:
    """``TooManyAttempts`` when the account has used up its wrong codes for now."""
    try:
        for item in _account_limits():
            if not limiter.limiter.test(item, "mfa-code-failures", str(user_id)):
                reset_at = limiter.limiter.get_window_stats(
                    item, "mfa-code-failures", str(user_id)
                ).reset_time
                retry = max(1, math.ceil(reset_at - time.time()))
                raise TooManyAttempts(headers={"Retry-After": str(retry)})
    except TooManyAttempts:
        raise
    except Exception:  # noqa: BLE001 - a storage outage must not lock everyone out (like the decorators)
        log.exception("rate limit storage failed")


def spend_code_attempt(user_id: int) -> None:
    """Count one wrong code against the account."""
    try:
        for item in _account_limits():
            limiter.limiter.hit(item, "mfa-code-failures", str(user_id))
    except Exception:  # noqa: BLE001 - see check_code_budget
        log.exception("rate limit storage failed")
