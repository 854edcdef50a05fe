"""OpenID Connect sign-in with Authlib: discovery, authorization code + PKCE (S256), ID token checks.

The flow state (``state``, ``nonce``, the PKCE verifier and where to go afterwards) is not
kept in a server-side session — trikchi has none — but in a short-lived cookie signed with
``SECRET_KEY``, HttpOnly, scoped to the provider's callback path. The callback accepts a
``state`` only when it equals the cookie's, and the cookie is cleared by every callback
answer: a replayed callback finds no flow (and the provider refuses a used code anyway).

The ID token is verified as OpenID Connect Core §3.1.3.7 says: its signature with a key of
the provider's JWKS (algorithms from its metadata, never ``none`` or a shared secret),
``iss`` equal to the discovered issuer, ``aud`` containing our client id (``azp`` when
several), ``exp``/``iat`` with a small leeway, ``nonce`` equal to the cookie's, ``at_hash``.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from trikchi.social.profile import ProviderProfile, clean_email, clean_name

STATE_SALT = "trikchi.oauth-state"
COOKIE_PREFIX = "trikchi_oauth_"
# Asymmetric signatures only: "none" is never acceptable, HS* would make the client secret a key.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
ID_TOKEN_LEEWAY_SECONDS = 60
MAX_REDIRECT_TO = 2000


class OIDCFailure(Exception):
    """A sign-in that cannot complete; ``reason`` is the ``error`` the frontend receives."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FlowState:
    """What the callback needs from the authorize step."""

    provider: str
    state: str
    nonce: str
    verifier: str
    redirect_to: str


def provider_settings(name: str) -> dict[str, Any] | None:
    """The configured provider called ``name`` (``OAUTH_PROVIDERS``), or None."""
    return current_app.config["OAUTH_PROVIDERS"].get(name)


def is_safe_redirect(path: str) -> bool:
    """A path on the frontend only: ``/…`` without a scheme, host, backslash or control character."""
    if not path.startswith("/") or path.startswith("//") or len(path) > MAX_REDIRECT_TO:
        return False
    if "\\" in path or any(ord(char) < 0x21 or 0x7F <= ord(char) <= 0x9F for char in path):
        return False
    parts = urlsplit(path)
    return not parts.scheme and not parts.netloc


# Provider metadata and keys, per discovery URL, for OAUTH_METADATA_MAX_AGE_SECONDS.
_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = requests.get(
            url,
            timeout=current_app.config["OAUTH_HTTP_TIMEOUT_SECONDS"],
            headers={"Accept": "application/json"},
        )
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError):
        raise OIDCFailure("provider_unavailable") from None
    if not isinstance(data, dict):
        raise OIDCFailure("provider_unavailable")
    return data


def _cached(key: str, load: Any, force: bool = False) -> dict[str, Any]:
    max_age = current_app.config["OAUTH_METADATA_MAX_AGE_SECONDS"]
    now = time.monotonic()
    with _cache_lock:
        entry = _cache.get(key)
    if entry is not None and not force and now - entry[0] < max_age:
        return entry[1]
    value = load()
    with _cache_lock:
        _cache[key] = (now, value)
    return value


def metadata(settings: dict[str, Any]) -> dict[str, Any]:
    """The provider's discovery document (cached); it must name the endpoints we use."""
    url = settings["discovery_url"]

    def load() -> dict[str, Any]:
        data = _get_json(url)
        for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(data.get(field), str) or not data[field]:
                raise OIDCFailure("provider_unavailable")
        return data

    return _cached("metadata:" + url, load)


def _key_set(meta: dict[str, Any], force: bool = False) -> KeySet:
    uri = meta["jwks_uri"]
    jwks = _cached("jwks:" + uri, lambda: _get_json(uri), force=force)
    try:
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise OIDCFailure("provider_unavailable") from None


def _client(settings: dict[str, Any], redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        client_id=settings["client_id"],
        client_secret=settings["client_secret"],
        scope=settings["scopes"],
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if settings["client_secret"] else "none",
    )


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=STATE_SALT)


def cookie_name(provider: str) -> str:
    """The state cookie of ``provider``'s flow."""
    return COOKIE_PREFIX + provider


def begin(provider: str, redirect_uri: str, redirect_to: str) -> tuple[str, str]:
    """The provider's authorization URL and the signed state cookie value that goes with it."""
    settings = provider_settings(provider)
    if settings is None:
        raise OIDCFailure("unknown_provider")
    meta = metadata(settings)
    flow = FlowState(
        provider=provider,
        state=generate_token(32),
        nonce=generate_token(32),
        verifier=generate_token(64),
        redirect_to=redirect_to,
    )
    with _client(settings, redirect_uri) as client:
        url, _state = client.create_authorization_url(
            meta["authorization_endpoint"], state=flow.state, nonce=flow.nonce, code_verifier=flow.verifier
        )
    cookie = _serializer().dumps(
        {"p": flow.provider, "s": flow.state, "n": flow.nonce, "v": flow.verifier, "r": flow.redirect_to}
    )
    return url, cookie


def load_flow(provider: str, cookie: str | None) -> FlowState | None:
    """The flow of the state cookie if it is ours, recent and for ``provider``; else None."""
    if not cookie:
        return None
    try:
        data = _serializer().loads(cookie, max_age=current_app.config["OAUTH_STATE_SECONDS"])
    except BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or data.get("p") != provider:
        return None
    values = [data.get(key) for key in ("s", "n", "v", "r")]
    if not all(isinstance(value, str) and value for value in values):
        return None
    state, nonce, verifier, redirect_to = values
    if not is_safe_redirect(redirect_to):
        return None
    return FlowState(provider, state, nonce, verifier, redirect_to)


def complete(flow: FlowState | None, args: dict[str, str], redirect_uri: str) -> ProviderProfile:
    """Check the callback against the flow, exchange the code (PKCE verifier), verify the ID token."""
    state = args.get("state")
    if (
        flow is None
        or not isinstance(state, str)
        or not hmac.compare_digest(state.encode(), flow.state.encode())
    ):
        raise OIDCFailure("invalid_state")
    if args.get("error"):
        raise OIDCFailure("provider_denied")
    code = args.get("code")
    if not code:
        raise OIDCFailure("invalid_request")
    settings = provider_settings(flow.provider)
    if settings is None:
        raise OIDCFailure("unknown_provider")
    meta = metadata(settings)
    try:
        with _client(settings, redirect_uri) as client:
            token = client.fetch_token(
                meta["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=flow.verifier,
                timeout=current_app.config["OAUTH_HTTP_TIMEOUT_SECONDS"],
            )
    except Exception:  # noqa: BLE001 - any failure of the exchange (HTTP, OAuth error, bad JSON) is one answer
        raise OIDCFailure("token_exchange_failed") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OIDCFailure("invalid_id_token")
    claims = verify_id_token(settings, meta, id_token, flow.nonce, token.get("access_token"))
    return _profile(flow.provider, claims)


def verify_id_token(
    settings: dict[str, Any], meta: dict[str, Any], id_token: str, nonce: str, access_token: Any
) -> dict[str, Any]:
    """The ID token's claims after every check of OpenID Connect Core §3.1.3.7; else ``OIDCFailure``."""
    advertised = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in advertised if alg in ALLOWED_ALGORITHMS]
    try:
        try:
            decoded = jwt.decode(id_token, _key_set(meta), algorithms=algorithms)
        except InvalidKeyIdError:  # the provider rotated its keys since we fetched them
            decoded = jwt.decode(id_token, _key_set(meta, force=True), algorithms=algorithms)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": meta["issuer"]},
                "aud": {"essential": True, "value": settings["client_id"]},
                "sub": {"essential": True},
            },
            {
                "nonce": nonce,
                "client_id": settings["client_id"],
                "access_token": access_token if isinstance(access_token, str) else None,
            },
        )
        claims.validate(leeway=ID_TOKEN_LEEWAY_SECONDS)
    except (JoseError, ValueError, TypeError, KeyError):
        raise OIDCFailure("invalid_id_token") from None
    if not isinstance(claims.get("sub"), str) or not 0 < len(claims["sub"]) <= 255:
        raise OIDCFailure("invalid_id_token")
    return dict(claims)


def _profile(provider: str, claims: dict[str, Any]) -> ProviderProfile:
    email = clean_email(claims.get("email"))
    verified = claims.get("email_verified")
    return ProviderProfile(
        provider=provider,
        subject=claims["sub"],
        method=f"oidc:{provider}",
        name=clean_name(
            claims.get("name"),
            claims.get("given_name"),
            claims.get("preferred_username"),
            email.split("@")[0] if email else None,
            default=provider.capitalize() + " user",
        ),
        email=email,
        # Some providers send the string "true".
        email_verified=email is not None and (verified is True or verified == "true"),
    )
