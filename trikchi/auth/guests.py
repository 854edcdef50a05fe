"""Guests (SPEC §15): a visitor's account before any credential, which becomes a customer keeping its id.

A shop keeps a cart under a user id from the first visit. ``create_guest`` makes that id (role
``guest``: no email, no phone, no password, name ""), signed in through the one sign-in decision.
When the guest proves who they are, one function decides what happens to it, whatever the
method (registration, a phone code, OpenID Connect, Telegram):

- ``upgrade``: the proof is new (no account has the email, phone or identity): the guest row
  becomes a customer — the same id, its sessions go on — and the method sets its credentials.
  One conditional UPDATE (``role = 'guest'``) decides between racing upgrades of one guest
  (two tabs): exactly one wins, the others get ``GuestGone`` and write nothing.
- ``upgrade_or_merge``: a sign-in method's entry: ``upgrade`` when the proof is new; when it
  belongs to another account, the sign-in goes to that account, and the guest is removed with
  its sessions, recorded as ``guest_merged`` ``{"guest_id", "user_id"}`` (its webhook tells the
  shop which cart to move). Either way the sign-in decision answers (a session, or the second
  step) and commits, in one transaction with the upgrade or the merge.

Guests nobody has used for ``GUEST_TTL_DAYS`` are removed by ``prune_guests`` in short batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.orm.util import identity_key

from trikchi.auth import signin
from trikchi.auth.models import CUSTOMER, GUEST, AuthSession, RefreshToken, User
from trikchi.database import lock_for_writing, utcnow
from trikchi.errors import Conflict
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_

# The sign-in method of a new guest's session (``login_succeeded``'s method, the session's auth_method).
METHOD = "guest"
PRUNE_BATCH = 500


class GuestGone(Conflict):
    """409: the guest is no longer one — another tab made it an account, or it was merged or removed."""

    message = N_("This guest has already become an account or was signed in elsewhere; sign in again.")


def create_guest(client: ClientInfo) -> signin.SignInResult:
    """A new guest, signed in through the sign-in decision (its session and tokens); commit."""
    user = User(name="", email=None, password_hash=None, role=GUEST)
    db.session.add(user)
    db.session.flush()
    record_event(Events.GUEST_CREATED, client, user_id=user.id)
    return signin.decide(user, client, METHOD)


def upgrade(
    guest_id: int, apply_credentials: Callable[[User], None], method: str, client: ClientInfo
) -> User:
    """Make the guest a customer, keeping its id and sessions; the caller commits.

    The role changes first, by an UPDATE conditional on the row still being a guest's: of
    racing upgrades (or an upgrade racing a merge or pruning), one changes the row and the
    others wait for it, find no guest and raise ``GuestGone`` having written nothing. Then
    ``apply_credentials(user)`` sets what the method proved (email and password hash, phone,
    a linked identity, a name); a unique index it breaks raises ``IntegrityError`` here.
    """
    changed = db.session.execute(
        update(User)
        .where(User.id == guest_id, User.role == GUEST)
        .values(role=CUSTOMER, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise GuestGone()
    # The row this transaction has just changed, read again (an object of it may be stale).
    user = db.session.get_one(User, guest_id, populate_existing=True)
    apply_credentials(user)
    db.session.flush()
    record_event(Events.GUEST_UPGRADED, client, user_id=guest_id, details={"method": method})
    return user


def upgrade_or_merge(
    guest_id: int,
    proven: User | None,
    apply_credentials: Callable[[User], None],
    method: str,
    client: ClientInfo,
) -> signin.SignInResult:
    """A guest proved who they are by ``method``: sign in, keeping the guest's id if it is a new person.

    ``proven`` is the account the proof belongs to (the email, phone or identity is another
    account's), or None when it is new. None: ``upgrade`` (``apply_credentials`` gives the guest
    what was proven), then the guest signs in. An account: the guest is removed into it
    (``guest_merged``), and that account signs in. Through the sign-in decision either way,
    which commits everything at once. ``signin.AccountRefused`` (rolled back: the guest stays as
    it was) when the account may not sign in; ``GuestGone`` (409, nothing written) when an
    upgrade finds the guest no longer one.
    """
    try:
        if proven is None or proven.id == guest_id:
            return signin.decide(upgrade(guest_id, apply_credentials, method, client), client, method)
        signin.check_account(proven)  # refused before the guest is touched
        merge(guest_id, proven, client)
        return signin.decide(proven, client, method)
    except signin.AccountRefused:
        db.session.rollback()
        raise


def merge(guest_id: int, user: User, client: ClientInfo) -> bool:
    """Remove the guest into ``user`` (its proven account): its sessions end, ``guest_merged`` says
    ``{"guest_id", "user_id"}``; the caller commits. False when it was no longer a guest (an
    upgrade or a merge came first): nothing to move.
    """
    lock_for_writing(db.session)
    still_guest = db.session.scalar(
        select(User.id).where(User.id == guest_id, User.role == GUEST).with_for_update()
    )
    if still_guest is None:
        return False
    _remove([guest_id])
    record_event(
        Events.GUEST_MERGED, client, user_id=user.id, details={"guest_id": guest_id, "user_id": user.id}
    )
    return True


def idle_guests(cutoff: datetime) -> Select:
    """Guests made before ``cutoff`` whose sessions were neither opened nor refreshed since."""
    used_since = exists().where(AuthSession.user_id == User.id, AuthSession.last_used_at >= cutoff)
    return select(User.id).where(User.role == GUEST, User.created_at < cutoff, ~used_since)


def prune_guests(now: datetime | None = None, batch_size: int = PRUNE_BATCH) -> int:
    """Remove the guests idle for ``GUEST_TTL_DAYS``, ``batch_size`` at a time; how many went.

    Each batch is a short transaction of its own: its rows are locked (PostgreSQL: ``FOR UPDATE
    SKIP LOCKED``, so a guest that an upgrade holds is left for another run; SQLite: the write
    lock, for the batch only), removed with their sessions and tokens, and committed before the
    next is read. Other requests write in between.
    """
    cutoff = (now or utcnow()) - timedelta(days=current_app.config["GUEST_TTL_DAYS"])
    removed = 0
    while True:
        lock_for_writing(db.session)
        ids = db.session.scalars(
            idle_guests(cutoff).order_by(User.id).limit(batch_size).with_for_update(of=User, skip_locked=True)
        ).all()
        if not ids:
            db.session.rollback()
            return removed
        _remove(ids)
        db.session.commit()
        removed += len(ids)


def _remove(guest_ids: Sequence[int]) -> None:
    """Delete guests (locked by the caller) with their sessions and refresh tokens; their audit
    events stay, without the user (ON DELETE SET NULL)."""
    sessions = select(AuthSession.id).where(AuthSession.user_id.in_(guest_ids)).scalar_subquery()
    for statement in (
        delete(RefreshToken).where(RefreshToken.session_id.in_(sessions)),
        delete(AuthSession).where(AuthSession.user_id.in_(guest_ids)),
        delete(User).where(User.id.in_(guest_ids), User.role == GUEST),
    ):
        db.session.execute(statement.execution_options(synchronize_session=False))
    for guest_id in guest_ids:  # an object of a removed row must not be flushed later
        guest = db.session.identity_map.get(identity_key(User, guest_id))
        if guest is not None:
            db.session.expunge(guest)
