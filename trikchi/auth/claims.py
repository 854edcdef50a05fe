"""What a well-formed trikchi token looks like: its header and its claims, by name and type.

Every token trikchi mints has all of the claims below with these types, so
anything else was not minted by trikchi and is refused (401 ``token_invalid``)
before any value is compared, and long before a claim reaches the database. Then
the times: ``exp`` passed is 401 ``token_expired``; ``nbf`` or ``iat`` in the future
is ``token_invalid`` (both with the leeway, as PyJWT does).
"""

from __future__ import annotations

import re
from typing import Any

from trikchi.auth.jws import TokenError
from trikchi.auth.models import MAX_ID

ACCESS = "access"
REFRESH = "refresh"

# Headers that tell a verifier where to fetch or find a key: never followed, always refused.
KEY_LOCATING_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"})

_TIMESTAMPS = ("exp", "iat", "nbf")
_USER_ID = re.compile(r"[1-9][0-9]{0,9}")
_MAX_TEXT = 128
# Claims that must be present, per token type, beyond the timestamps, jti, type and sub.
_STRING_CLAIMS = {ACCESS: ("sid", "role"), REFRESH: ("sid", "csrf")}


def check_header(header: dict[str, Any]) -> None:
    """Refuse headers that point at a key: the key is always trikchi's own."""
    if KEY_LOCATING_HEADERS.intersection(header):
        raise TokenError("key-locating header")


def check_claims(claims: dict[str, Any]) -> None:
    """Refuse a payload that lacks a required claim or has one of the wrong type."""
    for name in _TIMESTAMPS:
        value = claims.get(name)
        if type(value) is not int:  # bool is an int subclass, and floats/strings are not ours
            raise TokenError(f"claim {name} must be an integer")
    token_type = claims.get("type")
    if token_type not in _STRING_CLAIMS:
        raise TokenError("claim type must be access or refresh")
    if not _is_text(claims.get("jti")):
        raise TokenError("claim jti must be a string")
    if user_id(claims) is None:
        raise TokenError("claim sub must be a user id")
    for name in _STRING_CLAIMS[token_type]:
        if not _is_text(claims.get(name)):
            raise TokenError(f"claim {name} must be a string")
    # auth_time (SPEC §8) is absent only from access tokens minted before it existed: those
    # are never fresh. When present it is an integer like the other timestamps.
    if "auth_time" in claims and type(claims["auth_time"]) is not int:
        raise TokenError("claim auth_time must be an integer")


class ExpiredToken(TokenError):
    """A well-formed token whose ``exp`` has passed."""


def check_times(claims: dict[str, Any], now: float, leeway: int) -> None:
    """``exp`` not passed, ``nbf`` and ``iat`` not in the future (``check_claims`` came first)."""
    if claims["exp"] <= now - leeway:
        raise ExpiredToken("expired")
    if claims["nbf"] > now + leeway or claims["iat"] > now + leeway:
        raise TokenError("not yet valid")


def check_audience(claims: dict[str, Any], audience: str) -> None:
    """``aud`` is ``audience`` or a list of strings holding it (RFC 7519 §4.1.3)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        aud = [aud]
    if not isinstance(aud, list) or not all(isinstance(a, str) for a in aud) or audience not in aud:
        raise TokenError("wrong audience")


def user_id(claims: dict[str, Any]) -> int | None:
    """The user id in ``sub`` (a decimal string that fits the id column), else None."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or _USER_ID.fullmatch(sub) is None:
        return None
    number = int(sub)
    return number if number <= MAX_ID else None


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_TEXT
