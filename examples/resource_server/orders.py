"""orders: a service of the trikchi.uz shop that trusts trikchi's access tokens on its own.

No call to trikchi per request and no shared secret: the public keys come from trikchi's
JWKS, found through OpenID discovery from ``TRIKCHI_ISSUER`` (or named by
``TRIKCHI_JWKS_URL``) and cached by PyJWT's ``PyJWKClient``. A token is accepted when

* its header names a published key (``kid``) and that key's algorithm, one of ES256, EdDSA,
  RS256 (HS256, ``none`` and key-locating headers such as ``jku``/``jwk``/``x5u``/``x5c`` are
  refused before any network call; those headers are never followed);
* the signature verifies with that key, and ``exp``/``iat``/``iss``/``sub``/``type`` are
  present, ``exp``/``nbf``/``iat`` hold, ``iss`` is ``TRIKCHI_ISSUER``, ``aud`` is
  ``TRIKCHI_AUDIENCE`` (when set; a token with an ``aud`` is refused without it), and
  ``type`` is ``"access"``.

Run it (beside a trikchi whose ``JWT_ISSUER`` is its public URL)::

    TRIKCHI_ISSUER=http://127.0.0.1:5000 TRIKCHI_AUDIENCE=trikchi.uz \\
        flask --app orders run --port 5001
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from collections.abc import Callable, Mapping
from functools import wraps
from http import HTTPStatus
from typing import Any
from urllib.parse import urlparse

import jwt
from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# The algorithms trikchi signs access tokens with; each key verifies exactly one of them.
ALGORITHMS = ("ES256", "EdDSA", "RS256")
REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub", "type"]
# Headers that tell a verifier where to fetch or find a key: trikchi never sets them.
KEY_LOCATING_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"})

# Fake data: the orders of each trikchi user id (the token's ``sub``).
DEMO_ORDERS: dict[str, list[dict[str, Any]]] = {
    "1": [
        {"id": "A-1001", "status": "delivered", "total": "249000.00", "currency": "UZS"},
        {"id": "A-1002", "status": "shipped", "total": "89000.00", "currency": "UZS"},
    ],
    "2": [{"id": "B-2001", "status": "paid", "total": "1250000.00", "currency": "UZS"}],
}


class TokenRefused(Exception):
    """The request does not carry an acceptable access token (401)."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


class KeysUnavailable(Exception):
    """trikchi's discovery document or JWKS cannot be fetched (503): not the caller's fault."""


def _fetch_json(url: str, timeout: float) -> Any:
    if urlparse(url).scheme not in ("http", "https"):
        raise KeysUnavailable(f"not an http(s) URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only
            return json.load(response)
    except (OSError, ValueError) as error:
        raise KeysUnavailable(f"cannot fetch {url}: {error}") from error


class TokenVerifier:
    """Verifies trikchi access tokens against trikchi's published keys.

    ``PyJWKClient`` caches the whole JWKS for ``cache_seconds`` (trikchi's
    ``JWKS_MAX_AGE_SECONDS``, 600 by default) and refetches it once when a token names a
    kid it does not know (a key rotated in since), at most every ``refetch_cooldown_seconds``
    (so tokens with made-up kids cannot make it hammer trikchi). The per-kid cache of
    ``PyJWKClient`` (``cache_keys``) stays off: it never expires, so a retired key would
    be trusted for the life of the process.
    """

    def __init__(
        self,
        issuer: str,
        audience: str | None = None,
        jwks_url: str | None = None,
        cache_seconds: float = 600,
        refetch_cooldown_seconds: float = 5,
        leeway_seconds: float = 5,
        timeout_seconds: float = 5,
    ) -> None:
        if not issuer:
            raise ValueError("TRIKCHI_ISSUER must be set: every token's iss is checked against it")
        self.issuer = issuer
        self.audience = audience or None
        self.jwks_url = jwks_url or None
        self.cache_seconds = cache_seconds
        self.refetch_cooldown_seconds = refetch_cooldown_seconds
        self.leeway_seconds = leeway_seconds
        self.timeout_seconds = timeout_seconds
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def jwks_client(self) -> jwt.PyJWKClient:
        """The JWKS client, made at the first token (so orders may start before trikchi)."""
        with self._lock:
            if self._client is None:
                self._client = jwt.PyJWKClient(
                    self.jwks_url or self._discover(),
                    lifespan=self.cache_seconds,
                    cooldown_duration=self.refetch_cooldown_seconds,
                    timeout=self.timeout_seconds,
                )
            return self._client

    def _discover(self) -> str:
        """The ``jwks_uri`` of the issuer's discovery document (whose ``issuer`` must be ours)."""
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = _fetch_json(url, self.timeout_seconds)
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise KeysUnavailable(f"{url} names another issuer than TRIKCHI_ISSUER={self.issuer}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or urlparse(jwks_uri).scheme not in ("http", "https"):
            raise KeysUnavailable(f"{url} has no http(s) jwks_uri")
        return jwks_uri

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token; ``TokenRefused`` or ``KeysUnavailable`` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("token_invalid", "The token is malformed.") from None
        # Decided on the header alone, before any network call.
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS or not isinstance(kid, str) or not kid:
            raise TokenRefused("token_invalid", "The token is not signed with a published key.")
        if KEY_LOCATING_HEADERS.intersection(header) or "crit" in header:
            raise TokenRefused("token_invalid", "The token carries a header that is never honoured.")
        try:
            key = self.jwks_client().get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as error:
            raise KeysUnavailable(str(error)) from error
        except jwt.PyJWKClientError:
            raise TokenRefused("token_invalid", "The token is not signed with a published key.") from None
        if key.algorithm_name not in ALGORITHMS or key.algorithm_name != alg:
            raise TokenRefused("token_invalid", "The token's algorithm is not its key's.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token_expired", "The token has expired; refresh it at trikchi.") from None
        except jwt.PyJWTError:
            raise TokenRefused("token_invalid", "The token is invalid.") from None
        if claims["type"] != "access" or not isinstance(claims["sub"], str) or not claims["sub"]:
            raise TokenRefused("token_invalid", "Not an access token.")
        return claims


def require_access_token(view: Callable[..., Any]) -> Callable[..., Any]:
    """Verify the ``Authorization: Bearer`` token; the claims are in ``g.claims``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRefused("authentication_required", "Send an access token: Authorization: Bearer ….")
        g.claims = current_app.extensions["orders.verifier"].verify(token.strip())
        return view(*args, **kwargs)

    return wrapper


def error_response(
    status: int, error: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """trikchi's error shape: ``{code, status, error, message}``."""
    response = jsonify(code=status, status=HTTPStatus(status).phrase, error=error, message=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _refused(error: TokenRefused) -> Response:
    # RFC 6750 §3: no error attribute when no token was sent.
    challenge = 'Bearer realm="orders"'
    if error.error != "authentication_required":
        challenge += ', error="invalid_token"'
    return error_response(401, error.error, error.message, {"WWW-Authenticate": challenge})


def _unavailable(error: KeysUnavailable) -> Response:
    log.error("trikchi's keys are unavailable: %s", error)
    message = "The keys that verify tokens cannot be fetched; try again shortly."
    return error_response(503, "service_unavailable", message, {"Retry-After": "5"})


def _http_error(error: HTTPException) -> Response:
    code = error.code or 500
    return error_response(code, error.name.lower().replace(" ", "_"), error.description or error.name)


def _settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
    def setting(name: str, default: Any = None) -> Any:
        return overrides[name] if name in overrides else os.environ.get(name) or default

    return {
        "issuer": setting("TRIKCHI_ISSUER"),
        "audience": setting("TRIKCHI_AUDIENCE"),
        "jwks_url": setting("TRIKCHI_JWKS_URL"),
        "cache_seconds": float(setting("TRIKCHI_JWKS_CACHE_SECONDS", 600)),
        "refetch_cooldown_seconds": float(setting("TRIKCHI_JWKS_REFETCH_COOLDOWN_SECONDS", 5)),
        "leeway_seconds": float(setting("TRIKCHI_LEEWAY_SECONDS", 5)),
    }


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The orders service; settings from the environment, ``config`` overrides them."""
    config = config or {}
    app = Flask(__name__)
    app.config["ORDERS"] = config.get("ORDERS", DEMO_ORDERS)
    app.extensions["orders.verifier"] = TokenVerifier(**_settings(config))
    app.register_error_handler(TokenRefused, _refused)
    app.register_error_handler(KeysUnavailable, _unavailable)
    app.register_error_handler(HTTPException, _http_error)

    @app.get("/orders")
    @require_access_token
    def list_orders() -> Response:
        """The caller's orders (``sub`` of the token is the trikchi user id)."""
        user_id = g.claims["sub"]
        return jsonify(user_id=user_id, orders=app.config["ORDERS"].get(user_id, []))

    return app
