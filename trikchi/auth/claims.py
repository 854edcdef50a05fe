"""What a well-formed trikchi token looks like: the rules PyJWT and flask-jwt-extended leave to us.

Every token trikchi mints has all of the claims below with these types, so anything
else was not minted by trikchi and is refused (401 ``token_invalid``) before a key is
chosen, a value compared or a claim sent to the database. flask-jwt-extended's
``decode_key_loader`` applies these rules (``auth.tokens``): it is the one hook that sees
the claims as they were minted — after decoding, the library fills in ``type``, ``fresh``
and ``jti`` when they are missing — and the type decides the key anyway. The times
themselves (``exp``, ``nbf``, ``iat`` with ``JWT_DECODE_LEEWAY``) are PyJWT's checks; a
mistyped ``exp`` is refused here first, so it is invalid rather than expired.
"""

from __future__ import annotations

import re
from typing import Any

from jwt import InvalidTokenError

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
        raise InvalidTokenError("key-locating header")


def check_claims(claims: dict[str, Any]) -> None:
    """Refuse a payload that lacks a required claim or has one of the wrong type."""
    for name in _TIMESTAMPS:
        if type(claims.get(name)) is not int:  # bool is an int subclass, and floats/strings are not ours
            raise InvalidTokenError(f"claim {name} must be an integer")
    token_type = claims.get("type")
    if token_type not in _STRING_CLAIMS:
        raise InvalidTokenError("claim type must be access or refresh")
    if not _is_text(claims.get("jti")):
        raise InvalidTokenError("claim jti must be a string")
    if user_id(claims) is None:
        raise InvalidTokenError("claim sub must be a user id")
    for name in _STRING_CLAIMS[token_type]:
        if not _is_text(claims.get(name)):
            raise InvalidTokenError(f"claim {name} must be a string")
    # auth_time (SPEC §8) is absent only from access tokens minted before it existed: those
    # are never fresh. When present it is an integer like the other timestamps.
    if "auth_time" in claims and type(claims["auth_time"]) is not int:
        raise InvalidTokenError("claim auth_time must be an integer")


def has_audience(claims: dict[str, Any], audience: str) -> bool:
    """Whether ``aud`` is ``audience`` or a list of strings holding it (RFC 7519 §4.1.3)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        aud = [aud]
    return isinstance(aud, list) and all(isinstance(a, str) for a in aud) and audience in aud


def user_id(claims: dict[str, Any]) -> int | None:
    """The user id in ``sub`` (a decimal string that fits the id column), else None."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or _USER_ID.fullmatch(sub) is None:
        return None
    number = int(sub)
    return number if number <= MAX_ID else None


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_TEXT
