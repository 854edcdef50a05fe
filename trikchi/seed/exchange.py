"""The seed's refresh cookies, exchanged once for a trikchi session (SPEC §12).

The seed mints its refresh token as HS256 ``{"sub": "<user id>", "exp": <int>}`` under
its ``SECRET_KEY`` and sets it as the ``refresh_token`` cookie (Path=/, HttpOnly, Lax) —
the name and path trikchi uses, so trikchi's answer replaces it in the browser. Its
access tokens carry exactly the same claims: a token without a ``type`` claim is taken
for a refresh token only while it has more than ``SEED_ACCESS_TOKEN_MINUTES`` to live.

The native refresh path is untouched: the seed path runs only after flask-jwt-extended
refused the cookie, and only for a cookie that does not look like a trikchi token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
from flask import Flask, Response, current_app, request
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from trikchi.auth import claims as token_claims
from trikchi.auth import security, signin
from trikchi.auth.digests import sha256_hex
from trikchi.auth.models import AuthSession, User
from trikchi.auth.responses import sign_in_response
from trikchi.auth.seams import of
from trikchi.auth.sessions import SESSION_ENDED, current_token_pair, reuse_detected
from trikchi.auth.tokens import TokenPair
from trikchi.database import utcnow
from trikchi.errors import ErrorCode, Unauthorized
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo, client_info
from trikchi.i18n import N_
from trikchi.seed.models import SeedTokenExchange, SeedUser

# The seed's refresh tokens live 30 days (its SPEC §2) and carry no iat: a token was issued
# this long before it expires.
SEED_REFRESH_LIFETIME = timedelta(days=30)
# Claims only trikchi's own tokens carry: such a cookie is never taken for a seed token.
_TRIKCHI_CLAIMS = frozenset({"iss", "sid", "csrf"})
INVALID = N_("The token is invalid.")


@dataclass(frozen=True)
class SeedToken:
    """A verified seed refresh token: whose it is, until when, and its digest."""

    user_id: int
    expires_at: datetime
    digest: str


def init_app(app: Flask) -> None:
    """Let ``POST /auth/refresh_token`` take the seed's cookies (``auth.seams.refresh_fallbacks``)."""
    of(app).refresh_fallbacks.append(seed_cookie_sign_in)


def seed_cookie_sign_in() -> Response | None:
    """The answer to a refresh cookie trikchi refused, when it is a seed token and seed tokens are
    accepted: a sign-in like a login (a session, or the second step); None otherwise.

    The seed's frontends never sent the CSRF header, so a seed token needs none (the
    cookie is SameSite=Lax: a cross-site POST does not carry it).
    """
    token = seed_cookie()
    if token is None:
        return None  # a trikchi token, or no seed acceptance: the usual answer
    return sign_in_response(exchange_seed_token(token, client_info()))


def seed_tokens_accepted(now: datetime) -> bool:
    """Whether ``SEED_JWT_SECRET`` is set and ``SEED_TOKENS_UNTIL`` has not come."""
    config = current_app.config
    until = config.get("SEED_TOKENS_UNTIL")
    return bool(config.get("SEED_JWT_SECRET")) and (until is None or now < until)


def seed_cookie() -> str | None:
    """The refresh cookie when it may be a seed token and seed tokens are accepted, else None."""
    token = request.cookies.get(current_app.config["JWT_REFRESH_COOKIE_NAME"])
    if not token or not seed_tokens_accepted(utcnow()):
        return None
    try:
        payload = pyjwt.decode(token, options={"verify_signature": False})  # only to tell ours apart
    except (pyjwt.PyJWTError, ValueError):
        return None
    return None if _TRIKCHI_CLAIMS.intersection(payload) else token


def verify_seed_token(token: str, now: datetime) -> SeedToken:
    """The verified seed refresh token, or ``Unauthorized`` saying why not."""
    config = current_app.config
    try:
        token_claims.check_header(pyjwt.get_unverified_header(token))
        claims = pyjwt.decode(
            token,
            config["SEED_JWT_SECRET"],
            algorithms=["HS256"],
            options={"require": ["exp", "sub"], "verify_aud": False},
        )
    except pyjwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired.", error=ErrorCode.TOKEN_EXPIRED) from None
    except (pyjwt.PyJWTError, ValueError, TypeError, RecursionError):
        raise Unauthorized(INVALID, error=ErrorCode.TOKEN_INVALID) from None
    user_id = token_claims.user_id(claims)
    expires = claims["exp"]
    if user_id is None or type(expires) is not int or _TRIKCHI_CLAIMS.intersection(claims):
        raise Unauthorized(INVALID, error=ErrorCode.TOKEN_INVALID)
    if "type" in claims:
        if claims["type"] != "refresh":
            raise Unauthorized(INVALID, error=ErrorCode.TOKEN_INVALID)
    elif expires - now.timestamp() <= config["SEED_ACCESS_TOKEN_MINUTES"] * 60:
        # Indistinguishable from one of the seed's access tokens, which are never accepted.
        raise Unauthorized(INVALID, error=ErrorCode.TOKEN_INVALID)
    # Named by what its signature signs (header.payload), so that the same token with its
    # signature spelled another way is still the same token.
    signed_part = token.rsplit(".", 1)[0]
    return SeedToken(
        user_id=user_id,
        expires_at=datetime.fromtimestamp(expires, UTC),
        digest=sha256_hex(signed_part),
    )


def exchange_seed_token(token: str, client: ClientInfo) -> signin.SignInResult:
    """Sign in with a verified seed refresh token, once, through the sign-in decision; commit.

    The token is spent whatever the decision: a session (not fresh: a cookie is no interactive
    sign-in), or the second step when TOTP is on. Presented again within
    ``REFRESH_REUSE_GRACE_SECONDS`` (two tabs), the token gets that session's current tokens;
    after it, the session is revoked (theft), as for a reused trikchi refresh token.
    """
    now = utcnow()
    seed = verify_seed_token(token, now)
    exchange = db.session.get(SeedTokenExchange, seed.digest)
    if exchange is not None:
        return _exchanged_again(exchange, client, now)
    user = db.session.get(User, seed.user_id)
    imported = db.session.get(SeedUser, seed.user_id) is not None
    issued_at = seed.expires_at - SEED_REFRESH_LIFETIME
    if user is None or not imported or security.issued_before_last_change(user, issued_at):
        # Also a cookie from before the account's last security change (a password change or
        # reset, sign-out everywhere, …): it was meant to die with the sessions of that time.
        db.session.rollback()
        raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED)
    db.session.add(
        SeedTokenExchange(
            token_digest=seed.digest, user_id=user.id, exchanged_at=now, expires_at=seed.expires_at
        )
    )
    try:
        db.session.flush()  # the claim: of racing requests, one inserts, the others wait and fail
    except IntegrityError:
        db.session.rollback()
        exchange = db.session.get(SeedTokenExchange, seed.digest)
        if exchange is None:
            raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED) from None
        return _exchanged_again(exchange, client, now)
    record_event(Events.SEED_TOKEN_EXCHANGED, client, user_id=user.id)

    def name_the_session(session: AuthSession) -> None:
        # In the session's transaction: a racing second tab never sees an exchange without it.
        db.session.execute(
            update(SeedTokenExchange.__table__)
            .where(SeedTokenExchange.token_digest == seed.digest)
            .values(session_id=session.id)
        )

    # Issued (at the latest) a refresh lifetime before it expires, and never fresh.
    fresh_since = now - timedelta(seconds=current_app.config["FRESH_SIGNIN_SECONDS"] + 1)
    signed_in_at = min(issued_at, fresh_since)
    try:
        return signin.decide(user, client, "seed", auth_time=signed_in_at, on_open=name_the_session)
    except signin.AccountRefused as refused:
        db.session.rollback()
        refused.raise_answer()  # a ban: 403 account_banned
        raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED) from None


def _exchanged_again(exchange: SeedTokenExchange, client: ClientInfo, now: datetime) -> TokenPair:
    """A seed token presented after its exchange: the current tokens in the grace window, else theft."""
    session = db.session.get(AuthSession, exchange.session_id) if exchange.session_id else None
    grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"])
    if now - exchange.exchanged_at <= grace:
        pair = None
        if session is not None and session.is_live(now):
            pair = current_token_pair(
                db.session.connection(),
                session.id,
                session.user_id,
                session.user.role,
                session.auth_time,
                now,
            )
        db.session.rollback()
        if pair is None:
            raise Unauthorized(SESSION_ENDED, error=ErrorCode.SESSION_ENDED)
        return pair
    reuse_detected(exchange.session_id, exchange.user_id, client, now, details={"seed_token": True})
