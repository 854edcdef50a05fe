"""Rate limits of the auth endpoints (Flask-Limiter), configured by ``RATELIMIT_*``.

Login has three limits: every attempt per IP (hashing is expensive), failed
attempts per IP (one address spraying many accounts) and failed attempts per
account (many addresses against one account) — the last one skipped for a
browser with a device cookie of that account (see ``auth.devices``).

The per-account limit counts each attempt *before* the password is checked, in
one atomic step of the limiter's storage (a moving-window ``hit``: increment and
test together, in process memory under a lock, in Redis in one Lua script), and a
right password then clears the account's count. Counting only once a 401 was
known (``deduct_when``) tested the count before and added to it after the
password check: parallel attempts all passed the test before any was counted
(25 parallel wrong passwords were answered 8 times against a limit of 5).

Wrong codes of a second factor count per account wherever they are entered (a sign-in's
second step, re-authentication, enrolment), with the limiter's own storage: the account is
only known once the ``mfa_token`` or the access token has been read (``check_code_budget``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from flask import current_app, request
from flask.wrappers import Response
from flask_limiter.util import get_remote_address
from limits import parse_many

from trikchi.addresses import normalize_email
from trikchi.auth.devices import is_known_device
from trikchi.auth.digests import sha256_hex
from trikchi.errors import AppError, ErrorCode
from trikchi.extensions import limiter
from trikchi.i18n import N_

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)
LOGIN_FAILURES_PER_EMAIL = "login-failures-email"


def setting(name: str) -> Callable[[], str]:
    """The limit string, read from the config at request time."""
    return lambda: current_app.config[name]


def failed(response: Response) -> bool:
    """Counts against a failures-only limit: the attempt was refused (401)."""
    return response.status_code == 401


def login_email() -> str | None:
    """The email of a login (or reset request) body, if it has one, as accounts are looked up by it:
    every spelling of one address counts against the one account."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return normalize_email(email) if isinstance(email, str) and email.strip() else None


def _email_key() -> str:
    """Counts per account; the email is hashed so that the limiter store holds no addresses."""
    email = login_email()
    if email is None:
        return "ip:" + get_remote_address()
    return "email:" + sha256_hex(email)


def _known_device() -> bool:
    return is_known_device(login_email())


login_attempts = limiter.limit(setting("RATELIMIT_LOGIN"), scope="login")
login_failures_per_ip = limiter.limit(
    setting("RATELIMIT_LOGIN_FAILURES_PER_IP"), scope="login-failures-ip", deduct_when=failed
)
# No deduct_when: the attempt is counted (atomically) before the password is checked.
login_failures_per_email = limiter.limit(
    setting("RATELIMIT_LOGIN_FAILURES_PER_EMAIL"),
    key_func=_email_key,
    scope=LOGIN_FAILURES_PER_EMAIL,
    exempt_when=_known_device,
)
register_attempts = limiter.limit(setting("RATELIMIT_REGISTER"), scope="register")
guest_creations = limiter.limit(setting("RATELIMIT_GUEST"), scope="guest")
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


def forget_login_failures() -> None:
    """The password was right: the account's failure count starts again, this attempt's included.

    The moving window can take back no single attempt, so the whole count goes, as a
    successful sign-in resets a lockout counter elsewhere (django-axes, Devise). Only a
    right password gets here, which a guesser does not have.
    """
    try:
        for limit in limiter.current_limits:
            if limit.request_args[-1].rsplit(":", 1)[-1] == LOGIN_FAILURES_PER_EMAIL:
                limiter.limiter.clear(limit.limit, *limit.request_args)
    except Exception:  # noqa: BLE001 - a storage outage must not fail a sign-in (like the decorators)
        log.exception("rate limit storage failed")
