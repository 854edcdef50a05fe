"""Auth logic: registration, sign-in, refresh rotation with reuse detection, sessions.

Services own the transaction (they commit), raise ``trikchi.errors`` domain
errors, and never touch the request or build a response.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from trikchi.auth.models import AuthEvent, AuthSession, RefreshToken, User
from trikchi.auth.passwords import password_problems
from trikchi.auth.schemas import normalize_email
from trikchi.auth.tokens import TokenPair, issue_token_pair
from trikchi.database import serialized_writes, utcnow
from trikchi.errors import Conflict, ErrorCode, NotFound, Unauthorized, ValidationFailed
from trikchi.extensions import db, passwords
from trikchi.http import ClientInfo

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Invalid email or password."
SESSION_ENDED = "The session has ended; sign in again."


class Events:
    """Names of the auth events in the audit log."""

    REGISTERED = "registered"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    REFRESH = "refresh"
    REUSE_DETECTED = "refresh_reuse_detected"
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    SESSION_REVOKED = "session_revoked"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name, not a secret
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name, not a secret
    PASSWORD_RESET_REQUESTED = "password_reset_requested"  # noqa: S105 - an event name
    EMAIL_VERIFICATION_REQUESTED = "email_verification_requested"
    EMAIL_VERIFIED = "email_verified"
    ROLE_CHANGED = "role_changed"
    USER_DEACTIVATED = "user_deactivated"
    USER_REACTIVATED = "user_reactivated"


def record_event(
    type_: str,
    client: ClientInfo | None,
    user_id: int | None = None,
    session_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the current transaction (the caller commits) and log it."""
    log.info(
        "auth event %s",
        type_,
        extra={
            "event": type_,
            "user_id": user_id,
            "session_id": session_id,
            "ip": client.ip if client else None,
        },
    )
    # One INSERT on the transaction's connection (the ORM's unit of work cost more than the
    # row); pending ORM changes are flushed first so that the event can refer to them.
    db.session.flush()
    db.session.connection().execute(
        _INSERT_EVENT,
        {
            "created_at": utcnow(),
            "type": type_,
            "user_id": user_id,
            "session_id": session_id,
            "ip": client.ip if client else None,
            "user_agent": client.user_agent if client else None,
            "details": details,
        },
    )


_INSERT_EVENT = insert(AuthEvent.__table__)


def register_user(
    name: str, email: str, password: str, client: ClientInfo | None, role: str = "customer"
) -> User:
    """Create a user (a customer unless told); ``Conflict`` if the email is taken (also under a race)."""
    email = normalize_email(email)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("This email is already registered.", error=ErrorCode.EMAIL_TAKEN)
    user = User(name=name, email=email, password_hash=passwords.hash(password), role=role)
    db.session.add(user)
    try:
        db.session.flush()
        record_event(Events.REGISTERED, client, user_id=user.id)
        db.session.commit()
    except IntegrityError:
        # Another request registered the same email between our check and insert.
        db.session.rollback()
        raise Conflict("This email is already registered.", error=ErrorCode.EMAIL_TAKEN) from None
    return user


def authenticate(email: str, password: str, client: ClientInfo) -> TokenPair:
    """Check credentials and open a new session; one generic error for every failure."""
    email = normalize_email(email)
    user = db.session.scalar(select(User).where(User.email == email))
    # Unknown emails are verified against a dummy hash: same time, same answer.
    valid = passwords.verify(user.password_hash if user else None, password)
    if not valid or user is None or not user.is_active:
        record_event(
            Events.LOGIN_FAILED,
            client,
            user_id=user.id if user else None,
            details={"reason": "inactive" if valid else "bad_credentials"},
        )
        db.session.commit()
        raise Unauthorized(INVALID_CREDENTIALS, error=ErrorCode.INVALID_CREDENTIALS)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    now = utcnow()
    config = current_app.config
    session = AuthSession(
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        absolute_expires_at=now + timedelta(days=config["SESSION_MAX_DAYS"]),
        user_agent=client.user_agent,
        ip=client.ip,
    )
    session.expires_at = _sliding_end(session, now)
    db.session.add(session)
    db.session.flush()
    token = _new_refresh_token(session, None, now)
    record_event(Events.LOGIN_SUCCEEDED, client, user_id=user.id, session_id=session.id)
    pair = issue_token_pair(current_app, user.id, user.role, session.id, token.jti, token.expires_at, now)
    db.session.commit()
    return pair


# The refresh path in Core, statements built once: the ORM's unit of work and lazy loads
# were most of a refresh (see README, Performance).
_REFRESH_STATE = (
    select(
        AuthSession.user_id,
        AuthSession.expires_at,
        AuthSession.absolute_expires_at,
        AuthSession.revoked_at,
        User.role,
        User.is_active,
    )
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.id == bindparam("session_id"))
)
_CONSUME = (
    update(RefreshToken.__table__)
    .where(
        RefreshToken.jti == bindparam("b_jti"),
        RefreshToken.session_id == bindparam("b_session_id"),
        RefreshToken.used_at.is_(None),
    )
    .values(used_at=bindparam("now"))
)
_INSERT_TOKEN = insert(RefreshToken.__table__)
_TOUCH_SESSION = (
    update(AuthSession.__table__)
    .where(AuthSession.id == bindparam("b_session_id"))
    .values(last_used_at=bindparam("now"), expires_at=bindparam("b_expires_at"))
)
_CONSUMED_AT = select(RefreshToken.used_at).where(
    RefreshToken.jti == bindparam("b_jti"), RefreshToken.session_id == bindparam("b_session_id")
)
_LIVE_TOKEN = (
    select(RefreshToken.jti, RefreshToken.expires_at)
    .where(RefreshToken.session_id == bindparam("session_id"), RefreshToken.used_at.is_(None))
    .order_by(RefreshToken.issued_at.desc())
    .limit(1)
)


def rotate_refresh_token(claims: dict[str, Any], client: ClientInfo) -> TokenPair:
    """Consume a refresh token once and mint its successor.

    The consuming UPDATE is conditional (``used_at IS NULL``), so of any number of
    racing requests exactly one creates a successor. A token that was already
    consumed is answered with the session's current token inside the grace
    window (two tabs), and revokes the whole session after it (theft).
    """
    now = utcnow()
    jti, session_id, user_id = _refresh_identity(claims)
    connection = db.session.connection()
    state = connection.execute(_REFRESH_STATE, {"session_id": session_id}).first()
    if (
        state is None
        or state.user_id != user_id
        or not state.is_active
        or state.revoked_at is not None
        or not now < state.expires_at
        or not now < state.absolute_expires_at
    ):
        raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED)

    with serialized_writes(db.engine):
        return _rotate(connection, state, jti, session_id, user_id, now, client)


def _rotate(
    connection: Connection,
    state: Row[Any],
    jti: str,
    session_id: str,
    user_id: int,
    now: datetime,
    client: ClientInfo,
) -> TokenPair:
    """The write part of a refresh (one transaction, committed or rolled back before it returns)."""
    keys = {"b_jti": jti, "b_session_id": session_id}
    if connection.execute(_CONSUME, {**keys, "now": now}).rowcount == 1:
        successor = str(uuid.uuid4())
        expires_at = min(
            now + timedelta(days=current_app.config["REFRESH_TOKEN_DAYS"]), state.absolute_expires_at
        )
        connection.execute(
            _INSERT_TOKEN,
            {
                "jti": successor,
                "session_id": session_id,
                "parent_jti": jti,
                "issued_at": now,
                "expires_at": expires_at,
            },
        )
        connection.execute(
            _TOUCH_SESSION, {"b_session_id": session_id, "now": now, "b_expires_at": expires_at}
        )
        record_event(Events.REFRESH, client, user_id=user_id, session_id=session_id)
        pair = issue_token_pair(current_app, user_id, state.role, session_id, successor, expires_at, now)
        db.session.commit()
        return pair

    used_at = connection.scalar(_CONSUMED_AT, keys)
    if used_at is None:
        db.session.rollback()
        raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED)
    grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"])
    if now - used_at <= grace:
        current = connection.execute(_LIVE_TOKEN, {"session_id": session_id}).first()
        db.session.rollback()
        if current is None:
            raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED)
        # Same jti as the live successor: no new branch, whichever copy is used first wins.
        return issue_token_pair(
            current_app, user_id, state.role, session_id, current.jti, current.expires_at, now
        )

    session = db.session.get(AuthSession, session_id)
    _revoke(session, "reuse_detected", now)
    record_event(Events.REUSE_DETECTED, client, user_id=user_id, session_id=session_id, details={"jti": jti})
    db.session.commit()
    raise Unauthorized(
        "This refresh token was already used; the session has been revoked.",
        error=ErrorCode.REFRESH_TOKEN_REUSED,
    )


def logout(claims: dict[str, Any] | None, client: ClientInfo) -> None:
    """Revoke the session named by a refresh token, if any; idempotent."""
    if not claims:
        return
    try:
        _jti, session_id, user_id = _refresh_identity(claims)
    except Unauthorized:
        return
    session = db.session.get(AuthSession, session_id)
    if session is None or session.user_id != user_id:
        return
    if session.revoked_at is None:
        _revoke(session, "logout", utcnow())
        record_event(Events.LOGOUT, client, user_id=user_id, session_id=session_id)
        db.session.commit()


def list_sessions(user: User, now: datetime | None = None) -> Sequence[AuthSession]:
    """The user's live sessions, most recently used first."""
    now = now or utcnow()
    return db.session.scalars(
        select(AuthSession)
        .where(
            AuthSession.user_id == user.id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
            AuthSession.absolute_expires_at > now,
        )
        .order_by(AuthSession.last_used_at.desc(), AuthSession.created_at.desc())
    ).all()


def revoke_session(user: User, session_id: str, client: ClientInfo) -> None:
    """End one of the user's sessions; another user's (or unknown) id is ``NotFound``."""
    session = db.session.get(AuthSession, session_id)
    if session is None or session.user_id != user.id:
        raise NotFound("No such session.")
    if session.revoked_at is None:
        _revoke(session, "revoked_by_user", utcnow())
        record_event(Events.SESSION_REVOKED, client, user_id=user.id, session_id=session.id)
        db.session.commit()


def logout_all(user: User, client: ClientInfo, current_session_id: str | None) -> int:
    """Revoke every session of the user; returns how many were live."""
    count = revoke_all_sessions(user.id, "logout_all", except_session_id=None)
    record_event(
        Events.LOGOUT_ALL, client, user_id=user.id, session_id=current_session_id, details={"revoked": count}
    )
    db.session.commit()
    return count


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
        problems = ["The new password must differ from the current one."]
    if problems:
        raise ValidationFailed(errors={"new_password": problems})
    user.password_hash = passwords.hash(new_password)
    count = revoke_all_sessions(user.id, "password_changed", except_session_id=current_session_id)
    record_event(
        Events.PASSWORD_CHANGED,
        client,
        user_id=user.id,
        session_id=current_session_id,
        details={"revoked_sessions": count},
    )
    db.session.commit()


def prune_sessions(now: datetime | None = None) -> int:
    """Delete sessions that are revoked or past either end (their tokens go with them)."""
    now = now or utcnow()
    dead = or_(
        AuthSession.revoked_at.is_not(None),
        AuthSession.expires_at <= now,
        AuthSession.absolute_expires_at <= now,
    )
    ids = db.session.scalars(select(AuthSession.id).where(dead)).all()
    if ids:
        # Deleted explicitly so that pruning does not depend on ON DELETE CASCADE.
        db.session.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(ids)))
        db.session.execute(delete(AuthSession).where(AuthSession.id.in_(ids)))
    db.session.commit()
    return len(ids)


def _refresh_identity(claims: dict[str, Any]) -> tuple[str, str, int]:
    """``(jti, sid, user id)`` of a verified refresh token."""
    try:
        return str(claims["jti"]), str(claims["sid"]), int(claims["sub"])
    except (KeyError, TypeError, ValueError):
        raise Unauthorized("The token is invalid.", error=ErrorCode.TOKEN_INVALID) from None


def _sliding_end(session: AuthSession, now: datetime) -> datetime:
    """A refresh extends the session by the refresh lifetime, up to its absolute end."""
    sliding = now + timedelta(days=current_app.config["REFRESH_TOKEN_DAYS"])
    return min(sliding, session.absolute_expires_at)


def _new_refresh_token(session: AuthSession, parent_jti: str | None, now: datetime) -> RefreshToken:
    """Record a fresh single-use refresh token of ``session``."""
    token = RefreshToken(
        jti=str(uuid.uuid4()),
        session_id=session.id,
        parent_jti=parent_jti,
        issued_at=now,
        expires_at=_sliding_end(session, now),
    )
    db.session.add(token)
    return token


def _revoke(session: AuthSession, reason: str, now: datetime) -> None:
    session.revoked_at = now
    session.revoked_reason = reason


def revoke_all_sessions(user_id: int, reason: str, except_session_id: str | None) -> int:
    """Revoke the user's unrevoked sessions (but one) in a single UPDATE."""
    stmt = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if except_session_id is not None:
        stmt = stmt.where(AuthSession.id != except_session_id)
    return db.session.execute(stmt).rowcount
