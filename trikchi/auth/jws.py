"""Compact JWS for trikchi's own tokens: signed and verified in one pass, with keys prepared once.

The cryptography is PyJWT's (its algorithm objects sign and verify; its HMAC key
preparation refuses a public key used as a secret). What is done here instead of
``jwt.encode``/``jwt.decode`` is the framing around it, because PyJWT's per-call
costs were most of verifying a token (see README, Performance): it prepares
the key on every call (for HMAC: a PEM test, a DER parse attempt and a JSON parse
of the secret), checks every base64url character in a Python generator, and
decodes the header twice. Here the segments are checked by one regular expression
and a canonical re-encoding, the header is parsed once, and the key is prepared
once per process.

What a token must look like beyond a valid signature (claims, types, ``exp``…)
is ``auth.claims``; which key and algorithm a token gets is ``auth.tokens``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from functools import lru_cache
from typing import Any

from jwt.algorithms import Algorithm, get_default_algorithms

_ALGORITHMS: dict[str, Algorithm] = get_default_algorithms()
# One segment: unpadded base64url (RFC 7515 §2), non-empty. Tokens are at most a few KiB.
_SEGMENT = re.compile(rb"[A-Za-z0-9_-]+")
MAX_TOKEN_BYTES = 8192


class TokenError(Exception):
    """Not a well-formed compact JWS, or its signature does not verify."""


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64decode(segment: bytes) -> bytes:
    """A segment's bytes; only the canonical unpadded encoding of them is accepted."""
    if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise TokenError("not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("not base64url") from None
    if _b64encode(data) != segment:  # other trailing bits: another string for the same bytes
        raise TokenError("not canonical base64url")
    return data


# json.dumps with separators builds a new encoder on every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))  # str: json skips guessing the encoding
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's depth
        raise TokenError("not JSON") from None
    if not isinstance(value, dict):
        raise TokenError("not a JSON object")
    return value


def split(token: str) -> tuple[bytes, bytes, bytes]:
    """The header, payload and signature segments of a compact JWS (still encoded)."""
    if not isinstance(token, str) or not token.isascii() or len(token) > MAX_TOKEN_BYTES:
        raise TokenError("not a compact JWS")
    parts = token.encode("ascii").split(b".")
    if len(parts) != 3:
        raise TokenError("not a compact JWS")
    return parts[0], parts[1], parts[2]


def header_of(segments: tuple[bytes, bytes, bytes]) -> dict[str, Any]:
    """The header of a token ``split`` already, unverified: only to choose the key (and pin its
    algorithm). A copy, nested values included: the caller may keep or change it."""
    header = _parsed_header(segments[0])
    if any(isinstance(value, (dict, list)) for value in header.values()):
        return copy.deepcopy(header)
    return dict(header)


@lru_cache(maxsize=32)
def _parsed_header(segment: bytes) -> dict[str, Any]:
    """A header segment decoded and parsed, once per distinct segment. Every token signed with
    one key has the same header, so this is a handful of entries, however many tokens there
    are; it holds no verdict (the signature is checked on every token). Not to be mutated:
    ``header_of`` hands out copies. A refused segment raises and is not cached."""
    return _json_object(_b64decode(segment))


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload, unverified: to tell a foreign token from ours, never to trust."""
    header, payload, _signature = split(token)
    return _json_object(_b64decode(header)), _json_object(_b64decode(payload))


def verify(
    token: str | tuple[bytes, bytes, bytes], alg: str, key: Any, header: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of ``token`` once its ``alg`` signature verifies under ``key``.

    ``alg`` is the caller's choice (pinned), never read from the token: a token whose
    header names another algorithm is refused. A caller that read the header to choose
    the key passes the token ``split`` and its ``header``.
    """
    header_segment, payload_segment, signature_segment = split(token) if isinstance(token, str) else token
    if header is None:
        header = header_of((header_segment, payload_segment, signature_segment))
    if header.get("alg") != alg:
        raise TokenError("unexpected algorithm")
    signature = _b64decode(signature_segment)
    if not _ALGORITHMS[alg].verify(header_segment + b"." + payload_segment, key, signature):
        raise TokenError("bad signature")
    return header, _json_object(_b64decode(payload_segment))


def sign(claims: dict[str, Any], alg: str, key: Any, kid: str | None = None) -> str:
    """A compact JWS of ``claims`` (header ``alg``, ``kid`` when given, ``typ: JWT``)."""
    signing_input = _header_segment(alg, kid) + b"." + _b64encode(_COMPACT_JSON.encode(claims).encode())
    return (signing_input + b"." + _b64encode(_ALGORITHMS[alg].sign(signing_input, key))).decode("ascii")


@lru_cache(maxsize=32)
def _header_segment(alg: str, kid: str | None) -> bytes:
    """The encoded header of every token signed with ``alg`` (and ``kid``): built once."""
    header: dict[str, Any] = {"alg": alg, "kid": kid, "typ": "JWT"} if kid else {"alg": alg, "typ": "JWT"}
    return _b64encode(_COMPACT_JSON.encode(header).encode())


@lru_cache(maxsize=8)
def hmac_key(secret: str) -> Any:
    """``secret`` prepared for HS256 once (PyJWT refuses a PEM/DER/JWK public key as a secret)."""
    return _ALGORITHMS["HS256"].prepare_key(secret)
