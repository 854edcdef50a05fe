"""The second step of a sign-in when TOTP is on (SPEC §8, §13).

The sign-in decision (``trikchi.auth.signin``) hands out the ``mfa_token``; this checks the
TOTP or recovery code sent with it, under the account's code budget, and lets the core
consume the token and open the session.
"""

from __future__ import annotations

from trikchi.auth import signin
from trikchi.auth.models import User
from trikchi.auth.tokens import TokenPair
from trikchi.errors import ErrorCode, Unauthorized
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.mfa import totp
from trikchi.mfa.limits import check_code_budget, spend_code_attempt

METHODS = ("totp", "recovery_code")


def complete(
    mfa_token: str, code: str | None, recovery_code: str | None, client: ClientInfo
) -> tuple[User, TokenPair]:
    """Check the second factor and open the session; ``Unauthorized`` otherwise."""
    pending = signin.pending_sign_in(mfa_token)
    if pending is None:
        record_event(
            Events.MFA_CHALLENGE_FAILED, client, details={"step": "login", "reason": "mfa_token_invalid"}
        )
        db.session.commit()
        raise Unauthorized(signin.TOKEN_INVALID, error=ErrorCode.MFA_TOKEN_INVALID)

    user = pending.user
    check_code_budget(user.id)
    method = "totp" if code is not None else "recovery_code"
    if method == "totp":
        accepted = totp.verify_totp(user.id, code or "")
    else:
        accepted = totp.use_recovery_code(user.id, recovery_code or "")
    if not accepted:
        db.session.rollback()
        signin.count_failed_step(pending)
        spend_code_attempt(user.id)
        record_event(
            Events.MFA_CHALLENGE_FAILED,
            client,
            user_id=user.id,
            details={"step": "login", "method": method, "reason": "wrong_code"},
        )
        db.session.commit()
        raise Unauthorized(totp.WRONG_CODE, error=ErrorCode.INVALID_MFA_CODE)
    return user, signin.finish_second_step(pending, client, method)
