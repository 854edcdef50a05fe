"""The one sign-in decision (SPEC §13): every way of proving who a user is ends in ``decide``.

Password, passkey, OpenID Connect, Telegram, a seed refresh cookie — and any method added
later — call ``decide`` once they know the user, and nothing else opens a session:

1. The account must be usable (``check_account``: active, and whatever the features
   registered as ``account_checks``); otherwise ``AccountRefused``, which each method turns
   into its own refusal.
2. When the user has a second factor with a second step (TOTP) and the method is not itself
   multi-factor (a passkey with user verification is), the answer is ``MfaRequired``: an
   ``mfa_token`` for ``POST /auth/mfa/verify``, and no session, token or cookie.
3. Otherwise a session opens (``sessions.open_session``) and the sign-in is recorded.

The second step's ``mfa_token`` is random, stored as its SHA-256 only, alive 5 minutes,
single-use and dead after 5 wrong codes (the factor's feature checks the code, then calls
``finish_second_step``, which consumes the token in one conditional DELETE).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update

from trikchi.auth import security
from trikchi.auth.digests import sha256_hex
from trikchi.auth.models import AuthSession, MfaChallenge, User
from trikchi.auth.seams import seams
from trikchi.auth.sessions import open_session, revoke_all_sessions
from trikchi.auth.tokens import TokenPair
from trikchi.database import utcnow
from trikchi.errors import AppError, ErrorCode, Unauthorized
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_

TOKEN_SECONDS = 300
MAX_FAILURES = 5
TOKEN_INVALID = N_("This sign-in has expired or was already used; sign in again.")  # noqa: S105 - a message


class AccountRefused(Exception):
    """The account may not sign in now; ``reason`` is for the audit log (``inactive``, ``banned``).

    ``answer``: the error every method gives for this refusal, when the check that refused has
    one to give (a ban: 403 ``account_banned``); None: the method answers with its own refusal.
    """

    def __init__(self, reason: str, answer: AppError | None = None, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.answer = answer
        self.details = details

    def raise_answer(self) -> None:
        """Raise ``answer`` when there is one (the caller has audited the refusal); else return."""
        if self.answer is not None:
            raise self.answer from None


@dataclass(frozen=True)
class MfaRequired:
    """The answer to a first factor when a second one is on: the second step's token."""

    mfa_token: str
    methods: list[str] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        """The JSON body of a sign-in answered with the second step."""
        return {"mfa_required": True, "mfa_token": self.mfa_token, "methods": self.methods}


SignInResult = TokenPair | MfaRequired


def decide(
    user: User,
    client: ClientInfo,
    method: str,
    *,
    multi_factor: bool = False,
    auth_time: datetime | None = None,
    on_open: Callable[[AuthSession], None] | None = None,
) -> SignInResult:
    """Sign ``user`` in by ``method``: the second step, or a session; commit.

    ``multi_factor``: the method proved two factors itself (a passkey with user verification).
    ``auth_time``: when the person last authenticated interactively, if not now (a seed
    cookie is no interactive sign-in: its session is not fresh).
    ``on_open``: records more about a session that opens, in its transaction.
    ``AccountRefused`` (nothing committed) when the account may not sign in.
    """
    check_account(user)
    if not multi_factor:
        methods = second_step_methods(user.id)
        if methods:
            return start_second_step(user, methods)
    return open_session(user, client, method=method, auth_time=auth_time, on_open=on_open)


def check_account(user: User) -> None:
    """``AccountRefused`` unless the account is active and passes every registered check."""
    if not user.is_active:
        raise AccountRefused("inactive")
    for check in seams().account_checks:
        check(user)


def second_step_methods(user_id: int) -> list[str]:
    """The methods the second step accepts for this user; empty when there is no second step."""
    methods: list[str] = []
    for factor in seams().second_factors:
        if factor.step_methods and factor.enrolled(user_id):
            methods.extend(m for m in factor.step_methods if m not in methods)
    return methods


def has_second_factor(user_id: int) -> bool:
    """Whether the user has any second factor on (TOTP or a passkey): ``MFA_REQUIRED_ROLES``."""
    return any(factor.enrolled(user_id) for factor in seams().second_factors)


def verify_second_factor(user_id: int, code: str) -> str | None:
    """Check a code against the user's factors (re-authentication): the method it was, or None."""
    for factor in seams().second_factors:
        if factor.verify is not None and factor.step_methods and factor.enrolled(user_id):
            method = factor.verify(user_id, code)
            if method is not None:
                return method
    return None


def requires_mfa(role: str) -> bool:
    """Whether users of ``role`` must have a second factor (``MFA_REQUIRED_ROLES``)."""
    return role in current_app.config["MFA_REQUIRED_ROLES"]


def start_second_step(user: User, methods: list[str]) -> MfaRequired:
    """Hand out an ``mfa_token`` for ``user`` (whose first factor was right); commit."""
    now = utcnow()
    # Expired challenges go here rather than in a cron job: one indexed DELETE.
    db.session.execute(delete(MfaChallenge).where(MfaChallenge.expires_at <= now))
    token = secrets.token_urlsafe(32)
    db.session.add(
        MfaChallenge(
            token_hash=sha256_hex(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=TOKEN_SECONDS),
            failures=0,
        )
    )
    db.session.commit()
    return MfaRequired(mfa_token=token, methods=methods)


@dataclass(frozen=True)
class PendingSignIn:
    """A live second step: its token's digest and its user."""

    token_hash: str
    user: User


def pending_sign_in(mfa_token: str) -> PendingSignIn | None:
    """The live second step of ``mfa_token`` (not expired, not dead, its account usable), or None.

    An account refused with an answer of its own (a ban) raises that answer instead.
    """
    token_hash = sha256_hex(mfa_token)
    challenge = db.session.execute(
        select(MfaChallenge.user_id, MfaChallenge.expires_at, MfaChallenge.failures).where(
            MfaChallenge.token_hash == token_hash
        )
    ).first()
    if challenge is None or challenge.expires_at <= utcnow() or challenge.failures >= MAX_FAILURES:
        return None
    user = db.session.get(User, challenge.user_id)
    if user is None:
        return None
    try:
        check_account(user)
    except AccountRefused as refused:
        refused.raise_answer()
        return None
    return PendingSignIn(token_hash, user)


def count_failed_step(pending: PendingSignIn) -> None:
    """A wrong code for a second step: one failure more on its token (the caller commits)."""
    db.session.execute(
        update(MfaChallenge)
        .where(MfaChallenge.token_hash == pending.token_hash)
        .values(failures=MfaChallenge.failures + 1)
    )


def finish_second_step(pending: PendingSignIn, client: ClientInfo, method: str) -> TokenPair:
    """Consume the second step's token (once, whatever races it) and open the session; commit.

    ``method`` is the factor that completed it (``totp``, ``recovery_code``). 401
    ``mfa_token_invalid`` when another request used or killed the token meanwhile.
    """
    consumed = db.session.execute(
        delete(MfaChallenge).where(
            MfaChallenge.token_hash == pending.token_hash,
            MfaChallenge.expires_at > utcnow(),
            MfaChallenge.failures < MAX_FAILURES,
        )
    ).rowcount
    if consumed != 1:  # another request used it (or killed it) meanwhile: the code stays unused
        db.session.rollback()
        raise Unauthorized(TOKEN_INVALID, error=ErrorCode.MFA_TOKEN_INVALID)
    return open_session(pending.user, client, method=method)


def start_clean(user: User, reason: str) -> dict[str, Any]:
    """The owner of a never-verified address has proven it: whatever was set up before goes.

    Removes what the features registered (passkeys, TOTP and recovery codes, linked identities:
    ``auth.seams.credential_resets``), pending second steps, and every session; the address
    counts as verified; the stamp changes (pending email changes and every other link die).
    The password is the caller's to replace or remove. Returns the audit details.
    """
    for reset in seams().credential_resets:
        reset(user.id)
    db.session.execute(delete(MfaChallenge).where(MfaChallenge.user_id == user.id))
    revoked = revoke_all_sessions(user.id, reason, except_session_id=None)
    user.email_verified = True
    security.bump(user)
    return {"started_clean": True, "revoked_sessions": revoked}
