"""The rule that keeps a shop able to administer itself: the last active admin stays.

One place for it: an admin demoting or deactivating a user, an account deleting itself (and,
later, a ban) all ask ``refuse_losing_the_last_admin`` before the change.
"""

from __future__ import annotations

from sqlalchemy import func, select

from trikchi.auth.models import User
from trikchi.errors import Conflict, ErrorCode
from trikchi.extensions import db
from trikchi.i18n import N_

LAST_ADMIN = N_("This is the last active admin; promote another admin first.")


def active_admins() -> int:
    """How many active admins the shop has."""
    return db.session.scalar(
        select(func.count()).select_from(User).where(User.role == "admin", User.is_active.is_(True))
    )


def refuse_losing_the_last_admin(user: User) -> None:
    """409 ``last_admin`` when ``user`` is the shop's only active admin (the change would leave none)."""
    if user.role == "admin" and user.is_active and active_admins() <= 1:
        raise Conflict(LAST_ADMIN, error=ErrorCode.LAST_ADMIN)
