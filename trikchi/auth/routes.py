"""The ``/auth`` endpoints: thin views over ``auth.services``."""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask_babel import gettext
from flask_jwt_extended.exceptions import CSRFError

from trikchi.auth import guests, limits, services, sessions
from trikchi.auth.devices import set_device_cookie
from trikchi.auth.guards import (
    BEARER,
    TOKEN_REFUSALS,
    access_required,
    account_required,
    current_user,
    current_user_model,
    current_user_record,
    fresh_required,
    guest_of_bearer,
    refresh_claims,
    refresh_cookie_required,
    verify_refresh_cookie,
)
from trikchi.auth.responses import sign_in_response
from trikchi.auth.schemas import (
    GuestSchema,
    LoginSchema,
    MessageSchema,
    MfaRequiredSchema,
    PasswordChangeSchema,
    ReauthenticateSchema,
    RegisterSchema,
    SessionSchema,
    TokenSchema,
    UserSchema,
    user_body,
)
from trikchi.auth.signin import MfaRequired
from trikchi.auth.tokens import clear_refresh_cookies, token_response
from trikchi.captcha import captcha_parameters, require_captcha
from trikchi.http import Blueprint, client_info, document_errors
from trikchi.openapi import SET_REFRESH_COOKIES, refresh_parameters

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Registration, sign-in, sessions.")


@blp.route("/register", methods=["POST"])
@limits.register_attempts
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
@blp.doc(operationId="register", security=[{}, *BEARER], parameters=captcha_parameters())
@document_errors(blp, 400, 401, 403, 409, 413, 415, 429, 503)
def register(args):
    """Create a customer account — or, with a guest's access token, make the guest that customer.

    The email must be unused (case-insensitive; 409 `email_taken`) and not at a throwaway domain
    (422 `disposable_email`, while `BLOCK_DISPOSABLE_EMAILS` is on); the password 8–128
    characters, not a common password, not the email, and — with `PASSWORD_BREACH_CHECK=hibp` —
    not in a known breach (422 `password_breached`; 503 when the check cannot be made and
    `PASSWORD_BREACH_FAIL_CLOSED` is on). The account gets the `customer` role. Does not sign in:
    call login next. While the service has a CAPTCHA, a `captcha_token` is required (403
    `captcha_failed`; 503 `captcha_unavailable` when the provider cannot check it).

    With a guest's access token (`Authorization: Bearer`, from `POST /auth/guest`) the guest
    becomes the customer instead, keeping its id and its sessions: the answer is the user object
    with the guest's id, and the next refresh gives an access token of role `customer`. A taken
    email is 409 `email_taken` and the guest stays as it was; a guest that has become an account
    meanwhile (another tab) is 409 `conflict`. Another account's token changes nothing; a token
    that is sent but refused is 401.
    """
    require_captcha(args["captcha_token"])
    client = client_info()
    guest = guest_of_bearer()
    if guest is not None:
        return services.register_guest(guest.id, args["name"], args["email"], args["password"], client)
    return services.register_user(args["name"], args["email"], args["password"], client)


@blp.route("/guest", methods=["POST"])
@limits.guest_creations
@blp.arguments(GuestSchema)
@blp.response(201, TokenSchema, headers=SET_REFRESH_COOKIES)
@blp.doc(operationId="createGuest", parameters=captcha_parameters())
@document_errors(blp, 400, 403, 413, 415, 429, 503)
def create_guest(args):
    """Start as a guest: a user id for the cart, signed in, before any account (send `{}`).

    The answer is the login body and cookies of a new user of role `guest` (`is_guest: true`, no
    email or phone, name ""): its access tokens say `role: "guest"`, so other services can keep a
    cart and ask for an account before payment. A guest refreshes, signs out and lists its
    sessions like anyone; what needs an account (password, email, phone, second factors,
    passkeys) answers 403 `account_required`. It becomes a customer keeping its id by
    `POST /auth/register` with its access token, or by an OpenID Connect or Telegram sign-in in
    the browser that holds its refresh cookie; when that proves another account, it signs into
    that account and the guest is merged into it (event `guest_merged`). Limited per IP; behind
    the CAPTCHA when the service has one (403 `captcha_failed`, 503 `captcha_unavailable`).
    """
    require_captcha(args["captcha_token"])
    return sign_in_response(guests.create_guest(client_info()), 201)


@blp.route("/login", methods=["POST"])
@limits.login_attempts
@limits.login_failures_per_ip
@limits.login_failures_per_email
@blp.arguments(LoginSchema)
@blp.response(200, {"oneOf": [TokenSchema, MfaRequiredSchema]}, headers=SET_REFRESH_COOKIES)
@blp.doc(operationId="login")
@document_errors(blp, 400, 401, 403, 413, 415, 429)
def login(args):
    """Sign in: the access token in the body, the refresh token in an HttpOnly cookie.

    On success the body carries the access token (send it as `Authorization: Bearer`) and
    `csrf_token`; the refresh token is set as the HttpOnly `refresh_token` cookie, with
    `csrf_refresh_token` beside it. Wrong email and wrong password get the same 401
    `invalid_credentials`; the right password of a banned account gets 403 `account_banned`
    (with `banned_until`). Attempts are rate limited per IP and per account.

    When the account has a second factor on (TOTP), the answer is instead `{"mfa_required": true,
    "mfa_token", "methods"}` with no token and no cookie: send the `mfa_token` with a code to
    `POST /auth/mfa/verify` within 5 minutes.
    """
    result = services.authenticate(args["email"], args["password"], client_info())
    limits.forget_login_failures()
    response = sign_in_response(result)
    if not isinstance(result, MfaRequired):
        set_device_cookie(response, args["email"])
    return response


@blp.route("/refresh_token", methods=["POST"])
@limits.refresh_attempts
@refresh_cookie_required
@blp.response(200, TokenSchema, headers=SET_REFRESH_COOKIES)
@blp.doc(operationId="refreshToken", parameters=refresh_parameters(required=True))
@document_errors(blp, 401, 403, 429)
def refresh_token():
    """Exchange the refresh cookie (single use) for a new access token and cookie.

    Needs the `refresh_token` cookie and the `X-CSRF-TOKEN` header. Each refresh token works once:
    the answer sets its successor. Presenting a used one again revokes the whole session (401
    `refresh_token_reused`), except within a few seconds of its rotation, when it gets the session's
    current token (two tabs refreshing at once). While `SEED_JWT_SECRET` is set, a refresh cookie
    minted by the seed's service is also accepted, once and without the header: it signs in like a
    login (a session, or the second step when TOTP is on; 403 `account_banned` for a banned
    account).
    """
    return token_response(sessions.rotate_refresh_token(refresh_claims(), client_info()))


@blp.route("/logout", methods=["POST"])
@blp.response(200, MessageSchema)
@blp.doc(operationId="logout", parameters=refresh_parameters(required=False))
@document_errors(blp, 401)
def logout():
    """Sign out this device: revoke its session and delete the cookies (idempotent).

    Revokes the session of the refresh cookie (when one is sent, with its `X-CSRF-TOKEN` header) and
    deletes the cookies. Succeeds without a cookie too, so it can always be called.
    """
    claims = None
    if current_app.config["JWT_REFRESH_COOKIE_NAME"] in request.cookies:
        try:
            claims = verify_refresh_cookie()
        except CSRFError:
            raise  # a cross-site request must not end the session: 401, nothing changes
        except TOKEN_REFUSALS:
            claims = None  # expired, forged or already revoked: nothing to revoke
    sessions.logout(claims, client_info())
    return clear_refresh_cookies(jsonify(message=gettext("Signed out.")))


@blp.route("/me", methods=["GET"])
@access_required
@blp.response(200, UserSchema)
@blp.doc(operationId="getMe", security=BEARER)
@document_errors(blp, 401)
def me():
    """The signed-in user.

    Reads the user from the database on every call, so a revoked session or a disabled account is
    refused at once.
    """
    # UserSchema's body built directly (the hottest view); a response passes the schema unchanged.
    return jsonify(user_body(current_user_record()))


@blp.route("/sessions", methods=["GET"])
@access_required
@blp.response(200, SessionSchema(many=True))
@blp.doc(operationId="listSessions", security=BEARER)
@document_errors(blp, 401)
def list_sessions():
    """The caller's live sessions; ``current`` marks the one this token belongs to.

    Every signed-in device of the caller that has not ended, most recently used first.
    """
    current = current_user.session_id
    return [
        {
            "id": s.id,
            "created_at": s.created_at,
            "last_used_at": s.last_used_at,
            "expires_at": s.expires_at,
            "user_agent": s.user_agent,
            "ip": s.ip,
            "current": s.id == current,
        }
        for s in sessions.list_sessions(current_user)
    ]


@blp.route("/sessions/<string:session_id>", methods=["DELETE"])
@access_required
@blp.response(204)
@blp.doc(operationId="deleteSession", security=BEARER)
@document_errors(blp, 401, 404)
def delete_session(session_id):
    """End one of the caller's sessions; its refresh token stops working at once.

    404 when the id is not one of the caller's sessions. Ending the current session also deletes its
    cookies.
    """
    sessions.revoke_session(current_user, session_id, client_info())
    response = current_app.response_class(status=204)
    if current_user.session_id == session_id:
        clear_refresh_cookies(response)
    return response


@blp.route("/logout_all", methods=["POST"])
@access_required
@blp.response(204)
@blp.doc(operationId="logoutAll", security=BEARER)
@document_errors(blp, 401)
def logout_all():
    """Sign out everywhere: revoke every session of the caller and delete the cookies.

    Ends every session of the caller, this one included, and deletes the cookies.
    """
    sessions.logout_all(current_user, client_info(), current_user.session_id)
    return clear_refresh_cookies(current_app.response_class(status=204))


@blp.route("/reauthenticate", methods=["POST"])
@limits.reauthenticate_attempts
@account_required
@blp.arguments(ReauthenticateSchema)
@blp.response(200, TokenSchema)
@blp.doc(operationId="reauthenticate", security=BEARER)
@document_errors(blp, 400, 401, 403, 413, 415, 429)
def reauthenticate(args):
    """Confirm the password (and a TOTP code when TOTP is on): the sign-in becomes fresh (SPEC §8).

    Operations that need a recent sign-in answer 401 `fresh_signin_required` when the session's
    last interactive authentication is older than `FRESH_SIGNIN_SECONDS`; this renews it. Returns
    the login body with a new access token (carrying the new `auth_time`); the refresh cookie is
    left as it is. A wrong password is 401 `invalid_credentials`. When TOTP is on, `code` (a TOTP
    code or a recovery code) is needed too: 422 naming `code` without one, 401 `invalid_mfa_code`
    for a wrong one. A guest, which has no password, gets 403 `account_required`.
    """
    pair = services.reauthenticate(
        current_user_model(), args["password"], client_info(), current_user.session_id, args.get("code")
    )
    return token_response(pair)


@blp.route("/password", methods=["POST"])
@limits.password_attempts
@account_required
@fresh_required
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
@blp.doc(operationId="changePassword", security=BEARER)
@document_errors(blp, 400, 401, 403, 415, 429, 503)
def change_password(args):
    """Change the password; every other session is signed out. Needs a fresh sign-in.

    Needs the current password (422 naming `current_password` when it is wrong). The new one follows
    the registration rules (422 `password_breached` naming `new_password` for a breached one). This
    session stays signed in; every other one ends. A guest gets 403 `account_required`.
    """
    services.change_password(
        current_user_model(),
        args["current_password"],
        args["new_password"],
        client_info(),
        current_user.session_id,
    )
    return current_app.response_class(status=204)
