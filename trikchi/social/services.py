"""Identities: sign-in by a provider's identity, the linking rules, listing and unlinking.

Linking rules (SPEC §9), against the pre-account-takeover traps:

- A known (provider, subject) signs in its user.
- A new identity is linked to an existing account only when the provider asserts the email
  is verified and it equals the account's. If that account's own address was never
  verified, whoever set it up never proved they own the address: the account starts clean
  (``signin.start_clean``: its password, passkeys, TOTP, other identities, pending email
  changes and sessions go; the owner, now proven, can set a password by a reset).
- Otherwise a new account is created, never merged. It gets the provider's address only
  when the provider verified it (and it is free); an unverified address is kept on the
  identity only, so it can neither take an address nor receive someone else's reset link.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from trikchi.auth import guests, signin
from trikchi.auth.methods import refuse_removing_the_last
from trikchi.auth.models import MAX_ID, User
from trikchi.auth.seams import of
from trikchi.database import lock_for_writing, utcnow
from trikchi.errors import ErrorCode, NotFound, Unauthorized
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_
from trikchi.social.models import Identity
from trikchi.social.profile import ProviderProfile

SIGN_IN_FAILED = N_("The sign-in could not be verified.")
# The audit reason of a refusal by the sign-in decision (the callback's ``?error=``).
_REFUSALS = {"inactive": "account_disabled", "banned": "account_banned"}


def refusal_reason(refused: signin.AccountRefused) -> str:
    """The reason a refused account gives the frontend (``?error=``) and the audit log."""
    return _REFUSALS.get(refused.reason, refused.reason)


def refusal_params(refused: signin.AccountRefused) -> dict[str, str]:
    """More of the refusal for the frontend's query: until when a timed ban lasts."""
    until = refused.details.get("banned_until")
    return {"banned_until": until.isoformat()} if until is not None else {}


def init_app(app: Flask) -> None:
    """Register linked identities with the core: ways to sign in, removed by a clean start."""
    registry = of(app)
    registry.sign_in_methods.append(count_identities)
    registry.credential_resets.append(remove_identities)


def count_identities(user_id: int) -> int:
    """How many identities the user has linked: each is a way to sign in."""
    return (
        db.session.scalar(select(func.count()).select_from(Identity).where(Identity.user_id == user_id)) or 0
    )


def remove_identities(user_id: int) -> None:
    """Unlink every identity of the user (an account starting clean; the caller commits)."""
    db.session.execute(delete(Identity).where(Identity.user_id == user_id))


def sign_in(profile: ProviderProfile, client: ClientInfo, guest_id: int | None = None) -> signin.SignInResult:
    """Sign in the user of a verified provider identity (linking or creating one first) through the
    sign-in decision: a session, or the second step when TOTP is on; commit.

    ``guest_id``: the guest whose browser this is (SPEC §15). An identity no account has becomes
    the guest's, and the guest a customer keeping its id; one that is an account's (or whose
    verified email is) signs into that account, and the guest is merged into it
    (``auth.guests.upgrade_or_merge``). ``signin.AccountRefused`` (audited, nothing else written)
    when the account may not sign in.
    """
    attempts = 0
    while True:
        try:
            return _sign_in(profile, client, guest_id)
        except IntegrityError:
            # A concurrent sign-in created the same identity, or a registration took the
            # address, between our read and our insert: once more.
            db.session.rollback()
            attempts += 1
            if attempts == 2:
                raise
        except guests.GuestGone:
            # Another tab made the guest an account (or merged it) meanwhile: a sign-in like any.
            db.session.rollback()
            guest_id = None


def _sign_in(profile: ProviderProfile, client: ClientInfo, guest_id: int | None) -> signin.SignInResult:
    user = _account_of(profile, client)
    try:
        if guest_id is not None:
            return guests.upgrade_or_merge(
                guest_id, user, lambda guest: _link_to_guest(guest, profile, client), profile.method, client
            )
        if user is None:
            user = _create_user(profile, client)
            _link(user, profile, client, {"provider": profile.provider, "new_account": True})
        return signin.decide(user, client, profile.method)
    except signin.AccountRefused as refused:
        db.session.rollback()
        refused_id = user.id if user is not None else guest_id
        record_failure(profile.provider, refusal_reason(refused), client, user_id=refused_id)
        raise


def _account_of(profile: ProviderProfile, client: ClientInfo) -> User | None:
    """The account whose identity this is, or to which it is linked now because the provider verified
    that account's address; None when no account has it (nothing written then)."""
    identity = db.session.scalar(
        select(Identity).where(Identity.provider == profile.provider, Identity.subject == profile.subject)
    )
    if identity is not None:
        identity.last_used_at = utcnow()
        return identity.user
    if profile.email is None or not profile.email_verified:
        return None
    user = db.session.scalar(select(User).where(User.email == profile.email))
    if user is None:
        return None
    details: dict[str, object] = {"provider": profile.provider}
    if not user.email_verified:
        # Whoever set this account up never proved the address; the provider did. The account
        # starts clean: the password, passkeys, TOTP, identities and links set up before go.
        if user.password_hash is not None:
            user.password_hash = None
            details["password_removed"] = True
        details.update(signin.start_clean(user, "identity_linked"))
    _link(user, profile, client, details)
    return user


def _link_to_guest(guest: User, profile: ProviderProfile, client: ClientInfo) -> None:
    """A guest becoming a customer by this identity (``auth.guests.upgrade``): what a new account
    would get from it — the name, the address when the provider verified it — and the identity."""
    guest.name = profile.name
    if profile.email is not None and profile.email_verified:
        guest.email, guest.email_verified = profile.email, True
    _link(guest, profile, client, {"provider": profile.provider, "guest_upgraded": True})


def _link(user: User, profile: ProviderProfile, client: ClientInfo, details: dict[str, object]) -> None:
    """Link the identity to ``user`` and record it (``details``: the event's)."""
    now = utcnow()
    db.session.add(
        Identity(
            user_id=user.id,
            provider=profile.provider,
            subject=profile.subject,
            email=profile.email,
            created_at=now,
            last_used_at=now,
        )
    )
    db.session.flush()
    record_event(Events.IDENTITY_LINKED, client, user_id=user.id, details=details)


def _create_user(profile: ProviderProfile, client: ClientInfo) -> User:
    email = profile.email if profile.email_verified else None
    user = User(name=profile.name, email=email, email_verified=email is not None, password_hash=None)
    db.session.add(user)
    db.session.flush()
    record_event(Events.REGISTERED, client, user_id=user.id, details={"method": profile.method})
    return user


def record_failure(provider: str, reason: str, client: ClientInfo, user_id: int | None = None) -> None:
    """Audit a refused social sign-in (no claim, code or token in the event); commit."""
    record_event(
        Events.SOCIAL_LOGIN_FAILED, client, user_id=user_id, details={"provider": provider, "reason": reason}
    )
    db.session.commit()


def list_identities(user_id: int) -> Sequence[Identity]:
    """The user's linked identities, oldest first."""
    return db.session.scalars(
        select(Identity).where(Identity.user_id == user_id).order_by(Identity.created_at, Identity.id)
    ).all()


def unlink_identity(user_id: int, identity_id: int, client: ClientInfo, session_id: str | None) -> None:
    """Remove one of the user's identities; 409 when it is the last way to sign in; commit.

    The count and the delete are one serialized step (a row lock on PostgreSQL, the write lock
    on SQLite: ``lock_for_writing``): two racing unlinks cannot each leave the other as the last
    method.
    """
    lock_for_writing(db.session)
    user = db.session.get(User, user_id, with_for_update=True)
    if user is None:
        raise Unauthorized("The session has ended; sign in again.", error=ErrorCode.SESSION_ENDED)
    identity = db.session.get(Identity, identity_id) if 1 <= identity_id <= MAX_ID else None
    if identity is None or identity.user_id != user.id:
        db.session.rollback()
        raise NotFound("No such identity.")
    refuse_removing_the_last(user)
    provider = identity.provider
    db.session.delete(identity)
    record_event(
        Events.IDENTITY_UNLINKED,
        client,
        user_id=user.id,
        session_id=session_id,
        details={"provider": provider},
    )
    db.session.commit()


__all__ = [
    "SIGN_IN_FAILED",
    "list_identities",
    "record_failure",
    "sign_in",
    "unlink_identity",
]
