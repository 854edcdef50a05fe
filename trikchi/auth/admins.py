"""The rule that keeps a shop able to administer itself: the last active admin stays.

One place for it: an admin demoting, deactivating or banning a user and an account deleting
itself all ask ``refuse_losing_the_last_admin`` before the change. An active admin is one who is
active and not banned.
"""

from __future__ import annotations

from sqlalchemy import func, not_, select

from trikchi.auth.models import User
from trikchi.database import utcnow
from trikchi.errors import Conflict, ErrorCode
from trikchi.extensions import db
from trikchi.i18n import N_

LAST_ADMIN = N_("This is the last active admin; promote another admin first.")


def active_admins() -> int:
    """How many active, unbanned admins the shop has."""
    return db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.is_active.is_(True), not_(User.is_banned(utcnow())))
    )


def refuse_losing_the_last_admin(user: User) -> None:
    """409 ``last_admin`` when ``user`` is the shop's only active admin (the change would leave none)."""
    if user.role == "admin" and user.is_active and not user.is_banned(utcnow()) and active_admins() <= 1:
        raise Conflict(LAST_ADMIN, error=ErrorCode.LAST_ADMIN)
