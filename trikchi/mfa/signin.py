"""The second step of a password sign-in when TOTP is on (SPEC §8).

The password step hands out an ``mfa_token`` instead of a session: random, stored
as its SHA-256 only, alive 5 minutes, single-use (consumed by one conditional
DELETE in the same transaction as the code), and dead after 5 wrong codes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, select, update

from trikchi.auth.events import Events, record_event
from trikchi.auth.models import User
from trikchi.auth.sessions import open_session
from trikchi.auth.tokens import TokenPair
from trikchi.database import utcnow
from trikchi.errors import ErrorCode, Unauthorized
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_
from trikchi.mfa import totp
from trikchi.mfa.crypto import digest
from trikchi.mfa.limits import check_code_budget, spend_code_attempt
from trikchi.mfa.models import MfaChallenge

TOKEN_SECONDS = 300
MAX_FAILURES = 5
METHODS = ("totp", "recovery_code")
TOKEN_INVALID = N_("This sign-in has expired or was already used; sign in again.")  # noqa: S105 - a message


@dataclass(frozen=True)
class MfaRequired:
    """The answer to a correct password when a second factor is on."""

    mfa_token: str
    methods: list[str] = field(default_factory=lambda: list(METHODS))

    def body(self) -> dict[str, object]:
        """The JSON body of ``POST /auth/login``."""
        return {"mfa_required": True, "mfa_token": self.mfa_token, "methods": self.methods}


def start(user: User) -> MfaRequired:
    """Hand out an ``mfa_token`` for ``user`` (whose password was right); commit."""
    now = utcnow()
    # Expired challenges go here rather than in a cron job: one indexed DELETE.
    db.session.execute(delete(MfaChallenge).where(MfaChallenge.expires_at <= now))
    token = secrets.token_urlsafe(32)
    db.session.add(
        MfaChallenge(
            token_hash=digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=TOKEN_SECONDS),
            failures=0,
        )
    )
    db.session.commit()
    return MfaRequired(mfa_token=token)


def challenge_user_id(mfa_token: str) -> int | None:
    """The account an ``mfa_token`` belongs to (for the rate limits), if it exists."""
    return db.session.scalar(select(MfaChallenge.user_id).where(MfaChallenge.token_hash == digest(mfa_token)))


def complete(
    mfa_token: str, code: str | None, recovery_code: str | None, client: ClientInfo
) -> tuple[User, TokenPair]:
    """Check the second factor and open the session; ``Unauthorized`` otherwise."""
    now = utcnow()
    token_hash = digest(mfa_token)
    challenge = db.session.execute(
        select(MfaChallenge.user_id, MfaChallenge.expires_at, MfaChallenge.failures).where(
            MfaChallenge.token_hash == token_hash
        )
    ).first()
    user = db.session.get(User, challenge.user_id) if challenge is not None else None
    if (
        challenge is None
        or user is None
        or not user.is_active
        or challenge.expires_at <= now
        or challenge.failures >= MAX_FAILURES
    ):
        record_event(
            Events.MFA_CHALLENGE_FAILED,
            client,
            user_id=user.id if user else None,
            details={"step": "login", "reason": "mfa_token_invalid"},
        )
        db.session.commit()
        raise Unauthorized(TOKEN_INVALID, error=ErrorCode.MFA_TOKEN_INVALID)

    check_code_budget(user.id)
    method = "totp" if code is not None else "recovery_code"
    if method == "totp":
        accepted = totp.verify_totp(user.id, code or "")
    else:
        accepted = totp.use_recovery_code(user.id, recovery_code or "")
    if not accepted:
        db.session.rollback()
        db.session.execute(
            update(MfaChallenge)
            .where(MfaChallenge.token_hash == token_hash)
            .values(failures=MfaChallenge.failures + 1)
        )
        spend_code_attempt(user.id)
        record_event(
            Events.MFA_CHALLENGE_FAILED,
            client,
            user_id=user.id,
            details={"step": "login", "method": method, "reason": "wrong_code"},
        )
        db.session.commit()
        raise Unauthorized(totp.WRONG_CODE, error=ErrorCode.INVALID_MFA_CODE)

    consumed = db.session.execute(
        delete(MfaChallenge).where(
            MfaChallenge.token_hash == token_hash,
            MfaChallenge.expires_at > now,
            MfaChallenge.failures < MAX_FAILURES,
        )
    ).rowcount
    if consumed != 1:  # another request used it (or killed it) meanwhile: the code stays unused
        db.session.rollback()
        raise Unauthorized(TOKEN_INVALID, error=ErrorCode.MFA_TOKEN_INVALID)
    return user, open_session(user, client, method=method)
