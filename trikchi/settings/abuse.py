"""Abuse protection (SPEC §16): breached passwords and throwaway addresses (bans need no setting)."""

from __future__ import annotations

from trikchi.settings.base import Flag, Integer, Section, Text, Url


class Abuse(Section):
    """What new passwords and addresses are checked against."""

    title = "Abuse protection"

    PASSWORD_BREACH_CHECK = Text(
        "off",
        "`hibp`: refuse a new password (registration, change, reset) found in Have I Been Pwned's"
        " breached passwords, by the k-anonymity range query (only 5 hex characters of its SHA-1"
        " leave); `off`: no check",
        choices=("off", "hibp"),
        normalize=str.lower,
    )
    HIBP_RANGE_URL = Url(
        "https://api.pwnedpasswords.com/range", "the range API (`GET {url}/{5 hex}` with `Add-Padding`)"
    )
    PASSWORD_BREACH_TIMEOUT_SECONDS = Integer(
        2, "how long a range query may take before the check counts as unreachable, seconds", minimum=1
    )
    PASSWORD_BREACH_FAIL_CLOSED = Flag(
        False,
        "when the range API is unreachable: refuse the password with 503 (`true`) rather than accept it"
        " with a warning in the log",
    )
    PASSWORD_BREACH_CACHE_HOURS = Integer(
        6,
        "how long an answer of the range API is kept per prefix (in Redis when `RATELIMIT_STORAGE_URI`"
        " is `redis://…`, else per worker process)",
        minimum=1,
    )
    BLOCK_DISPOSABLE_EMAILS = Flag(
        True,
        "refuse registration and email changes to throwaway domains (the disposable-email-domains"
        " list, subdomains included)",
    )
