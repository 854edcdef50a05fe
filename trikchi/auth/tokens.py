"""Tokens: flask-jwt-extended mints and verifies them (PyJWT under it); here are its settings, every
loader trikchi gives it, and the refresh cookies.

- Minting: ``create_access_token`` / ``create_refresh_token`` with the claims of SPEC §2. The
  identity handed to them is a ``TokenSubject``: the user and the key that signs, chosen
  together with its ``kid`` (``additional_headers``), so that a key ring reloaded in between can
  never put one key's kid on another key's signature. Access tokens are HS256 under
  ``JWT_SECRET_KEY`` or signed with the key ring's current key; refresh tokens are HS256 under
  ``JWT_SECRET_KEY`` in every mode (only trikchi reads them).
- Verifying: ``auth.guards`` calls ``verify_jwt_in_request``. The ``decode_key_loader`` refuses
  what trikchi could not have minted (``auth.claims``) and picks the key by the token's type and
  ``kid``; every key it returns is a ``PyJWK`` bound to one algorithm, so PyJWT refuses a token
  whose ``alg`` is another. PyJWT checks the signature and the times (``JWT_DECODE_LEEWAY``);
  the ``token_verification_loader`` checks ``iss`` and ``aud``.
- Errors: flask-jwt-extended's error loaders answer in trikchi's one error shape, with the
  ``error`` codes of ``trikchi.error_codes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, jsonify
from flask_jwt_extended import create_access_token, create_refresh_token, unset_refresh_cookies
from flask_jwt_extended import set_refresh_cookies as set_jwt_refresh_cookies
from flask_jwt_extended.exceptions import CSRFError
from jwt import DecodeError, InvalidTokenError, PyJWK
from jwt.algorithms import HMACAlgorithm

from trikchi.auth import claims as token_claims
from trikchi.auth.digests import keyed_digest
from trikchi.errors import ErrorCode, Unauthorized, handle_app_error
from trikchi.extensions import jwt
from trikchi.i18n import N_
from trikchi.keys import ring
from trikchi.keys.material import ASYMMETRIC_ALGORITHMS

AUTHENTICATION_REQUIRED = N_("Authentication required.")
TOKEN_INVALID = N_("The token is invalid.")
TOKEN_EXPIRED = N_("The token has expired.")
SESSION_ENDED = N_("The session has ended; sign in again.")
CSRF_FAILED = N_("Missing or wrong X-CSRF-TOKEN header.")
FRESH_SIGNIN_REQUIRED = N_("This needs a recent sign-in: confirm your password first.")

# Refresh tokens are HS256 in every mode. PyJWT takes the header's alg over the algorithm
# flask-jwt-extended passes (JWT_ALGORITHM, which names the access tokens' algorithm).
_REFRESH_HEADERS = {"alg": "HS256"}
# flask-jwt-extended reads a zero expires_delta as "no exp claim": a refresh lifetime already
# over gets an exp at its issue time instead (as before), never a token without an end.
_NO_TIME_LEFT = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class TokenSubject:
    """The identity given to ``create_access_token`` / ``create_refresh_token``: the user, and the
    key that signs the token (``encode_key_loader``)."""

    user_id: int
    key: Any


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """What the loaders and guards need of the configuration, read once when the app is built."""

    issuer: str
    audience: str | None
    asymmetric: bool
    secret: PyJWK  # JWT_SECRET_KEY as an HS256 key
    access_seconds: int
    header_environ_key: str  # JWT_HEADER_NAME as the WSGI environ names it
    header_type: str
    refresh_cookie: str
    csrf_header: str


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


def init_app(app: Flask) -> None:
    """flask-jwt-extended on ``app``: settings derived from trikchi's, trikchi's loaders, one error shape."""
    config = app.config
    asymmetric = ring.is_asymmetric(app)
    if asymmetric and config["JWT_ISSUER"] == "trikchi":
        app.logger.warning(
            "JWT_ISSUER is the default 'trikchi': set it to this service's public URL so that"
            " other services find the keys from the issuer"
        )
    # iss on every token, aud when set: put there by flask-jwt-extended.
    config["JWT_ENCODE_ISSUER"] = config["JWT_ISSUER"]
    config["JWT_ENCODE_AUDIENCE"] = config["JWT_AUDIENCE"] or None
    # The algorithms a trikchi token may name: HS256 (refresh tokens, and access tokens in HS256
    # mode) and, in an asymmetric mode, those of the key ring. Which one a token must use is its
    # key's (decode_key_loader).
    config["JWT_DECODE_ALGORITHMS"] = ["HS256", *ASYMMETRIC_ALGORITHMS] if asymmetric else ["HS256"]
    # Checked by the token_verification_loader instead (_claims_verified): PyJWT would require iss
    # of every token, and a refresh token from before trikchi set it has none; aud is for access
    # tokens only.
    config["JWT_DECODE_ISSUER"] = None
    config["JWT_DECODE_AUDIENCE"] = None
    jwt.init_app(app)
    _register_loaders()
    # flask-jwt-extended answers a CSRF failure through its unauthorized_loader with only a message
    # to tell it from a missing token; trikchi answers it with its own code.
    app.register_error_handler(CSRFError, _csrf_failed)
    header_name = config["JWT_HEADER_NAME"]
    app.extensions["trikchi.tokens"] = TokenSettings(
        issuer=config["JWT_ISSUER"],
        audience=config["JWT_AUDIENCE"] or None,
        asymmetric=asymmetric,
        secret=PyJWK(HMACAlgorithm.to_jwk(config["JWT_SECRET_KEY"], as_dict=True), "HS256"),
        access_seconds=int(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        header_environ_key="HTTP_" + header_name.upper().replace("-", "_"),
        header_type=config["JWT_HEADER_TYPE"],
        refresh_cookie=config["JWT_REFRESH_COOKIE_NAME"],
        csrf_header=config["JWT_REFRESH_CSRF_HEADER_NAME"],
    )


def settings(app: Flask | None = None) -> TokenSettings:
    """This app's token settings."""
    return (app or current_app).extensions["trikchi.tokens"]


def _register_loaders() -> None:
    jwt.user_identity_loader(_identity)
    jwt.encode_key_loader(_encode_key)
    jwt.decode_key_loader(_decode_key)
    jwt.token_verification_loader(_claims_verified)
    jwt.unauthorized_loader(_unauthorized)
    jwt.invalid_token_loader(_invalid)
    jwt.expired_token_loader(_expired)
    jwt.token_verification_failed_loader(_claims_refused)
    jwt.user_lookup_error_loader(_session_ended)
    jwt.revoked_token_loader(_session_ended)
    jwt.needs_fresh_token_loader(_needs_fresh_signin)


# --- minting ----------------------------------------------------------------------------------


def issue_token_pair(
    app: Flask,
    user_id: int,
    role: str,
    session_id: str,
    refresh_jti: str,
    refresh_expires_at: datetime,
    now: datetime,
    *,
    auth_time: datetime,
) -> TokenPair:
    """Mint an access token and the refresh token ``refresh_jti`` of session ``session_id``.

    ``auth_time`` is the session's last interactive authentication (SPEC §8), carried
    in the access token as the OpenID Connect claim of that name.
    """
    access, expires_in = _access_token(app, user_id, role, session_id, auth_time)
    refresh_lifetime = refresh_expires_at - now
    csrf = session_csrf_token(app, session_id)
    refresh = create_refresh_token(
        TokenSubject(user_id, settings(app).secret),
        expires_delta=max(refresh_lifetime, _NO_TIME_LEFT),
        additional_claims={"jti": refresh_jti, "sid": session_id, "csrf": csrf},
        additional_headers=_REFRESH_HEADERS,
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        refresh_max_age=max(int(refresh_lifetime.total_seconds()), 0),
        expires_in=expires_in,
        user_id=user_id,
        csrf_token=csrf,
    )


def issue_access_token(
    app: Flask, user_id: int, role: str, session_id: str, now: datetime, *, auth_time: datetime
) -> TokenPair:
    """An access token alone (a re-authentication): the pair carries no refresh token, and
    ``token_response`` leaves the cookies as they are."""
    access, expires_in = _access_token(app, user_id, role, session_id, auth_time)
    return TokenPair(
        access_token=access,
        refresh_token="",
        refresh_max_age=0,
        expires_in=expires_in,
        user_id=user_id,
        csrf_token=session_csrf_token(app, session_id),
    )


def _access_token(
    app: Flask, user_id: int, role: str, session_id: str, auth_time: datetime
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds: HS256 under JWT_SECRET_KEY, or the key
    ring's current key with its kid."""
    config = settings(app)
    claims = {"role": role, "sid": session_id, "auth_time": int(auth_time.timestamp())}
    if not config.asymmetric:
        token = create_access_token(TokenSubject(user_id, config.secret), additional_claims=claims)
        return token, config.access_seconds
    key = ring.key_ring(app).signing_key()
    token = create_access_token(
        TokenSubject(user_id, key.key),
        additional_claims=claims,
        additional_headers={"kid": key.kid, "alg": key.alg},
    )
    return token, config.access_seconds


def _identity(subject: TokenSubject) -> str:
    """flask-jwt-extended's ``user_identity_loader``: ``sub`` is the user id as a string."""
    return str(subject.user_id)


def _encode_key(subject: TokenSubject) -> Any:
    """flask-jwt-extended's ``encode_key_loader``: the key chosen with the token's kid."""
    return subject.key


def session_csrf_token(app: Flask, session_id: str) -> str:
    """The double-submit CSRF value of a session: unpredictable, and the same for each of its tokens.

    Per session rather than per token, so that a tab whose request still carries the
    just-rotated cookie (browsers commit cookies asynchronously across tabs) sends a
    matching header and lands in the reuse grace window instead of a CSRF failure.
    """
    return keyed_digest(app.config["JWT_SECRET_KEY"], "csrf:" + session_id)


# --- verifying --------------------------------------------------------------------------------


def _decode_key(header: dict[str, Any], claims: dict[str, Any]) -> PyJWK:
    """flask-jwt-extended's ``decode_key_loader``: the key that verifies this token, from its
    unverified header and claims, once they are shaped like a trikchi token's (``auth.claims``).

    An access token in an asymmetric mode names a published key of the ring by ``kid``; any
    other token is HS256 under ``JWT_SECRET_KEY``, without kid. The type chooses the key, and
    the signature under that key proves the type.
    """
    token_claims.check_header(header)
    token_claims.check_claims(claims)
    config = settings()
    if claims["type"] == token_claims.ACCESS and config.asymmetric:
        kid = header.get("kid")
        key = ring.key_ring().verification_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidTokenError("not a published key")
        return key.key
    if "kid" in header:
        raise InvalidTokenError("HS256 tokens carry no kid")
    return config.secret


def _claims_verified(_header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """flask-jwt-extended's ``token_verification_loader``: ``iss`` and ``aud`` once the signature holds.

    An access token carries this service's ``iss`` and, when ``JWT_AUDIENCE`` is set, that
    ``aud``. A refresh token may lack ``iss``: those minted before trikchi set it have none, and
    an upgrade must sign nobody out (they are signed with our own secret and live in our
    database; every token minted now carries it). ``aud`` is for the services that read access
    tokens.
    """
    config = settings()
    if claims["type"] == token_claims.ACCESS:
        if claims.get("iss") != config.issuer:
            return False
        return config.audience is None or token_claims.has_audience(claims, config.audience)
    return claims.get("iss", config.issuer) == config.issuer


def refuse_padding(token: str | None) -> None:
    """Refuse a token whose base64url segments are padded with ``=``.

    RFC 7515 §2 base64url has no padding and trikchi never writes any, but PyJWT 2.15 accepts
    it (for AWS ALB tokens: jpadilla/pyjwt#1209, #1211): the same signature spelled another
    way. PyJWT itself refuses every other respelling (other alphabets, unused bits set).
    """
    if token and "=" in token:
        raise DecodeError("padded base64url")


# --- errors -----------------------------------------------------------------------------------


def _refused(message: str, error: ErrorCode) -> Response:
    return handle_app_error(Unauthorized(message, error=error))


def _unauthorized(_reason: str) -> Response:
    """No access token in the Authorization header, or no refresh cookie."""
    return _refused(AUTHENTICATION_REQUIRED, ErrorCode.AUTHENTICATION_REQUIRED)


def _csrf_failed(_error: CSRFError) -> Response:
    """The refresh cookie's double submit: the X-CSRF-TOKEN header missing or not its value."""
    return _refused(CSRF_FAILED, ErrorCode.CSRF_FAILED)


def _invalid(_reason: str) -> Response:
    """Malformed, forged, of the wrong type or key, or lacking a claim."""
    return _refused(TOKEN_INVALID, ErrorCode.TOKEN_INVALID)


def _expired(header: dict[str, Any], claims: dict[str, Any]) -> Response:
    """Expired, and otherwise valid: PyJWT checks the times before the token_verification_loader
    runs, so an expired token of another issuer or audience is refused as invalid here."""
    if not _claims_verified(header, claims):
        return _refused(TOKEN_INVALID, ErrorCode.TOKEN_INVALID)
    return _refused(TOKEN_EXPIRED, ErrorCode.TOKEN_EXPIRED)


def _claims_refused(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
    return _refused(TOKEN_INVALID, ErrorCode.TOKEN_INVALID)


def _session_ended(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
    """The token's session was revoked or has expired, or its user is disabled or gone."""
    return _refused(SESSION_ENDED, ErrorCode.SESSION_ENDED)


def _needs_fresh_signin(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
    return _refused(FRESH_SIGNIN_REQUIRED, ErrorCode.FRESH_SIGNIN_REQUIRED)


# --- cookies ----------------------------------------------------------------------------------


def token_response(pair: TokenPair, status: int = 200) -> Response:
    """JSON body + refresh and CSRF cookies (when the pair has a refresh token), never cached."""
    response = jsonify(pair.body())
    response.status_code = status
    if pair.refresh_token:
        _set_cookies(response, pair)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def set_refresh_cookies(response: Response, pair: TokenPair) -> None:
    """The refresh and CSRF cookies of a new session on a response without the token body (a
    redirect back from a social sign-in, where the frontend then refreshes for its token)."""
    _set_cookies(response, pair)
    response.headers["Cache-Control"] = "no-store"


def _set_cookies(response: Response, pair: TokenPair) -> None:
    """flask-jwt-extended's refresh and CSRF cookies, the refresh cookie last.

    The library writes the refresh cookie first; clients that keep one header per name (wrk's
    Lua API in ``bench/refresh.lua``, some HTTP libraries) would then see only the CSRF cookie,
    whose value is in the body anyway, and not the rotated token.
    """
    set_jwt_refresh_cookies(response, pair.refresh_token, max_age=pair.refresh_max_age)
    refresh = settings().refresh_cookie + "="
    cookies = response.headers.getlist("Set-Cookie")
    response.headers.setlist("Set-Cookie", sorted(cookies, key=lambda cookie: cookie.startswith(refresh)))


def clear_refresh_cookies(response: Response) -> Response:
    """Delete the refresh and CSRF cookies (same Path/SameSite/Secure as when set)."""
    unset_refresh_cookies(response)
    response.headers["Cache-Control"] = "no-store"
    return response
