"""Abuse limits (Flask-Limiter): where counts are kept and how many attempts each door allows."""

from __future__ import annotations

from typing import Any

from limits import parse_many
from limits.storage import SCHEMES

from trikchi.settings.base import Flag, Integer, Section, Text


class Limit(Text):
    """Flask-Limiter limits such as ``10 per minute;100 per hour``."""

    expects = "limits such as '10 per minute;100 per hour'"

    def parse(self, raw: str, default: Any) -> str:
        try:
            parse_many(raw)
        except ValueError:
            raise self.refuse(raw, default) from None
        return raw


class Storage(Text):
    """A Flask-Limiter storage URI (``memory://``, ``redis://host:6379/0``, …)."""

    expects = "a storage URI such as memory:// or redis://host:6379/0"

    def __init__(self, default: Any, meaning: str) -> None:
        # Never repeated in a message: the URI may hold a password.
        super().__init__(default, meaning, secret=True)

    def parse(self, raw: str, default: Any) -> str:
        scheme, separator, _ = raw.partition("://")
        if not separator or scheme not in SCHEMES or scheme.startswith("async+"):
            raise self.refuse(raw, default)
        return raw


class Limits(Section):
    """Per IP unless said otherwise; a limit is several ``N per period`` joined by ``;``."""

    title = "Rate limits"

    RATELIMIT_ENABLED = Flag(True, "abuse limits on")
    RATELIMIT_STORAGE_URI = Storage(
        "memory://",
        "where counts are kept: `memory://` counts per worker process; `redis://host:6379/0` shares"
        " them between workers and hosts",
    )
    RATELIMIT_LOGIN = Limit("30 per minute", "every login attempt")
    RATELIMIT_LOGIN_FAILURES_PER_IP = Limit("10 per minute;100 per hour", "failed logins")
    RATELIMIT_LOGIN_FAILURES_PER_EMAIL = Limit(
        "5 per minute;20 per hour",
        "login attempts per account, each counted until a right password clears the count (not from a"
        " known device)",
    )
    DEVICE_COOKIE_DAYS = Integer(
        365,
        "lifetime of the known-device cookie, which exempts a browser that signed in before from the"
        " per-account login limit",
        minimum=1,
    )
    RATELIMIT_REGISTER = Limit("10 per minute;50 per hour", "registrations")
    RATELIMIT_GUEST = Limit(
        "20 per minute;200 per hour",
        "new guests (`POST /auth/guest`); generous, as shoppers behind one carrier's NAT share an address",
    )
    RATELIMIT_REFRESH = Limit("60 per minute", "refreshes")
    RATELIMIT_PASSWORD = Limit("10 per minute", "password changes and account deletions")
    RATELIMIT_REAUTHENTICATE = Limit("10 per minute;50 per hour", "re-authentications")
    RATELIMIT_VERIFY_EMAIL = Limit("5 per minute;20 per hour", "email verification requests")
    RATELIMIT_PASSWORD_RESET = Limit("5 per minute;20 per hour", "password reset requests")
    RATELIMIT_PASSWORD_RESET_PER_EMAIL = Limit("3 per hour", "password reset requests per address")
    RATELIMIT_EMAIL_CHANGE = Limit("5 per minute;20 per hour", "email-change requests and confirmations")
    RATELIMIT_MFA = Limit("30 per minute;300 per hour", "second-factor enrolment calls")
    RATELIMIT_PASSKEY = Limit("30 per minute;300 per hour", "passkey calls")
    RATELIMIT_MFA_FAILURES_PER_IP = Limit(
        "10 per minute;100 per hour", "wrong second-factor codes and refused passkeys"
    )
    RATELIMIT_MFA_FAILURES_PER_ACCOUNT = Limit(
        "10 per minute;30 per hour", "wrong TOTP or recovery codes per account, wherever entered"
    )
    RATELIMIT_SOCIAL = Limit(
        "20 per minute;200 per hour", "social sign-ins: authorize, callback and Telegram"
    )
    RATELIMIT_IDENTITIES = Limit("10 per minute", "unlinking a social identity")

    def derived(self) -> dict[str, Any]:
        return {
            "RATELIMIT_STRATEGY": "moving-window",
            "RATELIMIT_KEY_PREFIX": "trikchi",
            "RATELIMIT_HEADERS_ENABLED": False,  # Retry-After is set on 429s by trikchi.errors
            # If Redis goes away, keep limiting per process rather than failing every request.
            "RATELIMIT_SWALLOW_ERRORS": True,
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        }
