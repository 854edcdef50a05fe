"""Secrets of second factors at rest: TOTP secrets encrypted, random tokens and codes hashed.

TOTP secrets are encrypted with Fernet under a key derived (HKDF-SHA256) from
``SECRET_KEY``, like the signing keys are under ``SIGNING_KEYS_SECRET``: a copy of
the database alone cannot compute anyone's codes. Changing ``SECRET_KEY`` therefore
turns TOTP off in effect (no code matches); recovery codes still work, because
they are stored as plain SHA-256 digests — enough for 80 random bits, which no one
can guess offline — so a user can still sign in and set TOTP up again.
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from trikchi.keys.material import derived_fernet

log = logging.getLogger(__name__)


def _fernet() -> Fernet:
    return derived_fernet(current_app.config["SECRET_KEY"], b"trikchi totp secrets")


def encrypt_secret(secret: str) -> str:
    """The TOTP secret as a Fernet token."""
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(ciphertext: str) -> str | None:
    """The TOTP secret, or ``None`` (logged) when ``SECRET_KEY`` changed since it was stored."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        log.error("a stored TOTP secret does not decrypt: SECRET_KEY changed since it was set up")
        return None
