"""``MFA_REQUIRED_ROLES``: roles that must have a second factor (TOTP or a passkey)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app
from sqlalchemy import select

from trikchi.auth.guards import current_user
from trikchi.errors import ErrorCode, Forbidden
from trikchi.extensions import db
from trikchi.mfa import totp
from trikchi.mfa.models import Passkey


def has_second_factor(user_id: int) -> bool:
    """Whether the user has TOTP on or at least one passkey."""
    if totp.is_enabled(user_id):
        return True
    return db.session.scalar(select(Passkey.id).where(Passkey.user_id == user_id).limit(1)) is not None


def enrollment_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """403 ``mfa_enrollment_required`` for a user of an ``MFA_REQUIRED_ROLES`` role without a second factor.

    Goes under a guard that has authenticated the request (``role_required``).
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user.role in current_app.config["MFA_REQUIRED_ROLES"] and not has_second_factor(
            current_user.id
        ):
            raise Forbidden(
                "Your role needs a second factor: set up TOTP or add a passkey first.",
                error=ErrorCode.MFA_ENROLLMENT_REQUIRED,
            )
        return view(*args, **kwargs)

    return wrapper
