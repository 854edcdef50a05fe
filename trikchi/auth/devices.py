"""Device cookies: proof that this browser signed in to an account before.

The per-account login limit would let an attacker lock a customer out by failing
on purpose. A browser that once signed in successfully holds a signed cookie for
that account and is exempt from the per-account limit (it still counts against
the per-IP ones), so the attacker slows down only clients that have no such
proof. This follows OWASP's "device cookies" defence against online guessing.
"""

from __future__ import annotations

import hmac

from flask import current_app, request
from flask.wrappers import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from trikchi.addresses import normalize_email
from trikchi.auth.digests import keyed_digest

COOKIE_NAME = "trikchi_device"
SALT = "trikchi.device-cookie"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def email_fingerprint(email: str) -> str:
    """A keyed hash of the email: the cookie names the account without revealing it."""
    return keyed_digest(current_app.config["SECRET_KEY"], normalize_email(email))


def set_device_cookie(response: Response, email: str) -> None:
    """Remember this browser as one that signed in to ``email``."""
    config = current_app.config
    max_age = config["DEVICE_COOKIE_DAYS"] * 86400
    response.set_cookie(
        COOKIE_NAME,
        _serializer().dumps(email_fingerprint(email)),
        max_age=max_age,
        path="/auth",
        secure=config["COOKIE_SECURE"],
        httponly=True,
        samesite=config["COOKIE_SAMESITE"],
    )


def clear_device_cookie(response: Response) -> None:
    """Forget this browser (the account it signed in to is gone)."""
    response.delete_cookie(COOKIE_NAME, path="/auth")


def is_known_device(email: str | None) -> bool:
    """Whether the request carries a valid device cookie for ``email``."""
    token = request.cookies.get(COOKIE_NAME)
    if not token or not email:
        return False
    try:
        fingerprint = _serializer().loads(token, max_age=current_app.config["DEVICE_COOKIE_DAYS"] * 86400)
    except BadSignature:
        return False
    return isinstance(fingerprint, str) and hmac.compare_digest(fingerprint, email_fingerprint(email))
