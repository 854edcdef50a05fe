"""Tokens: minting and verification, and the refresh cookies (flask-jwt-extended's settings).

Each kind gets its own algorithm: access tokens HS256 under ``JWT_SECRET_KEY`` or
signed with the current key of the key set (``kid`` in the header), refresh tokens
always HS256 — only trikchi reads them. Both are signed and verified in one pass
(``auth.jws``, PyJWT's algorithms), with the algorithm chosen here and never by
the token: ``verify_access_token`` for the guards, ``verify_refresh_token`` for the
refresh cookie (whose CSRF double submit the guard checks).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, jsonify
from flask_jwt_extended import unset_refresh_cookies
from flask_jwt_extended.config import config as jwt_config
from werkzeug.http import dump_cookie

from trikchi.auth import claims as token_claims
from trikchi.auth import jws
from trikchi.auth.digests import keyed_digest
from trikchi.errors import ErrorCode, Unauthorized
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
    access, expires_in = _access_token(app, user_id, role, session_id, now, auth_time)
    refresh_lifetime = refresh_expires_at - now
    csrf = session_csrf_token(app, session_id)
    refresh = jws.sign(
        _claims(app, user_id, token_claims.REFRESH, refresh_jti, now, refresh_lifetime)
        | {"sid": session_id, "csrf": csrf},
        "HS256",
        jws.hmac_key(app.config["JWT_SECRET_KEY"]),
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
    access, expires_in = _access_token(app, user_id, role, session_id, now, auth_time)
    return TokenPair(
        access_token=access,
        refresh_token="",
        refresh_max_age=0,
        expires_in=expires_in,
        user_id=user_id,
        csrf_token=session_csrf_token(app, session_id),
    )


def _access_token(
    app: Flask, user_id: int, role: str, session_id: str, now: datetime, auth_time: datetime
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    lifetime = app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    claims = _claims(app, user_id, token_claims.ACCESS, str(uuid.uuid4()), now, lifetime) | {
        "role": role,
        "sid": session_id,
        "auth_time": int(auth_time.timestamp()),
    }
    return _encode_access(app, claims), int(lifetime.total_seconds())


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
        return jws.sign(claims, "HS256", jws.hmac_key(app.config["JWT_SECRET_KEY"]))
    key = ring.key_ring(app).signing_key()
    return jws.sign(claims, key.alg, key.key, kid=key.kid)


def session_csrf_token(app: Flask, session_id: str) -> str:
    """The double-submit CSRF value of a session: unpredictable, and the same for each of its tokens.

    Per session rather than per token, so that a tab whose request still carries the
    just-rotated cookie (browsers commit cookies asynchronously across tabs) sends a
    matching header and lands in the reuse grace window instead of a CSRF failure.
    """
    return keyed_digest(app.config["JWT_SECRET_KEY"], "csrf:" + session_id)


def token_response(pair: TokenPair, status: int = 200) -> Response:
    """JSON body + refresh and CSRF cookies (when the pair has a refresh token), never cached."""
    response = jsonify(pair.body())
    response.status_code = status
    if pair.refresh_token:
        _set_refresh_cookies(response, pair)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _set_refresh_cookies(response: Response, pair: TokenPair) -> None:
    """The CSRF cookie, then the HttpOnly refresh cookie, as flask-jwt-extended's settings say.

    flask-jwt-extended's ``set_refresh_cookies`` decodes the token it was just given to
    find its CSRF value (a sixth of a refresh); we know it. The refresh cookie comes
    last: clients that keep one header per name (wrk's Lua API, some HTTP libraries)
    still see the rotated token, and the CSRF value is in the body anyway. The settings
    are the ``JWT_*`` keys flask-jwt-extended's own config reads, looked up once here, and
    each cookie is werkzeug's ``dump_cookie`` as ``Response.set_cookie`` writes it (with
    Flask's ``MAX_COOKIE_SIZE``): its proxies and layers were a third of setting the two.
    """
    config = current_app.config
    common = {
        "max_age": pair.refresh_max_age or jwt_config.cookie_max_age,
        "secure": config["JWT_COOKIE_SECURE"],
        "domain": config["JWT_COOKIE_DOMAIN"],
        "samesite": config["JWT_COOKIE_SAMESITE"],
        "max_size": config["MAX_COOKIE_SIZE"],
    }
    csrf_cookie = dump_cookie(
        config["JWT_REFRESH_CSRF_COOKIE_NAME"],
        pair.csrf_token,
        httponly=False,
        path=config["JWT_REFRESH_CSRF_COOKIE_PATH"],
        **common,
    )
    refresh_cookie = dump_cookie(
        config["JWT_REFRESH_COOKIE_NAME"],
        pair.refresh_token,
        httponly=True,
        path=config["JWT_REFRESH_COOKIE_PATH"],
        **common,
    )
    response.headers.add("Set-Cookie", csrf_cookie)
    response.headers.add("Set-Cookie", refresh_cookie)


def set_refresh_cookies(response: Response, pair: TokenPair) -> None:
    """The refresh and CSRF cookies of a new session on a response without the token body (a
    redirect back from a social sign-in, where the frontend then refreshes for its token)."""
    _set_refresh_cookies(response, pair)
    response.headers["Cache-Control"] = "no-store"


def clear_refresh_cookies(response: Response) -> Response:
    """Delete the refresh and CSRF cookies (same Path/SameSite/Secure as when set)."""
    unset_refresh_cookies(response)
    response.headers["Cache-Control"] = "no-store"
    return response


def verify_access_token(token: str) -> dict[str, Any]:
    """The verified claims of an access token, or ``Unauthorized`` saying why not.

    One pass (``auth.jws``): the header is read once to pick the key and pin its
    algorithm, the signature is checked, then the claims' shapes and values —
    ``exp``, ``nbf``, ``iat`` (with ``JWT_DECODE_LEEWAY``), ``iss`` and ``aud``.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    config = app.config
    with _refused_as_unauthorized():
        segments = jws.split(token)
        header = jws.header_of(segments)
        token_claims.check_header(header)
        alg, key = _access_key(app, header)
        _header, claims = jws.verify(segments, alg, key, header)
        token_claims.check_claims(claims)  # shapes first: a mistyped exp is invalid, not expired
        if claims["type"] != token_claims.ACCESS or claims.get("iss") != config["JWT_ISSUER"]:
            raise jws.TokenError("not an access token of this issuer")
        if config["JWT_AUDIENCE"]:
            token_claims.check_audience(claims, config["JWT_AUDIENCE"])
        token_claims.check_times(claims, time.time(), config["JWT_DECODE_LEEWAY"])
    return claims


def verify_refresh_token(token: str) -> dict[str, Any]:
    """The verified claims of a refresh token, or ``Unauthorized`` saying why not.

    HS256 under ``JWT_SECRET_KEY`` in every mode, without ``kid``. ``iss`` may be absent:
    refresh tokens minted before trikchi set it have none, and an upgrade must sign
    nobody out (they are signed with our own secret and live in our database; every
    token minted now carries it). ``aud`` is for the services that read access tokens.
    """
    config = current_app.config
    with _refused_as_unauthorized():
        header, claims = jws.verify(token, "HS256", jws.hmac_key(config["JWT_SECRET_KEY"]))
        token_claims.check_header(header)
        if "kid" in header:
            raise jws.TokenError("refresh tokens have no kid")
        token_claims.check_claims(claims)
        if claims["type"] != token_claims.REFRESH:
            raise jws.TokenError("not a refresh token")
        if claims.get("iss", config["JWT_ISSUER"]) != config["JWT_ISSUER"]:
            raise jws.TokenError("foreign issuer")
        token_claims.check_times(claims, time.time(), config["JWT_DECODE_LEEWAY"])
    return claims


@contextmanager
def _refused_as_unauthorized() -> Iterator[None]:
    """A token refused by ``auth.jws`` or ``auth.claims`` is 401 ``token_expired`` or ``token_invalid``."""
    try:
        yield
    except token_claims.ExpiredToken:
        raise Unauthorized("The token has expired.", error=ErrorCode.TOKEN_EXPIRED) from None
    except jws.TokenError:
        raise Unauthorized("The token is invalid.", error=ErrorCode.TOKEN_INVALID) from None


def _access_key(app: Flask, header: dict) -> tuple[str, Any]:
    """The algorithm and key that verify an access token with this header.

    In an asymmetric mode the token must name a published key and use exactly that
    key's algorithm (an HS256 token, even one "signed" with a public key, is refused);
    in HS256 mode it is HS256 under ``JWT_SECRET_KEY``, without kid.
    """
    alg = header.get("alg")
    if "kid" in header:
        kid = header["kid"]
        if not ring.is_asymmetric(app) or not isinstance(kid, str) or alg not in ASYMMETRIC_ALGORITHMS:
            raise jws.TokenError("unexpected kid")
        key = ring.key_ring(app).verification_key(kid)
        if key is None or key.alg != alg:
            raise jws.TokenError("unknown kid or algorithm")
        return key.alg, key.key
    if alg != "HS256" or ring.is_asymmetric(app):
        raise jws.TokenError("unexpected algorithm")
    return "HS256", jws.hmac_key(app.config["JWT_SECRET_KEY"])


def configure_jwt(app: Flask) -> None:
    """Warn about an issuer other services cannot find keys from."""
    if ring.is_asymmetric(app) and app.config["JWT_ISSUER"] == "trikchi":
        app.logger.warning(
            "JWT_ISSUER is the default 'trikchi': set it to this service's public URL so that"
            " other services find the keys from the issuer"
        )
