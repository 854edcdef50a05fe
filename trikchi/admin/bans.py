"""Bans (SPEC §16): staff shut an account out, until a time or until lifted.

A ban ends every session of the account at once (the sessions are revoked and the security
stamp changes, so mailed links and the seed's cookies die too) and, through the sign-in
decision's ``account_checks`` seam, refuses every sign-in method with 403 ``account_banned`` —
a password sign-in only after the right password. The per-request guard refuses a banned
user's access token in its one query (``User.is_banned`` is part of ``AuthSession.is_live``).
A timed ban lifts by itself: every check compares ``banned_until`` with now.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask

from trikchi.admin.services import user_for_update
from trikchi.auth import security, signin
from trikchi.auth.admins import refuse_losing_the_last_admin
from trikchi.auth.models import User
from trikchi.auth.seams import of
from trikchi.auth.sessions import revoke_all_sessions
from trikchi.database import utcnow
from trikchi.errors import ErrorCode, Forbidden, ValidationFailed
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_

BANNED = N_("This account is banned.")
UNTIL_PASSED = N_("Must be a time in the future.")


def init_app(app: Flask) -> None:
    """Register the ban with the sign-in decision: a banned account signs in by no method."""
    of(app).account_checks.append(refuse_banned)


def refuse_banned(user: User) -> None:
    """``AccountRefused("banned")`` while the account is banned, answered 403 ``account_banned``."""
    if user.is_banned(utcnow()):
        until = user.banned_until
        answer = Forbidden(
            BANNED,
            error=ErrorCode.ACCOUNT_BANNED,
            fields={"banned_until": until.isoformat() if until is not None else None},
        )
        raise signin.AccountRefused("banned", answer=answer, banned_until=until)


def ban_user(
    admin_id: int | None, user_id: int, until: datetime | None, reason: str | None, client: ClientInfo | None
) -> User:
    """Ban a user until ``until`` (None: until lifted) and end every session of theirs; commit.

    Banning a banned user replaces the end and the reason. 422 for an end already past; 409
    ``last_admin`` for the shop's last active admin. ``admin_id`` is None for the CLI.
    """
    now = utcnow()
    if until is not None:
        until = until.astimezone(UTC)
        if until <= now:
            refused = {"until": [UNTIL_PASSED]}
            raise ValidationFailed(errors=refused)
    user = user_for_update(user_id)
    refuse_losing_the_last_admin(user)
    already = user.is_banned(now)
    user.banned_at = user.banned_at if already else now
    user.banned_until = until
    user.ban_reason = reason
    # Every session ends at once: access tokens at their next request (the guard's query), refresh
    # tokens at their next rotation; mailed links and the seed's cookies die with the stamp. A
    # pending second step stays, refused with the ban's answer (``signin.pending_sign_in``).
    revoked = revoke_all_sessions(user.id, "banned", except_session_id=None)
    security.bump(user, now)
    record_event(
        Events.USER_BANNED,
        client,
        user_id=user.id,
        details={
            "by": admin_id if admin_id is not None else "cli",
            "until": until.isoformat() if until is not None else None,
            "updated": already,
            "revoked_sessions": revoked,
        },
    )
    db.session.commit()
    return user


def unban_user(admin_id: int | None, user_id: int, client: ClientInfo | None) -> User:
    """Lift a user's ban (a no-op for a user who is not banned); commit."""
    user = user_for_update(user_id)
    was_banned = user.is_banned(utcnow())
    user.banned_at = user.banned_until = user.ban_reason = None
    if was_banned:
        record_event(
            Events.USER_UNBANNED, client, user_id=user.id, details={"by": admin_id if admin_id else "cli"}
        )
    db.session.commit()
    return user
