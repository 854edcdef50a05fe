"""Accounts and passwords: registration, password sign-in, password change and re-authentication.

Services own the transaction (they commit), raise ``trikchi.errors`` domain
errors, and never touch the request or build a response. A right password ends in the
sign-in decision (``auth.signin``); sessions and refresh rotation live in
``auth.sessions``, the audit log in ``trikchi.events``.
"""

from __future__ import annotations

from typing import NoReturn

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from trikchi.auth import guests, screening, security, signin
from trikchi.auth.limits import check_code_budget, spend_code_attempt
from trikchi.auth.models import User
from trikchi.auth.passwords import password_problems, passwords
from trikchi.auth.schemas import normalize_email
from trikchi.auth.sessions import mark_authenticated, refuse_if_account_gone, revoke_all_sessions
from trikchi.auth.tokens import TokenPair, issue_access_token
from trikchi.database import utcnow
from trikchi.errors import Conflict, ErrorCode, Unauthorized, ValidationFailed
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_

INVALID_CREDENTIALS = N_("Invalid email or password.")
EMAIL_TAKEN = N_("This email is already registered.")
WRONG_CODE = N_("The code is wrong or was already used.")


def register_user(
    name: str, email: str, password: str, client: ClientInfo | None, role: str = "customer"
) -> User:
    """Create a user (a customer unless told); ``Conflict`` if the email is taken (also under a race).

    A throwaway address or a breached password is refused (``auth.screening``, SPEC §16).
    """
    email = normalize_email(email)
    _refuse_taken(email, password)
    user = User(name=name, email=email, password_hash=passwords.hash(password), role=role)
    db.session.add(user)
    try:
        db.session.flush()
        record_event(Events.REGISTERED, client, user_id=user.id)
        db.session.commit()
    except IntegrityError:
        # Another request registered the same email between our check and insert.
        db.session.rollback()
        raise Conflict(EMAIL_TAKEN, error=ErrorCode.EMAIL_TAKEN) from None
    return user


def register_guest(guest_id: int, name: str, email: str, password: str, client: ClientInfo) -> User:
    """The guest registers: it becomes this customer, keeping its id and sessions (SPEC §15); commit.

    A taken email is the plain 409 ``email_taken`` (also when taken at the same moment: the
    unique index decides), and the guest stays as it was; ``guests.GuestGone`` (409) when the
    guest became an account meanwhile (another tab's registration won).
    """
    email = normalize_email(email)
    _refuse_taken(email, password)
    password_hash = passwords.hash(password)  # before the guest's row is locked: it takes a while

    def credentials(user: User) -> None:
        user.name, user.email, user.password_hash = name, email, password_hash

    try:
        user = guests.upgrade(guest_id, credentials, "password", client)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(EMAIL_TAKEN, error=ErrorCode.EMAIL_TAKEN) from None
    return user


def _refuse_taken(email: str, password: str) -> None:
    """422 ``disposable_email`` for a throwaway address, 409 ``email_taken`` when an account has
    ``email``, 422 ``password_breached`` for a breached password (``auth.screening``, SPEC §16)."""
    screening.refuse_disposable_email(email, "email")
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(EMAIL_TAKEN, error=ErrorCode.EMAIL_TAKEN)
    screening.refuse_breached_password(password, "password")


def authenticate(email: str, password: str, client: ClientInfo) -> signin.SignInResult:
    """Check credentials, then the sign-in decision: a session, or the second step when a second
    factor is on; one generic error for every failure."""
    email = normalize_email(email)
    user = db.session.scalar(select(User).where(User.email == email))
    # Unknown emails are verified against a dummy hash: same time, same answer.
    valid = passwords.verify(user.password_hash if user else None, password)
    if not valid or user is None:
        _login_failed(client, user.id if user else None, "bad_credentials")
    user_id = user.id
    try:
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash(password)
        return signin.decide(user, client, "password")
    except signin.AccountRefused as refused:
        # Only now, after the right password: a wrong one learns nothing about the account.
        db.session.rollback()
        _login_failed(client, user_id, refused.reason, refused)
    except (IntegrityError, StaleDataError):
        # The account was deleted since it was read (the rehash, the second step or the session
        # names it): the generic 401, as for an unknown email.
        refuse_if_account_gone(user_id, client, "password")
        raise


def _login_failed(
    client: ClientInfo, user_id: int | None, reason: str, refused: signin.AccountRefused | None = None
) -> NoReturn:
    """Audit a refused password sign-in, commit, and answer the one generic 401 (or the refusal's
    own answer: a ban's 403)."""
    record_event(Events.LOGIN_FAILED, client, user_id=user_id, details={"reason": reason})
    db.session.commit()
    if refused is not None:
        refused.raise_answer()
    raise Unauthorized(INVALID_CREDENTIALS, error=ErrorCode.INVALID_CREDENTIALS)


def change_password(
    user: User, current_password: str, new_password: str, client: ClientInfo, current_session_id: str | None
) -> None:
    """Replace the password after checking the current one; end every other session."""
    if not passwords.verify(user.password_hash, current_password):
        raise ValidationFailed(
            "The current password is wrong.", errors={"current_password": ["The current password is wrong."]}
        )
    problems = password_problems(new_password, user.email)
    if not problems and passwords.verify(user.password_hash, new_password):
        problems = [N_("The new password must differ from the current one.")]
    if problems:
        refused = {"new_password": problems}
        raise ValidationFailed(errors=refused)
    screening.refuse_breached_password(new_password, "new_password")
    user.password_hash = passwords.hash(new_password)
    security.bump(user)
    count = revoke_all_sessions(user.id, "password_changed", except_session_id=current_session_id)
    record_event(
        Events.PASSWORD_CHANGED,
        client,
        user_id=user.id,
        session_id=current_session_id,
        details={"revoked_sessions": count},
    )
    db.session.commit()


def reauthenticate(
    user: User, password: str, client: ClientInfo, session_id: str, code: str | None = None
) -> TokenPair:
    """Confirm the password (and, with TOTP on, a code) of the signed-in user: the sign-in is fresh again.

    Returns a new access token carrying the new ``auth_time``; the refresh cookie is
    untouched (its session now carries the new time into every later refresh).
    """
    if not passwords.verify(user.password_hash, password):
        record_event(Events.REAUTHENTICATION_FAILED, client, user_id=user.id, session_id=session_id)
        db.session.commit()
        raise Unauthorized("The password is wrong.", error=ErrorCode.INVALID_CREDENTIALS)
    method = "password"
    if signin.second_step_methods(user.id):
        if code is None:
            message = (
                "Two-factor sign-in is on: enter a code from your authenticator app (or a recovery code)."
            )
            raise ValidationFailed(message, errors={"code": [message]})
        check_code_budget(user.id)
        method = signin.verify_second_factor(user.id, code)
        if method is None:
            db.session.rollback()
            spend_code_attempt(user.id)
            record_event(
                Events.REAUTHENTICATION_FAILED,
                client,
                user_id=user.id,
                session_id=session_id,
                details={"reason": "wrong_code"},
            )
            db.session.commit()
            raise Unauthorized(WRONG_CODE, error=ErrorCode.INVALID_MFA_CODE)
    now = utcnow()
    mark_authenticated(session_id, now, method=method)
    record_event(
        Events.REAUTHENTICATED, client, user_id=user.id, session_id=session_id, details={"method": method}
    )
    pair = issue_access_token(current_app, user.id, user.role, session_id, now, auth_time=now)
    db.session.commit()
    return pair
