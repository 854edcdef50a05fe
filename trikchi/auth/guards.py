"""View guards: a valid access token (from the Authorization header only), optionally with a role;
a valid refresh cookie with its CSRF header.

``access_required`` verifies the token once (``tokens.verify_access_token``) and
checks, in one query, that its user is active and its session not revoked — so a
logout, a logout everywhere, theft detection or a deactivation stop the access
token at once. The caller is then ``current_user``: a plain record of the user row
read by that query (not an ORM object: building one cost more than the query).
Views that change the user load the ORM object themselves (``current_user_model``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, cast

from flask import current_app, g, request
from sqlalchemy import bindparam, select
from werkzeug.local import LocalProxy

from trikchi.auth import claims as token_claims
from trikchi.auth import signin
from trikchi.auth.models import AuthSession, User
from trikchi.auth.seams import seams
from trikchi.auth.tokens import verify_access_token, verify_refresh_token
from trikchi.database import UTCDateTime, connect_for_reads, utcnow
from trikchi.errors import ErrorCode, Forbidden, Unauthorized
from trikchi.extensions import db
from trikchi.i18n import N_

CSRF_FAILED = N_("Missing or wrong X-CSRF-TOKEN header.")

# The OpenAPI security requirement of views guarded by access_required / role_required.
BEARER = [{"bearerAuth": []}]


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The signed-in user of this request, as the guard read it, and the token's session."""

    id: int
    name: str
    email: str | None  # None for an account made by a sign-in without an address (Telegram)
    role: str
    email_verified: bool
    created_at: datetime
    # The user's language (SPEC §10), read here so that choosing it costs no second query.
    locale: str | None
    session_id: str
    # The token's auth_time (SPEC §8): the session's last interactive authentication.
    auth_time: int | None = None


# The token's user and its session, live (``AuthSession.is_live``). Built once, of Core columns:
# constructing the statement per request cost more than running it, and SQLAlchemy caches the
# compiled form of a Core statement.
_USERS = User.__table__.c
_LIVE_USER = (
    select(
        _USERS.id,
        _USERS.name,
        _USERS.email,
        _USERS.role,
        _USERS.email_verified,
        _USERS.created_at,
        _USERS.locale,
    )
    .join(AuthSession.__table__, AuthSession.__table__.c.user_id == _USERS.id)
    .where(
        _USERS.id == bindparam("user_id"),
        AuthSession.__table__.c.id == bindparam("session_id"),
        AuthSession.is_live(bindparam("now", type_=UTCDateTime())),
    )
)


def _bearer_token() -> str:
    """The token of ``Authorization: Bearer <token>`` (the scheme is case-insensitive, RFC 9110)."""
    config = current_app.config
    parts = request.headers.get(config["JWT_HEADER_NAME"], "").split()
    if len(parts) != 2 or parts[0].lower() != config["JWT_HEADER_TYPE"].lower():
        raise Unauthorized("Authentication required.", error=ErrorCode.AUTHENTICATION_REQUIRED)
    return parts[1]


def authenticate_request() -> CurrentUser:
    """Verify the bearer token and load its live user and session; ``Unauthorized`` otherwise."""
    claims = verify_access_token(_bearer_token())
    user_id = token_claims.user_id(claims)
    session_id = claims["sid"]
    # On a connection of its own, outside the ORM session: this read needs no transaction with
    # the view's work.
    with connect_for_reads(db.engine) as connection:
        row = connection.execute(
            _LIVE_USER, {"user_id": user_id, "session_id": session_id, "now": utcnow()}
        ).first()
    if row is None:
        raise Unauthorized("The session has ended; sign in again.", error=ErrorCode.SESSION_ENDED)
    user = CurrentUser(*row, session_id=session_id, auth_time=claims.get("auth_time"))
    g.trikchi_user = user
    return user


def access_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 unless the request carries a valid access token of a live session."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        authenticate_request()
        return view(*args, **kwargs)

    return wrapper


def fresh_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """``access_required``, and 401 ``fresh_signin_required`` unless the token's sign-in is recent.

    Recent means within ``FRESH_SIGNIN_SECONDS`` (SPEC §8); a refresh carries the sign-in
    time on unchanged, so only signing in again or ``POST /auth/reauthenticate`` renews it.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = authenticate_request()
        if not is_fresh(user):
            raise Unauthorized(
                "This needs a recent sign-in: confirm your password first.",
                error=ErrorCode.FRESH_SIGNIN_REQUIRED,
            )
        return view(*args, **kwargs)

    return wrapper


def is_fresh(user: CurrentUser) -> bool:
    """Whether ``user`` authenticated interactively within ``FRESH_SIGNIN_SECONDS``."""
    if user.auth_time is None:
        return False
    return time.time() - user.auth_time <= current_app.config["FRESH_SIGNIN_SECONDS"]


def role_required(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """401 without a valid access token, 403 when the user's current role is not ``role``."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # The role is read from the database row, not the token: a demotion applies at once.
            if authenticate_request().role != role:
                raise Forbidden(f"This needs the {role} role.")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def enrollment_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """403 ``mfa_enrollment_required`` for a user of an ``MFA_REQUIRED_ROLES`` role without a second
    factor (TOTP or a passkey: whatever the features registered, ``auth.seams``).

    Goes under a guard that has authenticated the request (``role_required``).
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if signin.requires_mfa(current_user.role) and not signin.has_second_factor(current_user.id):
            raise Forbidden(
                "Your role needs a second factor: set up TOTP or add a passkey first.",
                error=ErrorCode.MFA_ENROLLMENT_REQUIRED,
            )
        return view(*args, **kwargs)

    return wrapper


def verify_refresh_cookie() -> dict[str, Any]:
    """The verified claims of the refresh cookie, its CSRF double submit checked; else ``Unauthorized``.

    Cookie and header names and the CSRF rule are flask-jwt-extended's settings (the
    ``JWT_*`` keys its config reads, looked up once here). The header is checked for
    presence before the token and against the token's ``csrf`` claim after it
    (constant-time), as flask-jwt-extended does. The claims are kept for the view
    (``refresh_claims``).
    """
    config = current_app.config
    token = request.cookies.get(config["JWT_REFRESH_COOKIE_NAME"])
    if not token:
        raise Unauthorized("Authentication required.", error=ErrorCode.AUTHENTICATION_REQUIRED)
    csrf = None
    if config["JWT_COOKIE_CSRF_PROTECT"] and request.method in config["JWT_CSRF_METHODS"]:
        csrf = request.headers.get(config["JWT_REFRESH_CSRF_HEADER_NAME"])
        if not csrf:
            raise Unauthorized(CSRF_FAILED, error=ErrorCode.CSRF_FAILED)
    claims = verify_refresh_token(token)
    if csrf is not None and not hmac.compare_digest(csrf.encode(), claims["csrf"].encode()):
        raise Unauthorized(CSRF_FAILED, error=ErrorCode.CSRF_FAILED)
    g.trikchi_refresh_claims = claims
    return claims


def refresh_cookie_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """``verify_refresh_cookie`` before the view; a cookie it refuses goes to the features' fallbacks
    (``auth.seams.refresh_fallbacks``: the seed's cookies), the first answer of which is the
    response. Without an answer, the refusal stands."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            verify_refresh_cookie()
        except Unauthorized:
            for fallback in seams().refresh_fallbacks:
                response = fallback()
                if response is not None:
                    return response
            raise
        return view(*args, **kwargs)

    return wrapper


def refresh_claims() -> dict[str, Any]:
    """The claims of the refresh cookie that ``verify_refresh_cookie`` verified in this request."""
    return g.trikchi_refresh_claims


current_user = cast(CurrentUser, LocalProxy(lambda: g.trikchi_user))


def current_user_record() -> CurrentUser:
    """The signed-in user itself (not the proxy: serialising through it cost a lookup per field)."""
    return g.trikchi_user


def current_user_model() -> User:
    """The ORM object of the signed-in user, for views that change it."""
    user = db.session.get(User, g.trikchi_user.id)
    if user is None:  # deleted between the guard's query and now
        raise Unauthorized("The session has ended; sign in again.", error=ErrorCode.SESSION_ENDED)
    return user
