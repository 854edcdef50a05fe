"""What a sign-in method proved about a person, in one shape for every provider."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trikchi.addresses import InvalidEmail, canonical_email
from trikchi.auth.schemas import EMAIL_MAX, NAME_MAX

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class ProviderProfile:
    """A verified identity at ``provider``: its stable ``subject`` and what it says about the person."""

    provider: str
    subject: str
    method: str  # the session's auth_method and the login event's method: oidc:<name>, telegram
    name: str
    email: str | None = None
    email_verified: bool = False


def clean_name(*candidates: object, default: str) -> str:
    """The first usable display name (control characters removed, trimmed, at most NAME_MAX)."""
    for candidate in candidates:
        if isinstance(candidate, str):
            name = _CONTROL.sub("", candidate).strip()[:NAME_MAX].strip()
            if name:
                return name
    return default


def clean_email(value: object) -> str | None:
    """A provider's address in its stored form (``trikchi.addresses``), or None when it is not one
    trikchi can store and mail to: then it is not used to find or make an account."""
    if not isinstance(value, str):
        return None
    try:
        email = canonical_email(value)
    except InvalidEmail:
        return None
    return email if len(email) <= EMAIL_MAX else None
