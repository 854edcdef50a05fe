"""Phone numbers and SMS codes (SPEC §14): a code to a number, signing in with it, changing and
removing the account's number.

A code is 6 digits from ``secrets``, stored as its HMAC-SHA256 under ``SECRET_KEY`` (bound to the
slot it was made for: six digits are guessed offline in no time, a keyed digest is not), alive
``CODE_SECONDS``, single use, and dead after ``MAX_FAILURES`` tries. A try is *spent first*, by
one conditional UPDATE that also reads the code's digest, and only then compared (in constant
time): parallel guesses each pay a try, and never more than ``MAX_FAILURES`` are compared. The
right code is consumed in the same transaction, whose UPDATE holds the row (PostgreSQL) or the
write lock (SQLite) until it commits: of two racing verifies of one code exactly one succeeds.

A new code replaces the previous one of its slot (one pending sign-in per number, one pending
change per account) and is queued as an SMS (``outbox.services.enqueue_sms``) in the same
transaction. A code request does the same work whether or not the number has an account: it
never looks. Events carry a masked number (``phones.mask_phone``), never a code.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import NoReturn

from flask import Flask, current_app
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from trikchi.auth import security, signin
from trikchi.auth.digests import keyed_digest
from trikchi.auth.guards import CurrentUser
from trikchi.auth.methods import refuse_removing_the_last
from trikchi.auth.models import User
from trikchi.auth.seams import of
from trikchi.auth.sessions import SESSION_ENDED
from trikchi.database import lock_for_writing, utcnow
from trikchi.errors import Conflict, ErrorCode, Unauthorized, ValidationFailed
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_, select_locale, translate, user_locale
from trikchi.outbox.services import enqueue_sms
from trikchi.phone.limits import RESEND_SECONDS, spend_sms_budget
from trikchi.phone.models import CHANGE, SIGN_IN, PhoneCode
from trikchi.phones import InvalidPhone, mask_phone, normalize_phone

CODE_SECONDS = 300
MAX_FAILURES = 5
METHOD = "phone"
# The code message; SMS_TEMPLATE_<LANG> replaces it (gateways approve texts in advance).
SMS_TEMPLATE = N_("trikchi.uz code: {code}. Do not tell it to anyone.")
INVALID_CODE = N_("The code is wrong or has expired; ask for a new one.")
PHONE_TAKEN = N_("Another account has this phone number.")
SAME_PHONE = N_("This is already your phone number.")


def init_app(app: Flask) -> None:
    """Register a proven number with the core: a way to sign in, which a clean start removes."""
    registry = of(app)
    registry.sign_in_methods.append(count_phone)
    registry.credential_resets.append(remove_phone_of)


def count_phone(user_id: int) -> int:
    """1 when the user has a proven number (a way to sign in), else 0."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.id == user_id, User.phone.is_not(None), User.phone_verified.is_(True))
        )
        or 0
    )


def remove_phone_of(user_id: int) -> None:
    """Take the number and pending changes off an account that starts clean (the caller commits):
    whoever set the account up before its address was proven may have added their own number."""
    db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(phone=None, phone_verified=False)
        .execution_options(synchronize_session="fetch")
    )
    db.session.execute(delete(PhoneCode).where(PhoneCode.user_id == user_id))


def parse_phone(value: str) -> str:
    """The E.164 form of a number from a request body; 422 ``invalid_phone`` naming ``phone``."""
    try:
        return normalize_phone(value)
    except InvalidPhone as invalid:
        raise ValidationFailed(
            invalid.message, errors={"phone": [invalid.message]}, error=ErrorCode.INVALID_PHONE
        ) from None


def code_sent() -> dict[str, int]:
    """The answer to a code request (the same for every number)."""
    return {"expires_in": CODE_SECONDS, "resend_after": RESEND_SECONDS}


def sms_text(code: str, locale: str) -> str:
    """The code message in ``locale``: ``SMS_TEMPLATE_<LANG>``, else the catalog's text."""
    template = current_app.config.get(f"SMS_TEMPLATE_{locale.upper()}") or translate(SMS_TEMPLATE, locale)
    return template.replace("{code}", code)


def _slot(purpose: str, phone: str, user_id: int | None = None) -> str:
    return f"{CHANGE}:{user_id}" if purpose == CHANGE else f"{SIGN_IN}:{phone}"


def _digest(slot: str, code: str) -> str:
    return keyed_digest(current_app.config["SECRET_KEY"], f"phone-code:{slot}:{code}")


def request_sign_in_code(phone: str, client: ClientInfo) -> None:
    """Send a sign-in code to ``phone`` (E.164), in the request's language; commit.

    Whether the number has an account is not looked at: the same work either way.
    """
    _send_code(phone, SIGN_IN, None, client, None, select_locale())


def request_change_code(user: CurrentUser, phone: str, client: ClientInfo, session_id: str | None) -> None:
    """Send a code to ``user``'s new number, in the user's language; commit.

    Whether another account has the number is told only to whoever proves it (409 then).
    """
    if user.phone == phone and user.phone_verified:
        raise ValidationFailed(SAME_PHONE, errors={"phone": [SAME_PHONE]})
    _send_code(phone, CHANGE, user.id, client, session_id, user_locale(user))


def _send_code(
    phone: str, purpose: str, user_id: int | None, client: ClientInfo, session_id: str | None, locale: str
) -> None:
    """Spend the number's and the service's SMS budget, then replace the slot's code and queue its
    SMS; commit. ``TooManyAttempts`` (429) when a limit is used up: nothing written."""
    spend_sms_budget(phone)
    slot = _slot(purpose, phone, user_id)
    for attempt in (1, 2):
        code = f"{secrets.randbelow(10**6):06d}"
        now = utcnow()
        # Expired codes go here rather than in a cron job: one indexed DELETE.
        db.session.execute(delete(PhoneCode).where(PhoneCode.expires_at <= now))
        db.session.execute(delete(PhoneCode).where(PhoneCode.slot == slot))
        try:
            db.session.connection().execute(
                insert(PhoneCode.__table__),
                {
                    "slot": slot,
                    "phone": phone,
                    "purpose": purpose,
                    "user_id": user_id,
                    "code_hash": _digest(slot, code),
                    "failures": 0,
                    "created_at": now,
                    "expires_at": now + timedelta(seconds=CODE_SECONDS),
                },
            )
        except IntegrityError:
            # A concurrent request wrote the slot's code between our DELETE and INSERT: replace it.
            db.session.rollback()
            if attempt == 2:
                raise
            continue
        break
    enqueue_sms(phone, sms_text(code, locale))
    record_event(
        Events.PHONE_CODE_SENT,
        client,
        user_id=user_id,
        session_id=session_id,
        details={"purpose": purpose, "phone": mask_phone(phone)},
    )
    db.session.commit()


def _consume(slot: str, phone: str, code: str) -> bool:
    """Spend one try of the live code of ``slot`` sent to ``phone``; if ``code`` is it, consume it.

    The caller commits either way (the spent try of a wrong code stays).
    """
    live = db.session.execute(
        update(PhoneCode)
        .where(
            PhoneCode.slot == slot,
            PhoneCode.phone == phone,
            PhoneCode.expires_at > utcnow(),
            PhoneCode.failures < MAX_FAILURES,
        )
        .values(failures=PhoneCode.failures + 1)
        .returning(PhoneCode.code_hash)
        .execution_options(synchronize_session=False)
    ).first()
    if live is None or not hmac.compare_digest(live.code_hash, _digest(slot, code)):
        return False
    db.session.execute(delete(PhoneCode).where(PhoneCode.slot == slot))
    return True


def verify_sign_in(phone: str, code: str, name: str | None, client: ClientInfo) -> signin.SignInResult:
    """Sign in with a code sent to ``phone``: the number's account, or a new one (a customer with
    the number proven, no email, no password, ``name`` or ""), through the sign-in decision; commit.

    401 ``invalid_code`` for a wrong, expired, used or never sent code, and for an account that
    may not sign in (audited), one answer for all; 403 ``account_banned`` for a banned account.
    """
    for attempt in (1, 2):
        if not _consume(_slot(SIGN_IN, phone), phone, code):
            _sign_in_failed(client, None, "invalid_code")
        try:
            user = _account_of(phone, name, client)
            break
        except IntegrityError:
            # Another account proved the number (a change of number) between our read and our
            # insert: read again once, and sign that account in.
            db.session.rollback()
            if attempt == 2:
                raise
    user_id = user.id
    try:
        return signin.decide(user, client, METHOD)
    except signin.AccountRefused as refused:
        db.session.rollback()
        _sign_in_failed(client, user_id, refused.reason, refused)


def _account_of(phone: str, name: str | None, client: ClientInfo) -> User:
    """The account of a proven number, made now if it has none."""
    user = db.session.scalar(select(User).where(User.phone == phone))
    details = {"phone": mask_phone(phone)}
    if user is None:
        user = User(name=name or "", email=None, password_hash=None, phone=phone, phone_verified=True)
        db.session.add(user)
        db.session.flush()
        record_event(Events.REGISTERED, client, user_id=user.id, details={"method": METHOD})
        record_event(Events.PHONE_VERIFIED, client, user_id=user.id, details=details)
    elif not user.phone_verified:
        # None of trikchi's endpoints stores a number unproven (an import might): it is proven now,
        # as a mailed link proves an address.
        user.phone_verified = True
        db.session.flush()
        record_event(Events.PHONE_VERIFIED, client, user_id=user.id, details=details)
    return user


def _sign_in_failed(
    client: ClientInfo, user_id: int | None, reason: str, refused: signin.AccountRefused | None = None
) -> NoReturn:
    """Audit a refused phone sign-in (the spent try included), commit, and answer the one 401 — or,
    for an account the decision refuses with an answer of its own (a ban), that answer: the code
    has proven the number, so the 403 ``account_banned`` tells its owner nothing new."""
    record_event(Events.LOGIN_FAILED, client, user_id=user_id, details={"method": METHOD, "reason": reason})
    db.session.commit()
    if refused is not None:
        refused.raise_answer()
    raise Unauthorized(INVALID_CODE, error=ErrorCode.INVALID_CODE)


def confirm_change(user_id: int, phone: str, code: str, client: ClientInfo, session_id: str | None) -> User:
    """Give the account the number its code was sent to, proven; commit.

    401 ``invalid_code`` as for a sign-in; 409 ``phone_taken`` when another account has the number
    (told only once the code proved it: the answer is no oracle of who has which number). The
    account's security stamp changes, as for an email change: links mailed before die.
    """
    if not _consume(_slot(CHANGE, phone, user_id), phone, code):
        db.session.commit()
        raise Unauthorized(INVALID_CODE, error=ErrorCode.INVALID_CODE)
    user = db.session.get(User, user_id)
    if user is None:
        db.session.rollback()
        raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED)
    if _phone_taken(phone, user_id):
        db.session.commit()  # the code is spent
        raise Conflict(PHONE_TAKEN, error=ErrorCode.PHONE_TAKEN)
    old = user.phone
    user.phone, user.phone_verified = phone, True
    try:
        security.bump(user)
    except IntegrityError:
        # Another account took the number between our check and this write.
        db.session.rollback()
        raise Conflict(PHONE_TAKEN, error=ErrorCode.PHONE_TAKEN) from None
    record_event(
        Events.PHONE_VERIFIED,
        client,
        user_id=user.id,
        session_id=session_id,
        details={"phone": mask_phone(phone)},
    )
    record_event(
        Events.PHONE_CHANGED,
        client,
        user_id=user.id,
        session_id=session_id,
        details={"from": mask_phone(old), "to": mask_phone(phone)},
    )
    db.session.commit()
    return user


def remove_phone(user_id: int, client: ClientInfo, session_id: str | None) -> None:
    """Take the number off the account; 409 ``last_sign_in_method`` when it is the last way to sign
    in; commit. Nothing to do without a number.

    The count and the change are one serialized step (``lock_for_writing``, a row lock on
    PostgreSQL), as for unlinking an identity.
    """
    lock_for_writing(db.session)
    user = db.session.get(User, user_id, with_for_update=True)
    if user is None:
        raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED)
    if user.phone is None:
        db.session.rollback()
        return
    if user.phone_verified:
        refuse_removing_the_last(user)
    old = user.phone
    user.phone, user.phone_verified = None, False
    security.bump(user)
    record_event(
        Events.PHONE_CHANGED,
        client,
        user_id=user.id,
        session_id=session_id,
        details={"from": mask_phone(old), "to": None},
    )
    db.session.commit()


def _phone_taken(phone: str, user_id: int) -> bool:
    return db.session.scalar(select(User.id).where(User.phone == phone, User.id != user_id)) is not None
