"""View guards: a valid access token (from the Authorization header only), optionally with a role;
a valid refresh cookie with its CSRF header. flask-jwt-extended verifies both.

``access_required`` is flask-jwt-extended's ``verify_jwt_in_request`` on the Authorization
header; its ``user_lookup_loader`` (``load_live_user``) checks, in one query, that the token's
user is active and its session not revoked — so a logout, a logout everywhere, theft
detection or a deactivation stop the access token at once. The caller is then
``current_user``: a plain record of the user row read by that query (not an ORM object:
building one cost more than the query). Views that change the user load the ORM object
themselves (``current_user_model``). The refresh cookie is ``verify_jwt_in_request`` on the
cookie, with the library's double-submit CSRF check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, cast

from flask import Flask, current_app, g, request
from flask_jwt_extended import current_user as jwt_current_user
from flask_jwt_extended import get_current_user, get_jwt, get_jwt_header, verify_jwt_in_request
from flask_jwt_extended.exceptions import (
    CSRFError,
    FreshTokenRequired,
    JWTExtendedException,
    NoAuthorizationError,
)
from jwt import PyJWTError
from sqlalchemy import bindparam, select

from trikchi.auth import claims as token_claims
from trikchi.auth import signin, tokens
from trikchi.auth.models import GUEST, AuthSession, RefreshToken, User
from trikchi.auth.seams import seams
from trikchi.database import UTCDateTime, connect_for_reads, utcnow
from trikchi.errors import ErrorCode, Forbidden, Unauthorized
from trikchi.extensions import db, jwt
from trikchi.i18n import N_

# The OpenAPI security requirement of views guarded by access_required / role_required.
BEARER = [{"bearerAuth": []}]
# What flask-jwt-extended and PyJWT raise for a token they refuse (their error loaders,
# auth.tokens, answer each).
TOKEN_REFUSALS = (JWTExtendedException, PyJWTError)
_HEADERS = ("headers",)
_COOKIES = ("cookies",)
# Where this request's verified user is kept (the request's own, not the app context's ``g``, which a
# test may share between requests).
_VERIFIED = "trikchi.verified_user"
ACCOUNT_REQUIRED = N_("This needs an account: register or sign in first.")


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
    phone: str | None  # E.164, None without a proven number (SPEC §14)
    phone_verified: bool
    session_id: str
    # The token's auth_time (SPEC §8): the session's last interactive authentication.
    auth_time: int | None = None

    @property
    def is_guest(self) -> bool:
        """A guest (SPEC §15): no credential yet."""
        return self.role == GUEST


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
        _USERS.phone,
        _USERS.phone_verified,
    )
    .join(AuthSession.__table__, AuthSession.__table__.c.user_id == _USERS.id)
    .where(
        _USERS.id == bindparam("user_id"),
        AuthSession.__table__.c.id == bindparam("session_id"),
        AuthSession.is_live(bindparam("now", type_=UTCDateTime())),
    )
)


def init_app(app: Flask) -> None:
    """flask-jwt-extended loads the request's user with the guard's query (``load_live_user``)."""
    jwt.user_lookup_loader(load_live_user)


def load_live_user(_header: dict[str, Any], claims: dict[str, Any]) -> CurrentUser | int | None:
    """flask-jwt-extended's ``user_lookup_loader``: an access token's user and session, if the user
    is active and the session live, else None (401 ``session_ended``).

    A refresh token is not looked up: its rotation checks the session in its own statements,
    so its holder is just the user id (never a view's ``current_user``).
    """
    user_id = int(claims["sub"])
    if claims["type"] != token_claims.ACCESS:
        return user_id
    session_id = claims["sid"]
    # On a connection of its own, outside the ORM session: this read needs no transaction with
    # the view's work.
    with connect_for_reads(db.engine) as connection:
        row = connection.execute(
            _LIVE_USER, {"user_id": user_id, "session_id": session_id, "now": utcnow()}
        ).first()
    if row is None:
        return None
    return CurrentUser(*row, session_id=session_id, auth_time=claims.get("auth_time"))


def authenticate_request() -> CurrentUser:
    """Verify the bearer token and load its live user and session (flask-jwt-extended); 401 otherwise.

    Once per request: a second guard on the same view (``account_required`` over
    ``fresh_required``) gets the user the first one loaded.
    """
    verified = request.environ.get(_VERIFIED)
    if verified is not None:
        return verified
    _hand_over_authorization()
    verify_jwt_in_request(locations=_HEADERS)
    user = get_current_user()
    request.environ[_VERIFIED] = user
    # The language of this request's answers is its user's (i18n.select_locale, below the core).
    g.trikchi_user = user
    return user


def _hand_over_authorization() -> None:
    """``Authorization: Bearer <token>`` as trikchi reads it, handed to flask-jwt-extended.

    The header must be a scheme and a token; the scheme is case-insensitive (RFC 9110 §11.1),
    but flask-jwt-extended compares it with ``JWT_HEADER_TYPE`` exactly, so a ``bearer`` or
    ``BEARER`` header reaches it spelled ``Bearer``. Anything else is 401
    ``authentication_required``, and a padded token is refused (``tokens.refuse_padding``).
    """
    config = tokens.settings()
    environ = request.environ
    parts = environ.get(config.header_environ_key, "").split()
    if len(parts) != 2 or parts[0].lower() != config.header_type.lower():
        raise NoAuthorizationError("no bearer token")
    tokens.refuse_padding(parts[1])
    if parts[0] != config.header_type:
        environ[config.header_environ_key] = f"{config.header_type} {parts[1]}"


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
        if not is_fresh(authenticate_request()):
            raise FreshTokenRequired("sign-in not recent", get_jwt_header(), get_jwt())
        return view(*args, **kwargs)

    return wrapper


def is_fresh(user: CurrentUser) -> bool:
    """Whether ``user`` authenticated interactively within ``FRESH_SIGNIN_SECONDS``."""
    if user.auth_time is None:
        return False
    return time.time() - user.auth_time <= current_app.config["FRESH_SIGNIN_SECONDS"]


def account_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """403 ``account_required`` for a guest (SPEC §15): what only an account has — a password, an
    email, a phone, second factors, passkeys — is not a guest's to set up or change.

    Authenticates the request itself (401 without a valid access token), so it goes above the
    view's other guard: a guest is told it needs an account, not that its sign-in is stale
    (``fresh_required`` below it then reuses the user loaded here). The one rule for every
    account-only operation: a feature's view adds this line.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if authenticate_request().is_guest:
            raise Forbidden(ACCOUNT_REQUIRED, error=ErrorCode.ACCOUNT_REQUIRED)
        return view(*args, **kwargs)

    return wrapper


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
    """The verified claims of the refresh cookie, its CSRF double submit checked (flask-jwt-extended);
    else what the library raises (``TOKEN_REFUSALS``), which its error loaders answer.

    Cookie and header names and the CSRF rule are flask-jwt-extended's settings: the header
    must be present before the token is read and equal its ``csrf`` claim after (constant-time).
    """
    config = tokens.settings()
    token = request.cookies.get(config.refresh_cookie)
    if token:
        csrf = request.headers.get(config.csrf_header)
        if csrf and not csrf.isascii():
            # flask-jwt-extended compares the header with hmac.compare_digest on str, which raises
            # TypeError for non-ASCII text (a 500); no trikchi CSRF value is ever non-ASCII.
            raise CSRFError("non-ASCII CSRF header")
        tokens.refuse_padding(token)
    verify_jwt_in_request(refresh=True, locations=_COOKIES)
    return get_jwt()


def refresh_cookie_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """``verify_refresh_cookie`` before the view; a cookie it refuses goes to the features' fallbacks
    (``auth.seams.refresh_fallbacks``: the seed's cookies), the first answer of which is the
    response. Without an answer, the refusal stands."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            verify_refresh_cookie()
        except TOKEN_REFUSALS:
            for fallback in seams().refresh_fallbacks:
                response = fallback()
                if response is not None:
                    return response
            raise
        return view(*args, **kwargs)

    return wrapper


def refresh_claims() -> dict[str, Any]:
    """The claims of the refresh cookie that ``verify_refresh_cookie`` verified in this request."""
    return get_jwt()


# flask-jwt-extended's: the user its user_lookup_loader (load_live_user) loaded for this request.
current_user = cast(CurrentUser, jwt_current_user)


def current_user_record() -> CurrentUser:
    """The signed-in user itself (not the proxy: serialising through it cost a lookup per field)."""
    return get_current_user()


def current_user_model() -> User:
    """The ORM object of the signed-in user, for views that change it."""
    user = db.session.get(User, get_current_user().id)
    if user is None:  # deleted between the guard's query and now
        raise Unauthorized(tokens.SESSION_ENDED, error=ErrorCode.SESSION_ENDED)
    return user


def guest_of_bearer() -> CurrentUser | None:
    """The guest whose access token this request carries, for a view that a guest's token changes
    (registration, a phone code: the guest becomes that account, SPEC §15); else None.

    None without an ``Authorization`` header, and for another account's token (the view then does
    what it does for anyone). A token that is sent but refused is 401, as by ``access_required``:
    a guest must not become a second, unrelated account because its token had expired. The
    token's ``role`` claim decides, not the row: a guest's second tab, whose guest has become a
    customer meanwhile, is still an attempt to upgrade it (and is refused, not made an account).
    """
    if not request.environ.get(tokens.settings().header_environ_key):
        return None
    user = authenticate_request()
    return user if get_jwt().get("role") == GUEST else None


# The guest's live session and its refresh token, unused: what a browser that holds the guest's
# latest refresh cookie presents.
_LIVE_GUEST_COOKIE = (
    select(_USERS.id)
    .join(AuthSession.__table__, AuthSession.__table__.c.user_id == _USERS.id)
    .join(RefreshToken.__table__, RefreshToken.__table__.c.session_id == AuthSession.__table__.c.id)
    .where(
        _USERS.id == bindparam("user_id"),
        _USERS.role == GUEST,
        AuthSession.__table__.c.id == bindparam("session_id"),
        AuthSession.is_live(bindparam("now", type_=UTCDateTime())),
        RefreshToken.__table__.c.jti == bindparam("jti"),
        RefreshToken.__table__.c.used_at.is_(None),
    )
)


def guest_of_refresh_cookie() -> int | None:
    """The id of the guest whose refresh cookie this browser holds, for a sign-in made in it (OpenID
    Connect, Telegram: the guest becomes that account, or is merged into it, SPEC §15); else None.

    The cookie is verified as a refresh is (``verify_refresh_cookie``: flask-jwt-extended, with the
    CSRF header on a POST), and must be the live, unused refresh token of a live session of a user
    who is a guest. Anything else (no cookie, a refused one, a customer's) is None: the sign-in is
    then what it is without a guest.
    """
    if tokens.settings().refresh_cookie not in request.cookies:
        return None
    try:
        claims = verify_refresh_cookie()
    except TOKEN_REFUSALS:
        return None
    user_id = token_claims.user_id(claims)
    if user_id is None:
        return None
    parameters = {"user_id": user_id, "session_id": claims["sid"], "jti": claims["jti"], "now": utcnow()}
    found = db.session.execute(_LIVE_GUEST_COOKIE, parameters).first()
    return user_id if found is not None else None
