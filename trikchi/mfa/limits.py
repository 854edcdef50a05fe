"""Rate limits of second factors and passkeys (Flask-Limiter), configured by ``RATELIMIT_*``.

Per IP: every call of the enrolment and passkey endpoints, and failed second steps
of a sign-in. Per account: every wrong TOTP or recovery code, wherever it is
entered, counted by the core's code budget (``auth.limits.check_code_budget``).
"""

from __future__ import annotations

from trikchi.auth.limits import check_code_budget, failed, setting, spend_code_attempt
from trikchi.extensions import limiter

__all__ = ["check_code_budget", "spend_code_attempt"]


mfa_attempts = limiter.limit(setting("RATELIMIT_MFA"), scope="mfa")
mfa_failures_per_ip = limiter.limit(
    setting("RATELIMIT_MFA_FAILURES_PER_IP"), scope="mfa-failures-ip", deduct_when=failed
)
passkey_attempts = limiter.limit(setting("RATELIMIT_PASSKEY"), scope="passkey")
passkey_failures_per_ip = limiter.limit(
    setting("RATELIMIT_MFA_FAILURES_PER_IP"), scope="passkey-failures-ip", deduct_when=failed
)
