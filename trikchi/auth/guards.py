"""View guards: a valid access token, optionally with a role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask_jwt_extended import current_user, jwt_required

from trikchi.errors import Forbidden

# Access tokens only from the Authorization header (never cookies or query strings).
access_required = jwt_required(locations=["headers"])
# The OpenAPI security requirement of views guarded by access_required / role_required.
BEARER = [{"bearerAuth": []}]


def role_required(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """401 without a valid access token, 403 when the user's current role is not ``role``."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # The role is read from the database row, not the token: a demotion applies at once.
            if current_user.role != role:
                raise Forbidden(f"This needs the {role} role.")
            return view(*args, **kwargs)

        return access_required(wrapper)

    return decorator
