"""Self-service (SPEC §10): the profile (name, language), changing the email, deleting the account.

An email change is confirmed by a signed link mailed to the new address (nothing is
stored): the token names the new address and is bound to the current one and to the
account's security stamp (``auth.security``), so it dies the moment the email changes, the
password changes, every session is ended or a second factor changes. Its use changes the
stamp in one conditional write: it works once. The unique-email rule is checked again when
the link is used, and the unique index decides a race.

Deleting an account removes the user row and everything that cascades from it
(sessions, refresh tokens, and the per-user tables of other features); the audit
events stay, with no email, name, IP address or user agent of the account left in them.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from trikchi.auth import screening, security
from trikchi.auth.admins import refuse_losing_the_last_admin
from trikchi.auth.links import INVALID_LINK, dump_link, fingerprint, load_link
from trikchi.auth.models import AuthSession, RefreshToken, User
from trikchi.auth.schemas import normalize_email
from trikchi.auth.sessions import SESSION_ENDED
from trikchi.errors import Conflict, ErrorCode, Unauthorized, ValidationFailed
from trikchi.events import AuthEvent, Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_
from trikchi.mails import format_when, mail_user
from trikchi.notices import notify_email_changed
from trikchi.outbox.services import forget_mails_to

EMAIL_CHANGE_SALT = "trikchi.email-change"
EMAIL_TAKEN = N_("This email is already registered.")
SAME_EMAIL = N_("This is already your email address.")
UNSET: Any = object()


def update_profile(
    user: User, client: ClientInfo, session_id: str | None, name: str | None = None, locale: Any = UNSET
) -> User:
    """Change the name and/or the language (``None``: follow the browser's Accept-Language)."""
    changed = []
    if name is not None and name != user.name:
        user.name = name
        changed.append("name")
    if locale is not UNSET and locale != user.locale:
        user.locale = locale
        changed.append("locale")
    if changed:
        try:
            db.session.flush()
        except StaleDataError:
            # The account was deleted (DELETE /auth/me) since the guard read it: its sessions went with it.
            db.session.rollback()
            raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED) from None
        # The field names only: the audit log holds no name.
        record_event(
            Events.PROFILE_UPDATED,
            client,
            user_id=user.id,
            session_id=session_id,
            details={"fields": changed},
        )
        db.session.commit()
    return user


def request_email_change(user: User, new_email: str, client: ClientInfo, session_id: str | None) -> None:
    """Mail a confirmation link to ``new_email`` and a notice to the current address.

    The answer is the same whether or not ``new_email`` belongs to another account: that
    is only told to whoever opens the link (409 then).
    """
    new_email = normalize_email(new_email)
    if new_email == user.email:
        raise ValidationFailed(SAME_EMAIL, errors={"new_email": [SAME_EMAIL]})
    screening.refuse_disposable_email(new_email, "new_email")
    token = dump_link(
        EMAIL_CHANGE_SALT,
        {"uid": user.id, "em": fingerprint(user.email or ""), "new": new_email, "st": user.security_stamp},
    )
    link = f"{current_app.config['FRONTEND_URL']}/confirm-email?{urlencode({'token': token})}"
    hours = current_app.config["EMAIL_CHANGE_HOURS"]
    mail_user(user, "confirm_email_change", to=new_email, link=link, hours=hours, new_email=new_email)
    if user.email:
        notify_email_changed(user, user.email, new_email, "email_change_requested")
    record_event(Events.EMAIL_CHANGE_REQUESTED, client, user_id=user.id, session_id=session_id)
    db.session.commit()


def confirm_email_change(token: str, client: ClientInfo) -> User:
    """Switch to the new address of a valid link: verified, since the link reached it.

    409 ``email_taken`` when another account has the address by now (also when it takes
    it at the same moment: the unique index decides).
    """
    data = load_link(token, EMAIL_CHANGE_SALT, current_app.config["EMAIL_CHANGE_HOURS"] * 3600)
    new_email = data.get("new")
    user = db.session.get(User, data["uid"])
    if (
        not isinstance(new_email, str)
        or user is None
        or not user.is_active
        or not hmac.compare_digest(str(data.get("em")), fingerprint(user.email or ""))
        or not security.matches(user, data.get("st"))
    ):
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    if _email_taken(new_email, user.id):
        raise Conflict(EMAIL_TAKEN, error=ErrorCode.EMAIL_TAKEN)
    old_email = user.email
    try:
        used = security.consume(user, data.get("st"), email=new_email, email_verified=True)
    except IntegrityError:
        # Another account took the address between our check and this write.
        db.session.rollback()
        raise Conflict(EMAIL_TAKEN, error=ErrorCode.EMAIL_TAKEN) from None
    if not used:  # another use of the link (or a security change) came first
        db.session.rollback()
        raise Unauthorized(INVALID_LINK, error=ErrorCode.INVALID_LINK)
    record_event(Events.EMAIL_CHANGED, client, user_id=user.id)
    if old_email:
        notify_email_changed(user, old_email, new_email, "email_changed")
    db.session.commit()
    return user


def delete_account(user: User, client: ClientInfo) -> None:
    """Delete the account and its personal data; the audit events stay, anonymous.

    The confirmation mail is rendered and handed over first, while the name and address
    still exist; unsent mails to the address are dropped (the confirmation is the last one, and
    the worker keeps only the subject of a mail it has sent). The last active admin cannot
    delete itself (409 ``last_admin``).
    """
    refuse_losing_the_last_admin(user)
    if user.email:
        forget_mails_to(user.email)
    mail_user(user, "account_deleted", when=format_when())
    session_ids = select(AuthSession.id).where(AuthSession.user_id == user.id).scalar_subquery()
    # The events keep their type and time; who, from where and with what goes.
    db.session.execute(
        update(AuthEvent)
        .where(or_(AuthEvent.user_id == user.id, AuthEvent.session_id.in_(session_ids)))
        .values(user_id=None, session_id=None, ip=None, user_agent=None, details=None)
        .execution_options(synchronize_session=False)
    )
    # Sessions and tokens explicitly (as pruning does); other per-user tables by ON DELETE CASCADE.
    db.session.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(session_ids)))
    db.session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
    db.session.execute(delete(User).where(User.id == user.id).execution_options(synchronize_session=False))
    db.session.expunge(user)
    record_event(Events.ACCOUNT_DELETED, None)
    db.session.commit()


def _email_taken(email: str, user_id: int) -> bool:
    return db.session.scalar(select(User.id).where(User.email == email, User.id != user_id)) is not None
