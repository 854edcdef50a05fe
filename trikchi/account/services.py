"""Email verification and password reset: signed, expiring, single-use link tokens.

Nothing is stored for a link. Each token is signed with ``SECRET_KEY`` (its own
salt per purpose), expires, and is bound to the account's security stamp
(``auth.security``): a verification token also to the current email (useless after
the email changes, and spent once the address is verified), a reset token to the
stamp alone, which its use changes — by one conditional write, so it works once however
many requests race with it — as does any other change of the account's security.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy import select, update

from trikchi.auth import screening, security, signin
from trikchi.auth.links import INVALID_LINK, dump_link, fingerprint, load_link
from trikchi.auth.models import User
from trikchi.auth.passwords import password_problems, passwords
from trikchi.auth.schemas import normalize_email
from trikchi.auth.sessions import revoke_all_sessions
from trikchi.errors import ErrorCode, Unauthorized, ValidationFailed
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import user_locale
from trikchi.mails import mail_user, render_mail
from trikchi.outbox.services import ComposedMail, composer, queue_composed_mail

VERIFY_SALT = "trikchi.verify-email"
RESET_SALT = "trikchi.password-reset"


def _send(user: User, kind: str, path: str, token: str, **values: object) -> None:
    link = f"{current_app.config['FRONTEND_URL']}/{path}?{urlencode({'token': token})}"
    mail_user(user, kind, link=link, **values)


def request_email_verification(user: User, client: ClientInfo) -> None:
    """Mail a verification link for the user's current email (nothing if verified or there is none)."""
    if user.email_verified or not user.email:
        return
    token = dump_link(VERIFY_SALT, {"uid": user.id, "em": fingerprint(user.email), "st": user.security_stamp})
    _send(user, "verify_email", "verify-email", token, hours=current_app.config["EMAIL_VERIFY_HOURS"])
    record_event(Events.EMAIL_VERIFICATION_REQUESTED, client, user_id=user.id)
    db.session.commit()


def verify_email(token: str, client: ClientInfo) -> User:
    """Mark the address verified; a token for another (older) email or a spent one is refused."""
    data = load_link(token, VERIFY_SALT, current_app.config["EMAIL_VERIFY_HOURS"] * 3600)
    user = db.session.get(User, data["uid"])
    if (
        user is None
        or user.email is None
        or not hmac.compare_digest(str(data.get("em")), fingerprint(user.email))
        or not security.matches(user, data.get("st"))
    ):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    # Used once: one conditional write, whatever races it.
    verified = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            User.email == user.email,
            User.email_verified.is_(False),
            User.security_stamp == user.security_stamp,
            User.is_active.is_(True),
        )
        .values(email_verified=True)
        .execution_options(synchronize_session=False)
    ).rowcount
    if verified != 1:
        db.session.rollback()
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    db.session.refresh(user)
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
    # An account without a password (social sign-in) gets one this way. The link is bound to the
    # account's security state: any password change, reset or other security change kills it.
    token = dump_link(RESET_SALT, {"uid": user.id, "st": user.security_stamp})
    link = f"{current_app.config['FRONTEND_URL']}/reset-password?{urlencode({'token': token})}"
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    locale = values.get("locale") or current_app.config["DEFAULT_LOCALE"]
    subject, text, html = render_mail("password_reset", locale, name=user.name, link=link, minutes=minutes)
    return ComposedMail(user.email, subject, text, html)


def reset_password(token: str, new_password: str, client: ClientInfo) -> None:
    """Set a new password from a reset link, then end every session of the account.

    The link is used once: its stamp is consumed by one conditional write, whatever races it.
    The link reached the address, so the address is proven: a never-verified account starts
    clean (``signin.start_clean``): whoever set it up before may not have owned the address.
    """
    data = load_link(token, RESET_SALT, current_app.config["PASSWORD_RESET_MINUTES"] * 60)
    user = db.session.get(User, data["uid"])
    if user is None or not user.is_active or not security.matches(user, data.get("st")):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    problems = password_problems(new_password, user.email)
    if problems:
        refused = {"new_password": problems}
        raise ValidationFailed(errors=refused)
    screening.refuse_breached_password(new_password, "new_password")
    claimed = not user.email_verified
    if not security.consume(user, data.get("st"), password_hash=passwords.hash(new_password)):
        db.session.rollback()
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    details: dict[str, object] = {}
    if claimed:
        details = signin.start_clean(user, "account_claimed")
    else:
        details["revoked_sessions"] = revoke_all_sessions(user.id, "password_reset", except_session_id=None)
    record_event(Events.PASSWORD_RESET, client, user_id=user.id, details=details)
    db.session.commit()
