"""Tokens: minting (PyJWT), and flask-jwt-extended's verification, cookies, loaders and errors.

trikchi mints both kinds itself so that each gets its own algorithm: access
tokens HS256 under ``JWT_SECRET_KEY`` or signed with the current key of the key
set (``kid`` in the header), refresh tokens always HS256 — only trikchi reads
them. flask-jwt-extended verifies them: ``_decode_key`` picks the key by ``kid``
and pins its algorithm before PyJWT checks signature, ``exp``, ``nbf``, ``iss`` and ``aud``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt as pyjwt
from flask import Flask, Response, current_app, g, jsonify
from flask_jwt_extended import JWTManager, set_refresh_cookies, unset_refresh_cookies
from flask_jwt_extended.exceptions import JWTDecodeError
from sqlalchemy import bindparam, select

from trikchi.auth import claims as token_claims
from trikchi.auth.digests import keyed_digest
from trikchi.auth.models import AuthSession, User
from trikchi.errors import ErrorCode, error_response
from trikchi.extensions import db
from trikchi.keys import ring
from trikchi.keys.material import ASYMMETRIC_ALGORITHMS


@dataclass(frozen=True)
class TokenPair:
    """What a login or refresh hands back: the body fields and the cookie."""

    access_token: str
    refresh_token: str
    refresh_max_age: int
    expires_in: int
    user_id: int
    csrf_token: str

    def body(self) -> dict[str, object]:
        """The login/refresh response body of SPEC §1."""
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "user_id": self.user_id,
            "expires_in": self.expires_in,
            "csrf_token": self.csrf_token,
        }


def issue_token_pair(
    app: Flask,
    user: User,
    session: AuthSession,
    refresh_jti: str,
    refresh_expires_at: datetime,
    now: datetime,
) -> TokenPair:
    """Mint an access token and the refresh token ``refresh_jti`` of ``session``."""
    access_lifetime = app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    access = _encode_access(
        app,
        _claims(app, user.id, token_claims.ACCESS, str(uuid.uuid4()), now, access_lifetime)
        | {"role": user.role, "sid": session.id},
    )
    refresh_lifetime = refresh_expires_at - now
    csrf = session_csrf_token(app, session.id)
    refresh = pyjwt.encode(
        _claims(app, user.id, token_claims.REFRESH, refresh_jti, now, refresh_lifetime)
        | {"sid": session.id, "csrf": csrf},
        app.config["JWT_SECRET_KEY"],
        algorithm="HS256",
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        refresh_max_age=max(int(refresh_lifetime.total_seconds()), 0),
        expires_in=int(access_lifetime.total_seconds()),
        user_id=user.id,
        csrf_token=csrf,
    )


def _claims(
    app: Flask, user_id: int, token_type: str, jti: str, now: datetime, lifetime: timedelta
) -> dict[str, Any]:
    """The registered claims every trikchi token carries (see ``auth.claims``)."""
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": app.config["JWT_ISSUER"],
        "sub": str(user_id),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": jti,
        "type": token_type,
        "fresh": False,
    }
    if app.config["JWT_AUDIENCE"]:
        claims["aud"] = app.config["JWT_AUDIENCE"]
    return claims


def _encode_access(app: Flask, claims: dict[str, Any]) -> str:
    """Sign an access token: HS256 under JWT_SECRET_KEY, or the current key with its kid."""
    if not ring.is_asymmetric(app):
        return pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    key = ring.key_ring(app).signing_key()
    return pyjwt.encode(claims, key.key, algorithm=key.alg, headers={"kid": key.kid})


def session_csrf_token(app: Flask, session_id: str) -> str:
    """The double-submit CSRF value of a session: unpredictable, and the same for each of its tokens.

    Per session rather than per token, so that a tab whose request still carries the
    just-rotated cookie (browsers commit cookies asynchronously across tabs) sends a
    matching header and lands in the reuse grace window instead of a CSRF failure.
    """
    return keyed_digest(app.config["JWT_SECRET_KEY"], "csrf:" + session_id)


def token_response(pair: TokenPair, status: int = 200) -> Response:
    """JSON body + refresh and CSRF cookies, never cached."""
    response = jsonify(pair.body())
    response.status_code = status
    set_refresh_cookies(response, pair.refresh_token, max_age=pair.refresh_max_age)
    # Emit the refresh cookie last: clients that keep one header per name (wrk's Lua API,
    # some HTTP libraries) still see the rotated token; the CSRF value is in the body anyway.
    cookies = response.headers.getlist("Set-Cookie")
    response.headers.setlist("Set-Cookie", sorted(cookies, key=lambda c: c.startswith("refresh_token=")))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def clear_refresh_cookies(response: Response) -> Response:
    """Delete the refresh and CSRF cookies (same Path/SameSite/Secure as when set)."""
    unset_refresh_cookies(response)
    response.headers["Cache-Control"] = "no-store"
    return response


def current_session() -> AuthSession | None:
    """The session named by the verified token of this request (set by the user loader)."""
    return g.get("trikchi_session")


# Built once: constructing the statement per request cost more than running it.
_USER_AND_SESSION = (
    select(User, AuthSession)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(User.id == bindparam("user_id"), AuthSession.id == bindparam("session_id"))
)


def _decode_key(header: dict, payload: dict) -> Any:
    """The key that verifies this token, after refusing a malformed header or payload.

    Runs before the signature check, on the unverified token, and only ever refuses:
    an asymmetric token must name a published key and use exactly that key's
    algorithm; a token without ``kid`` must be HS256, and in an asymmetric mode only
    a refresh token may be (an HS256 access token "signed" with a public key is refused).
    """
    token_claims.check_header(header)
    token_claims.check_claims(payload)
    alg = header.get("alg")
    if "kid" in header:
        kid = header["kid"]
        if not ring.is_asymmetric() or not isinstance(kid, str) or alg not in ASYMMETRIC_ALGORITHMS:
            raise JWTDecodeError("unexpected kid")
        key = ring.key_ring().verification_key(kid)
        if key is None or key.alg != alg:
            raise JWTDecodeError("unknown kid or algorithm")
        return key.key
    if alg != "HS256" or (ring.is_asymmetric() and payload.get("type") != token_claims.REFRESH):
        raise JWTDecodeError("unexpected algorithm")
    return current_app.config["JWT_SECRET_KEY"]


def configure_jwt(app: Flask) -> None:
    """flask-jwt-extended's decode settings, derived from trikchi's (after any overrides)."""
    asymmetric = ring.is_asymmetric(app)
    app.config["JWT_DECODE_ALGORITHMS"] = ["HS256", *ASYMMETRIC_ALGORITHMS] if asymmetric else ["HS256"]
    app.config["JWT_DECODE_ISSUER"] = app.config["JWT_ISSUER"]
    app.config["JWT_DECODE_AUDIENCE"] = app.config["JWT_AUDIENCE"] or None
    if asymmetric and app.config["JWT_ISSUER"] == "trikchi":
        app.logger.warning(
            "JWT_ISSUER is the default 'trikchi': set it to this service's public URL so that"
            " other services find the keys from the issuer"
        )


def _load_user(_header: dict, payload: dict) -> User | None:
    """Load the token's user and session in one query; refuse disabled users, ended sessions."""
    user_id = token_claims.user_id(payload)
    session_id = payload.get("sid")
    if user_id is None or not isinstance(session_id, str):
        return None
    row = db.session.execute(_USER_AND_SESSION, {"user_id": user_id, "session_id": session_id}).first()
    if row is None:
        return None
    user, session = row
    if not user.is_active or session.revoked_at is not None:
        return None
    g.trikchi_session = session
    return user


def register_jwt_callbacks(jwt: JWTManager) -> None:
    """Replace flask-jwt-extended's ``{"msg"}``/422 answers with our 401 JSON errors."""
    jwt.decode_key_loader(_decode_key)
    jwt.user_lookup_loader(_load_user)
    jwt.user_lookup_error_loader(
        lambda _h, _p: _unauthorized("The session has ended; sign in again.", ErrorCode.SESSION_ENDED)
    )
    jwt.unauthorized_loader(_missing_or_csrf)
    jwt.invalid_token_loader(lambda _reason: _unauthorized("The token is invalid.", ErrorCode.TOKEN_INVALID))
    jwt.expired_token_loader(lambda _h, _p: _unauthorized("The token has expired.", ErrorCode.TOKEN_EXPIRED))
    jwt.token_verification_failed_loader(
        lambda _h, _p: _unauthorized("The token is invalid.", ErrorCode.TOKEN_INVALID)
    )


def _unauthorized(message: str, error: ErrorCode) -> Response:
    return error_response(401, message, error=error)


def _missing_or_csrf(reason: str) -> Response:
    """A missing token or a failed CSRF check, in our words (not the library's)."""
    if "CSRF" in reason:
        return _unauthorized("Missing or wrong X-CSRF-TOKEN header.", ErrorCode.CSRF_FAILED)
    return _unauthorized("Authentication required.", ErrorCode.AUTHENTICATION_REQUIRED)
