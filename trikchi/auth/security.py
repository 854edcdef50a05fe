"""The account's security state: the stamp every link and cookie that grants access is bound to.

Like Flask-Security's ``fs_uniquifier`` or ASP.NET's security stamp: ``User.security_stamp``
is random and changes whenever the account's security changes — a password change or reset,
sign-out everywhere, an email change, a second factor added or removed, a claim by the
address's owner (``start_clean``). A mailed link carries the stamp it was made under and is
refused once it differs; a single-use link is *consumed* by one conditional UPDATE that
changes the stamp, so of any number of racing uses exactly one succeeds.

Functions here never commit: they join the caller's transaction.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import update

from trikchi.auth.models import User, new_stamp
from trikchi.database import utcnow
from trikchi.extensions import db


def bump(user: User, now: datetime | None = None) -> None:
    """The account's security changed: a new stamp (every link made before dies)."""
    user.security_stamp = new_stamp()
    user.security_changed_at = now or utcnow()
    db.session.flush()


def bump_by_id(user_id: int, now: datetime | None = None) -> None:
    """``bump`` for a caller that holds the id only (one UPDATE)."""
    db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(security_stamp=new_stamp(), security_changed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def matches(user: User, stamp: object) -> bool:
    """Whether ``stamp`` (from a link) is the account's current one (constant-time)."""
    return isinstance(stamp, str) and hmac.compare_digest(stamp.encode(), user.security_stamp.encode())


def consume(user: User, stamp: object, **values: Any) -> bool:
    """Apply ``values`` to the account and change its stamp, only if ``stamp`` is still the current
    one and the account is active: one conditional UPDATE, so a link is used once whatever races
    it. False when another use (or any change of the account's security) came first."""
    if not isinstance(stamp, str):
        return False
    now = utcnow()
    fresh = new_stamp()
    updated = db.session.execute(
        update(User)
        .where(User.id == user.id, User.security_stamp == stamp, User.is_active.is_(True))
        .values(security_stamp=fresh, security_changed_at=now, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if updated != 1:
        return False
    db.session.refresh(user)
    return True


def issued_before_last_change(user: User, issued_at: datetime) -> bool:
    """Whether something issued at ``issued_at`` (a seed cookie) predates the last security change."""
    return user.security_changed_at is not None and issued_at < user.security_changed_at
