"""Rate limits of second factors and passkeys (Flask-Limiter), configured by ``RATELIMIT_*``.

Per IP: every call of the enrolment and passkey endpoints, and failed second steps
of a sign-in. Per account: every wrong TOTP or recovery code, wherever it is
entered (sign-in, confirm, disable, re-authentication), counted in the service
with the limiter's own storage — the account is only known once the
``mfa_token`` or access token has been read.
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app
from limits import parse_many

from trikchi.auth.limits import failed, setting
from trikchi.errors import AppError, ErrorCode
from trikchi.extensions import limiter
from trikchi.i18n import N_

log = logging.getLogger(__name__)


mfa_attempts = limiter.limit(setting("RATELIMIT_MFA"), scope="mfa")
mfa_failures_per_ip = limiter.limit(
    setting("RATELIMIT_MFA_FAILURES_PER_IP"), scope="mfa-failures-ip", deduct_when=failed
)
passkey_attempts = limiter.limit(setting("RATELIMIT_PASSKEY"), scope="passkey")
passkey_failures_per_ip = limiter.limit(
    setting("RATELIMIT_MFA_FAILURES_PER_IP"), scope="passkey-failures-ip", deduct_when=failed
)


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
