"""Admin logic: list and change users, read the audit log. Every change is an event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select

from trikchi.auth import security
from trikchi.auth.admins import refuse_losing_the_last_admin
from trikchi.auth.models import GUEST, MAX_ID, User
from trikchi.auth.sessions import revoke_all_sessions
from trikchi.errors import NotFound
from trikchi.events import AuthEvent, Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.phones import search_forms


def _page(stmt: Select, page: int, per_page: int) -> dict[str, Any]:
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def list_users(q: str | None, page: int, per_page: int, role: str | None = None) -> dict[str, Any]:
    """Users by id, optionally those whose email or name contains ``q`` (case-insensitive), or whose
    phone number is ``q`` or contains its digits (``q`` read as a number by ``trikchi.phones``), and
    of one role; guests only when ``role`` is ``guest`` (SPEC §15), and counted apart (``guests``)."""
    stmt = select(User).order_by(User.id)
    stmt = stmt.where(User.role == role) if role else stmt.where(User.role != GUEST)
    if q:
        pattern = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        matches = [User.email.like(pattern, escape="\\"), func.lower(User.name).like(pattern, escape="\\")]
        exact, digits = search_forms(q)
        if exact is not None:
            matches.append(User.phone == exact)
        if digits is not None:
            matches.append(User.phone.like(f"%{digits}%"))
        stmt = stmt.where(or_(*matches))
    guests = db.session.scalar(select(func.count()).select_from(User).where(User.role == GUEST))
    return {**_page(stmt, page, per_page), "guests": guests}


def list_events(user_id: int | None, type_: str | None, page: int, per_page: int) -> dict[str, Any]:
    """Auth events, newest first, optionally of one user and/or one type."""
    stmt = select(AuthEvent).order_by(AuthEvent.created_at.desc(), AuthEvent.id.desc())
    if user_id is not None:
        stmt = stmt.where(AuthEvent.user_id == user_id)
    if type_:
        stmt = stmt.where(AuthEvent.type == type_)
    return _page(stmt, page, per_page)


def user_for_update(user_id: int) -> User:
    """The user with ``user_id``, locked for this transaction's change; 404 when there is none."""
    user = db.session.get(User, user_id, with_for_update=True) if 1 <= user_id <= MAX_ID else None
    if user is None:
        raise NotFound("No such user.")
    return user


def update_user(
    admin: User | None,
    user_id: int,
    client: ClientInfo | None,
    role: str | None = None,
    is_active: bool | None = None,
) -> User:
    """Change a user's role and/or active flag; deactivation ends their sessions.

    The last active admin can be neither demoted nor deactivated, so the shop
    never locks itself out of administration. ``admin`` is None for the CLI.
    """
    actor: int | str = admin.id if admin is not None else "cli"
    user = user_for_update(user_id)
    if (role is not None and role != "admin") or is_active is False:
        refuse_losing_the_last_admin(user)
    if role is not None and role != user.role:
        record_event(
            Events.ROLE_CHANGED,
            client,
            user_id=user.id,
            details={"by": actor, "from": user.role, "to": role},
        )
        user.role = role
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        if is_active:
            record_event(Events.USER_REACTIVATED, client, user_id=user.id, details={"by": actor})
        else:
            revoked = revoke_all_sessions(user.id, "deactivated", except_session_id=None)
            security.bump(user)
            record_event(
                Events.USER_DEACTIVATED,
                client,
                user_id=user.id,
                details={"by": actor, "revoked_sessions": revoked},
            )
    db.session.commit()
    return user
