"""Email verification and password reset: signed, expiring, single-use link tokens.

Nothing is stored for a link. Each token is signed with ``SECRET_KEY`` (its own
salt per purpose), expires, and is bound to the state it changes: a verification
token to the current email (useless after the email changes, and spent once the
address is verified), a reset token to the current password hash (spent the
moment the password changes, by this token or any other way).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from flask import current_app, render_template_string
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from trikchi.auth.digests import keyed_digest
from trikchi.auth.events import Events, record_event
from trikchi.auth.models import User
from trikchi.auth.passwords import password_problems
from trikchi.auth.schemas import normalize_email
from trikchi.auth.sessions import revoke_all_sessions
from trikchi.errors import ErrorCode, Unauthorized, ValidationFailed
from trikchi.extensions import db, passwords
from trikchi.http import ClientInfo
from trikchi.mail import send_mail

VERIFY_SALT = "trikchi.verify-email"
RESET_SALT = "trikchi.password-reset"
INVALID_LINK = "This link is invalid, expired or already used."

MAIL_HTML = """<!doctype html>
<html><body style="font-family: sans-serif">
<p>Hello {{ name }},</p>
<p>{{ intro }}</p>
<p><a href="{{ link }}">{{ action }}</a></p>
<p>The link works once and expires in {{ expires }}. If you did not ask for it, ignore this mail.</p>
<p>— trikchi.uz</p>
</body></html>"""


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _fingerprint(value: str) -> str:
    return keyed_digest(current_app.config["SECRET_KEY"], value)


def _load(token: str, salt: str, max_age: int) -> dict[str, Any]:
    try:
        data = _serializer(salt).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK) from None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    return data


def _send(user: User, subject: str, intro: str, action: str, path: str, token: str, expires: str) -> None:
    link = f"{current_app.config['FRONTEND_URL']}/{path}?{urlencode({'token': token})}"
    text = (
        f"Hello {user.name},\n\n{intro}\n\n{action}: {link}\n\n"
        f"The link works once and expires in {expires}. If you did not ask for it, ignore this mail.\n\n"
        "— trikchi.uz\n"
    )
    html = render_template_string(
        MAIL_HTML, name=user.name, intro=intro, link=link, action=action, expires=expires
    )
    send_mail(user.email, subject, text, html)


def request_email_verification(user: User, client: ClientInfo) -> None:
    """Mail a verification link for the user's current email (nothing if already verified)."""
    if user.email_verified:
        return
    token = _serializer(VERIFY_SALT).dumps({"uid": user.id, "em": _fingerprint(user.email)})
    hours = current_app.config["EMAIL_VERIFY_HOURS"]
    _send(
        user,
        "Confirm your email for trikchi.uz",
        "Please confirm that this is your email address.",
        "Confirm my email",
        "verify-email",
        token,
        f"{hours} hours",
    )
    record_event(Events.EMAIL_VERIFICATION_REQUESTED, client, user_id=user.id)
    db.session.commit()


def verify_email(token: str, client: ClientInfo) -> User:
    """Mark the address verified; a token for another (older) email or a spent one is refused."""
    data = _load(token, VERIFY_SALT, current_app.config["EMAIL_VERIFY_HOURS"] * 3600)
    user = db.session.get(User, data["uid"])
    if (
        user is None
        or not user.is_active
        or user.email_verified
        or not hmac.compare_digest(str(data.get("em")), _fingerprint(user.email))
    ):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    user.email_verified = True
    record_event(Events.EMAIL_VERIFIED, client, user_id=user.id)
    db.session.commit()
    return user


def request_password_reset(email: str, client: ClientInfo) -> None:
    """Mail a reset link if the account exists; the caller answers the same either way."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None or not user.is_active:
        # The same kind of work as for an account: an event (no address), its webhooks, a commit.
        record_event(Events.PASSWORD_RESET_REQUESTED, client, details={"account": "none"})
        db.session.commit()
        return
    token = _serializer(RESET_SALT).dumps({"uid": user.id, "ph": _fingerprint(user.password_hash)})
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    _send(
        user,
        "Reset your trikchi.uz password",
        "Someone (hopefully you) asked to reset the password of your trikchi.uz account.",
        "Choose a new password",
        "reset-password",
        token,
        f"{minutes} minutes",
    )
    record_event(Events.PASSWORD_RESET_REQUESTED, client, user_id=user.id)
    db.session.commit()


def reset_password(token: str, new_password: str, client: ClientInfo) -> None:
    """Set a new password from a reset link, then end every session of the account."""
    data = _load(token, RESET_SALT, current_app.config["PASSWORD_RESET_MINUTES"] * 60)
    user = db.session.get(User, data["uid"])
    if (
        user is None
        or not user.is_active
        or not hmac.compare_digest(str(data.get("ph")), _fingerprint(user.password_hash))
    ):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    problems = password_problems(new_password, user.email)
    if problems:
        raise ValidationFailed(errors={"new_password": problems})
    user.password_hash = passwords.hash(new_password)
    count = revoke_all_sessions(user.id, "password_reset", except_session_id=None)
    record_event(Events.PASSWORD_RESET, client, user_id=user.id, details={"revoked_sessions": count})
    db.session.commit()
