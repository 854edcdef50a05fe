"""The social sign-in endpoints (SPEC §9): thin views over ``social.oidc``, ``social.telegram``
and ``social.services``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app, redirect, request, url_for
from werkzeug.wrappers import Response

from trikchi.auth import signin
from trikchi.auth.guards import BEARER, access_required, current_user, fresh_required, guest_of_refresh_cookie
from trikchi.auth.responses import sign_in_response
from trikchi.auth.schemas import MfaRequiredSchema, TokenSchema
from trikchi.auth.tokens import set_refresh_cookies
from trikchi.errors import ErrorCode, NotFound, ServiceUnavailable, Unauthorized, ValidationFailed
from trikchi.http import Blueprint, client_info, document_errors
from trikchi.openapi import SET_REFRESH_COOKIES
from trikchi.social import limits, oidc, services, telegram
from trikchi.social.schemas import (
    REDIRECT_REFUSED,
    AuthorizeArgsSchema,
    IdentitySchema,
    ProvidersSchema,
    TelegramLoginSchema,
)

blp = Blueprint(
    "social",
    __name__,
    url_prefix="/auth",
    description="Social sign-in: OpenID Connect, Telegram, identities.",
)

# The callback's query parameters, as a provider sends them (RFC 6749 §4.1.2, RFC 9207's iss).
CALLBACK_PARAMETERS: list[dict[str, Any]] = [
    {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }
    for name, description in (
        ("code", "The authorization code."),
        ("state", "The state of the flow (must match the state cookie)."),
        ("error", "The provider's error, when the person declined or the request was refused."),
        ("iss", "The provider's issuer identifier (RFC 9207)."),
    )
]
REDIRECT_HEADERS = {
    "Location": {"description": "Where the browser goes next.", "schema": {"type": "string"}},
    **SET_REFRESH_COOKIES,
}


def _redirect_uri(provider: str) -> str:
    base = current_app.config["OAUTH_CALLBACK_BASE_URL"]
    path = url_for("social.oauth_callback", provider=provider)
    return base + path if base else url_for("social.oauth_callback", provider=provider, _external=True)


def _frontend(path: str, fragment: str | None = None, **params: str) -> str:
    """FRONTEND_URL + a relative path, with ``params`` added to its query (and ``fragment`` for its own)."""
    parts = urlsplit(path)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return current_app.config["FRONTEND_URL"] + urlunsplit(
        ("", "", parts.path, query, parts.fragment if fragment is None else fragment)
    )


def _state_cookie(response: Response, provider: str, value: str, max_age: int) -> None:
    response.set_cookie(
        oidc.cookie_name(provider),
        value,
        max_age=max_age,
        path=url_for("social.oauth_callback", provider=provider),
        secure=current_app.config["COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",  # sent on the provider's top-level redirect back to us, not on cross-site requests
    )


@blp.route("/providers", methods=["GET"])
@blp.response(200, ProvidersSchema)
@blp.doc(operationId="listSignInProviders")
def list_providers():
    """The social sign-in methods this instance offers, for a frontend's buttons.

    `oidc` lists the providers of `GET /auth/oauth/<provider>/authorize`; `telegram_bot` is the
    bot's username for the Telegram Login widget (null unless `TELEGRAM_BOT_TOKEN` and
    `TELEGRAM_BOT_NAME` are set).
    """
    config = current_app.config
    return {
        "oidc": sorted(config["OAUTH_PROVIDERS"]),
        "telegram_bot": config["TELEGRAM_BOT_NAME"] if config["TELEGRAM_BOT_TOKEN"] else None,
    }


@blp.route("/oauth/<string:provider>/authorize", methods=["GET"])
@limits.social_attempts
@blp.arguments(AuthorizeArgsSchema, location="query")
@blp.response(302, headers={"Location": REDIRECT_HEADERS["Location"]})
@blp.doc(operationId="oauthAuthorize")
@document_errors(blp, 404, 414, 422, 429, 503)
def oauth_authorize(args, provider):
    """Start signing in with an OpenID Connect provider: 302 to its authorization page.

    Open it as a page (a link or `location.assign`), not with fetch. Uses the authorization code
    flow with PKCE (S256); `state` and `nonce` are bound to a short-lived HttpOnly cookie.
    `redirect_to` is where on `FRONTEND_URL` the browser lands afterwards: a relative path only
    (422 otherwise). 404 for a provider not in `OAUTH_PROVIDERS`; 503 when its discovery document
    cannot be read. 414 when the address, `redirect_to` percent-encoded, is longer than the server
    takes (gunicorn: `GUNICORN_LIMIT_REQUEST_LINE`, 4094 bytes by default).
    """
    redirect_to = args["redirect_to"]
    if not oidc.is_safe_redirect(redirect_to):
        field_errors = {"redirect_to": [REDIRECT_REFUSED]}  # not a literal in the call: not a message
        raise ValidationFailed(errors=field_errors)
    if oidc.provider_settings(provider) is None:
        raise NotFound("No such sign-in provider.")
    try:
        url, cookie = oidc.begin(provider, _redirect_uri(provider), redirect_to)
    except oidc.OIDCFailure:
        raise ServiceUnavailable("The sign-in provider does not answer; try again shortly.") from None
    response = redirect(url, code=302)
    _state_cookie(response, provider, cookie, current_app.config["OAUTH_STATE_SECONDS"])
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/oauth/<string:provider>/callback", methods=["GET"])
@limits.social_attempts
@blp.response(302, headers=REDIRECT_HEADERS)
@blp.doc(operationId="oauthCallback", parameters=CALLBACK_PARAMETERS)
@document_errors(blp, 429)
def oauth_callback(provider):
    """The provider sends the browser back here: sign in, then 302 to the frontend.

    Checks `state` against the flow's cookie, exchanges the code (with the PKCE verifier) and
    verifies the ID token (signature from the provider's JWKS, `iss`, `aud`, `exp`, `nonce`), then
    signs in as a password does: the refresh and CSRF cookies are set and the browser goes to
    `FRONTEND_URL` + `redirect_to` + `#csrf_token=<value>`, where the frontend calls
    `POST /auth/refresh_token` (with that value as `X-CSRF-TOKEN`) for its access token (the
    fragment replaces any fragment of `redirect_to`). When the account has TOTP on, no cookie is
    set: the fragment is `#mfa_token=<token>&methods=totp,recovery_code`, and the frontend posts
    the token with a code to `POST /auth/mfa/verify`. A failure signs nobody in and goes to the
    frontend with `?error=` one of `invalid_state`, `provider_denied`, `invalid_request`,
    `token_exchange_failed`, `invalid_id_token`, `provider_unavailable`, `unknown_provider`,
    `account_disabled`, `account_banned` (with `&banned_until=<ISO-8601>` for a timed ban). The
    flow's cookie is cleared either way: a callback works once.

    In a browser that holds a guest's refresh cookie (SPEC §15), a new identity becomes the
    guest's, which turns customer keeping its id; an identity (or verified email) of another
    account signs into that account, and the guest is merged into it (`guest_merged`).
    """
    client = client_info()
    if oidc.provider_settings(provider) is None:  # no flow, and no cookie of that name to clear
        services.record_failure("unknown", "unknown_provider", client)
        return redirect(_frontend("/", error="unknown_provider"), code=302)
    flow = oidc.load_flow(provider, request.cookies.get(oidc.cookie_name(provider)))
    args = {key: value for key, value in request.args.items() if len(value) <= 4096}
    audited = False
    refusal: dict[str, str] = {}
    try:
        profile = oidc.complete(flow, args, _redirect_uri(provider))
        result = services.sign_in(profile, client, guest_id=guest_of_refresh_cookie())
    except oidc.OIDCFailure as failure:
        reason = failure.reason
    except signin.AccountRefused as refused:
        reason, audited = services.refusal_reason(refused), True
        refusal = services.refusal_params(refused)
    else:
        if isinstance(result, signin.MfaRequired):
            # The second step: the token for POST /auth/mfa/verify in the fragment, and no cookie.
            second_step = {"mfa_token": result.mfa_token, "methods": ",".join(result.methods)}
            return _finish(redirect(_frontend(flow.redirect_to, fragment=urlencode(second_step))), provider)
        # The CSRF value goes in the fragment (never sent to a server, removed by the page): a
        # frontend on another host cannot read the csrf_refresh_token cookie, and needs it for
        # its first refresh. It is not a credential: without the HttpOnly cookie it opens nothing.
        fragment = urlencode({"csrf_token": result.csrf_token})
        response = redirect(_frontend(flow.redirect_to, fragment=fragment))
        set_refresh_cookies(response, result)
        return _finish(response, provider)
    if not audited:  # a refused account is audited with its user
        services.record_failure(provider, reason, client)
    # The flow's own redirect_to only when the cookie was ours; the front page otherwise.
    return _finish(
        redirect(_frontend(flow.redirect_to if flow else "/", error=reason, **refusal), code=302), provider
    )


def _finish(response: Response, provider: str) -> Response:
    _state_cookie(response, provider, "", 0)
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/telegram", methods=["POST"])
@limits.social_attempts
@blp.arguments(TelegramLoginSchema)
@blp.response(200, {"oneOf": [TokenSchema, MfaRequiredSchema]}, headers=SET_REFRESH_COOKIES)
@blp.doc(operationId="telegramLogin")
@document_errors(blp, 400, 401, 403, 404, 413, 415, 429)
def telegram_login(args):
    """Sign in with the Telegram Login widget: the login body and cookies.

    Send the widget's user object as it came (`id`, `first_name`, `last_name`, `username`,
    `photo_url`, `auth_date`, `hash`). Its HMAC-SHA256 signature under the bot token is checked
    and `auth_date` must be within `TELEGRAM_AUTH_MAX_AGE_SECONDS`; a payload signs in once. A
    forged, stale or already used payload is 401 `social_login_failed`. 404 when
    `TELEGRAM_BOT_TOKEN` is not set. A new Telegram user gets a new account (without email or
    password). When the account has TOTP on, the answer is the second step, as for a login:
    `{"mfa_required": true, "mfa_token", "methods"}` and no cookie. A banned account is 403
    `account_banned` (with `banned_until`).

    From a browser that holds a guest's refresh cookie, sent with its `X-CSRF-TOKEN` header
    (SPEC §15): a new Telegram user becomes the guest, which turns customer keeping its id; one
    that is another account's signs into it, and the guest is merged into it (`guest_merged`).
    """
    if not current_app.config["TELEGRAM_BOT_TOKEN"]:
        raise NotFound("Telegram sign-in is not configured.")
    client = client_info()
    try:
        profile = telegram.verify(args)
        telegram.claim(args)
        return sign_in_response(services.sign_in(profile, client, guest_id=guest_of_refresh_cookie()))
    except telegram.TelegramFailure as failure:
        services.record_failure(telegram.PROVIDER, failure.reason, client)
    except signin.AccountRefused as refused:
        refused.raise_answer()  # audited with its user; a ban is 403 account_banned
    raise Unauthorized(services.SIGN_IN_FAILED, error=ErrorCode.SOCIAL_LOGIN_FAILED)


@blp.route("/identities", methods=["GET"])
@access_required
@blp.response(200, IdentitySchema(many=True))
@blp.doc(operationId="listIdentities", security=BEARER)
@document_errors(blp, 401)
def list_identities():
    """The caller's linked sign-in identities (OpenID Connect providers, Telegram).

    Oldest first; `email` is the address the provider gave when the identity was linked.
    """
    return services.list_identities(current_user.id)


@blp.route("/identities/<int:identity_id>", methods=["DELETE"])
@limits.identity_changes
@fresh_required
@blp.response(204)
@blp.doc(operationId="deleteIdentity", security=BEARER)
@document_errors(blp, 401, 404, 409, 429)
def delete_identity(identity_id):
    """Unlink one of the caller's identities. Needs a fresh sign-in.

    404 when the id is not one of the caller's identities; 409 `last_sign_in_method` when it is
    the last way to sign in (no password and no other identity).
    """
    services.unlink_identity(current_user.id, identity_id, client_info(), current_user.session_id)
    return current_app.response_class(status=204)
