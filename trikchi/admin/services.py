"""Admin logic: list and change users, read the audit log. Every change is an event."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, false, func, or_, select, true

from trikchi.auth import security, sessions
from trikchi.auth.admins import refuse_losing_the_last_admin
from trikchi.auth.methods import sign_in_methods_left
from trikchi.auth.models import GUEST, MAX_ID, AuthSession, User
from trikchi.auth.seams import seams
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


def list_users(
    q: str | None, page: int, per_page: int, role: str | None = None, status: str | None = None
) -> dict[str, Any]:
    """Users by id, optionally those whose email or name contains ``q`` (case-insensitive), whose
    phone number is ``q`` or contains its digits (``q`` read as a number by ``trikchi.phones``), or
    whose id it is; of one role, guests only when ``role`` is ``guest`` (SPEC §15), and counted
    apart (``guests``); ``active`` or ``inactive`` ones."""
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
        if re.fullmatch(r"[0-9]{1,10}", q.strip()) and 1 <= int(q.strip()) <= MAX_ID:
            matches.append(User.id == int(q.strip()))
        stmt = stmt.where(or_(*matches))
    if status is not None:
        stmt = stmt.where(User.is_active.is_(true() if status == "active" else false()))
    guests = db.session.scalar(select(func.count()).select_from(User).where(User.role == GUEST))
    return {**_page(stmt, page, per_page), "guests": guests}


def get_user(user_id: int) -> User:
    """A user by id, or ``NotFound``."""
    user = db.session.get(User, user_id) if 1 <= user_id <= MAX_ID else None
    if user is None:
        raise NotFound("No such user.")
    return user


def user_details(user_id: int) -> dict[str, Any]:
    """A user as staff see it, with the ways the account can sign in and those it used."""
    user = get_user(user_id)
    used = db.session.scalars(
        select(AuthEvent.method)
        .where(
            AuthEvent.user_id == user.id,
            AuthEvent.type == Events.LOGIN_SUCCEEDED,
            AuthEvent.method.is_not(None),
        )
        .distinct()
        .order_by(AuthEvent.method)
    ).all()
    return {
        "user": user,
        "sign_in": {
            "password": user.password_hash is not None,
            "ways": sign_in_methods_left(user),
            "second_factors": [f.name for f in seams().second_factors if f.enrolled(user.id)],
            "methods_used": list(used),
        },
    }


def list_user_sessions(user_id: int) -> list[AuthSession]:
    """A user's live sessions, most recently used first."""
    return list(sessions.list_sessions(get_user(user_id)))


def revoke_user_session(admin: User, user_id: int, session_id: str, client: ClientInfo) -> None:
    """End one session of a user (an event names the admin); its refresh token stops working."""
    sessions.revoke_session(get_user(user_id), session_id, client, by=admin.id)


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
