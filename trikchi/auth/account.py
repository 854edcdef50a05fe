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

from flask import current_app
from sqlalchemy import select

from trikchi.auth.events import Events, record_event
from trikchi.auth.links import INVALID_LINK, dump_link, fingerprint, load_link
from trikchi.auth.models import User
from trikchi.auth.passwords import password_problems
from trikchi.auth.schemas import normalize_email
from trikchi.auth.sessions import revoke_all_sessions
from trikchi.errors import ErrorCode, Unauthorized, ValidationFailed
from trikchi.extensions import db, passwords
from trikchi.http import ClientInfo
from trikchi.i18n import user_locale
from trikchi.mails import ComposedMail, composer, mail_user, queue_composed_mail, render_mail

VERIFY_SALT = "trikchi.verify-email"
RESET_SALT = "trikchi.password-reset"


def _send(user: User, kind: str, path: str, token: str, **values: object) -> None:
    link = f"{current_app.config['FRONTEND_URL']}/{path}?{urlencode({'token': token})}"
    mail_user(user, kind, link=link, **values)


def request_email_verification(user: User, client: ClientInfo) -> None:
    """Mail a verification link for the user's current email (nothing if verified or there is none)."""
    if user.email_verified or not user.email:
        return
    token = dump_link(VERIFY_SALT, {"uid": user.id, "em": fingerprint(user.email)})
    _send(user, "verify_email", "verify-email", token, hours=current_app.config["EMAIL_VERIFY_HOURS"])
    record_event(Events.EMAIL_VERIFICATION_REQUESTED, client, user_id=user.id)
    db.session.commit()


def verify_email(token: str, client: ClientInfo) -> User:
    """Mark the address verified; a token for another (older) email or a spent one is refused."""
    data = load_link(token, VERIFY_SALT, current_app.config["EMAIL_VERIFY_HOURS"] * 3600)
    user = db.session.get(User, data["uid"])
    if (
        user is None
        or not user.is_active
        or user.email_verified
        or user.email is None
        or not hmac.compare_digest(str(data.get("em")), fingerprint(user.email))
    ):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    user.email_verified = True
    record_event(Events.EMAIL_VERIFIED, client, user_id=user.id)
    db.session.commit()
    return user


def request_password_reset(email: str, client: ClientInfo) -> None:
    """Mail a reset link if the account exists; the caller answers the same either way.

    The request does the same work whether or not it does: one composed mail queued (the
    worker writes it, or drops it when there is no account), one event, one commit.
    """
    # Columns, not an entity: no ORM object is built for an account that exists (none is for none).
    found = db.session.execute(
        select(User.id, User.is_active, User.locale).where(User.email == normalize_email(email))
    ).first()
    account = found if found is not None and found.is_active else None
    user_id = account.id if account is not None else None
    queue_composed_mail("password_reset", user_id=user_id, locale=user_locale(account))
    details = None if account is not None else {"account": "none"}  # no address for no account
    record_event(Events.PASSWORD_RESET_REQUESTED, client, user_id=user_id, details=details)
    db.session.commit()


@composer("password_reset")
def compose_password_reset(values: dict[str, Any]) -> ComposedMail | None:
    """The reset mail, written by the worker when it sends it (a fresh link); None: no account."""
    user = db.session.get(User, values["user_id"]) if values.get("user_id") else None
    if user is None or not user.is_active or not user.email:
        return None
    # An account without a password (social sign-in) gets one this way; "" stands for none.
    token = dump_link(RESET_SALT, {"uid": user.id, "ph": fingerprint(user.password_hash or "")})
    link = f"{current_app.config['FRONTEND_URL']}/reset-password?{urlencode({'token': token})}"
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    locale = values.get("locale") or current_app.config["DEFAULT_LOCALE"]
    subject, text, html = render_mail("password_reset", locale, name=user.name, link=link, minutes=minutes)
    return ComposedMail(user.email, subject, text, html)


def reset_password(token: str, new_password: str, client: ClientInfo) -> None:
    """Set a new password from a reset link, then end every session of the account."""
    data = load_link(token, RESET_SALT, current_app.config["PASSWORD_RESET_MINUTES"] * 60)
    user = db.session.get(User, data["uid"])
    if (
        user is None
        or not user.is_active
        or not hmac.compare_digest(str(data.get("ph")), fingerprint(user.password_hash or ""))
    ):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    problems = password_problems(new_password, user.email)
    if problems:
        refused = {"new_password": problems}
        raise ValidationFailed(errors=refused)
    user.password_hash = passwords.hash(new_password)
    count = revoke_all_sessions(user.id, "password_reset", except_session_id=None)
    record_event(Events.PASSWORD_RESET, client, user_id=user.id, details={"revoked_sessions": count})
    db.session.commit()
