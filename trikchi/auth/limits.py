"""Rate limits of the auth endpoints (Flask-Limiter), configured by ``RATELIMIT_*``.

Login has three limits: every attempt per IP (hashing is expensive), failed
attempts per IP (one address spraying many accounts) and failed attempts per
account (many addresses against one account) — the last one skipped for a
browser with a device cookie of that account (see ``auth.devices``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import current_app, request
from flask.wrappers import Response
from flask_limiter.util import get_remote_address

from trikchi.addresses import normalize_email
from trikchi.auth.devices import is_known_device
from trikchi.extensions import limiter


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
