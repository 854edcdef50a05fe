"""Rate limits of the phone endpoints (Flask-Limiter), configured by ``RATELIMIT_PHONE_*`` and
``SMS_DAILY_LIMIT``; shared between workers and hosts through ``RATELIMIT_STORAGE_URI``.

Per IP, as the other doors: every code request, and every wrong code. Per number and for the
whole service, counted only for a code that is about to be sent (a valid number, past the CAPTCHA):
the resend window (one code per number per ``RESEND_SECONDS``), ``RATELIMIT_PHONE_CODE_PER_NUMBER``,
and ``SMS_DAILY_LIMIT`` — a limit with one key for everyone. Each is one atomic step of the
limiter's storage (a moving-window ``hit``: test and count together), so racing requests cannot
all pass. ``RATELIMIT_ENABLED=false`` turns them all off; the five wrong tries of a code are the
code's own (``phone.services``) and stay.
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app
from limits import parse, parse_many

from trikchi.auth.digests import sha256_hex
from trikchi.auth.limits import TooManyAttempts, failed, setting
from trikchi.extensions import limiter

log = logging.getLogger(__name__)

# How long after a code the next one to the same number is refused (the answer's resend_after).
RESEND_SECONDS = 60

code_requests = limiter.limit(setting("RATELIMIT_PHONE_CODE"), scope="phone-code")
verify_failures = limiter.limit(
    setting("RATELIMIT_PHONE_VERIFY"), scope="phone-verify-failures", deduct_when=failed
)


def _budgets(phone: str) -> list[tuple[object, str, str]]:
    """(limit, scope, key) of a code to ``phone``, in the order they are spent."""
    config = current_app.config
    if not config.get("RATELIMIT_ENABLED", True):
        return []
    number = sha256_hex(phone)  # the limiter's storage holds no phone number
    return [
        (parse(f"1 per {RESEND_SECONDS} seconds"), "phone-resend", number),
        *((item, "phone-number", number) for item in parse_many(config["RATELIMIT_PHONE_CODE_PER_NUMBER"])),
        (parse(f"{config['SMS_DAILY_LIMIT']} per day"), "sms-daily", "all"),
    ]


def spend_sms_budget(phone: str) -> None:
    """Count one code to ``phone`` against every limit of it; ``TooManyAttempts`` (429 with
    ``Retry-After``) at the first one used up, whose count it leaves as it was."""
    try:
        for item, scope, key in _budgets(phone):
            if not limiter.limiter.hit(item, scope, key):
                reset_at = limiter.limiter.get_window_stats(item, scope, key).reset_time
                retry = max(1, math.ceil(reset_at - time.time()))
                raise TooManyAttempts(headers={"Retry-After": str(retry)})
    except TooManyAttempts:
        raise
    except Exception:  # noqa: BLE001 - a storage outage must not lock everyone out (like the decorators)
        log.exception("rate limit storage failed")
