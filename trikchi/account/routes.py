"""Self-service endpoints (SPEC §5, §10): email verification, password reset, ``PATCH``/``DELETE
/auth/me``, the email change: thin views over ``account.services`` and ``account.profile``."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext

from trikchi.account import profile, services
from trikchi.auth import limits
from trikchi.auth.devices import clear_device_cookie
from trikchi.auth.guards import (
    BEARER,
    access_required,
    account_required,
    current_user,
    current_user_model,
    fresh_required,
)
from trikchi.auth.schemas import (
    EmailChangeSchema,
    LinkTokenSchema,
    MessageSchema,
    PasswordResetRequestSchema,
    PasswordResetSchema,
    ProfileUpdateSchema,
    UserSchema,
)
from trikchi.auth.tokens import clear_refresh_cookies
from trikchi.captcha import captcha_parameters, require_captcha
from trikchi.http import Blueprint, client_info, document_errors

blp = Blueprint(
    "profile", __name__, url_prefix="/auth", description="Self-service: profile, email change, deletion."
)


@blp.route("/me", methods=["PATCH"])
@access_required
@blp.arguments(ProfileUpdateSchema)
@blp.response(200, UserSchema)
@blp.doc(operationId="updateMe", security=BEARER)
@document_errors(blp, 400, 401, 413, 415)
def update_me(args):
    """Change the name and/or the language of mails and messages.

    `locale` is `uz` (Uzbek, Latin script), `ru` or `en`; `null` lets the browser's
    `Accept-Language` choose again. Fields left out stay as they are.
    """
    return profile.update_profile(current_user_model(), client_info(), current_user.session_id, **args)


@blp.route("/me", methods=["DELETE"])
@limits.account_deletions
@fresh_required
@blp.response(204)
@blp.doc(operationId="deleteMe", security=BEARER)
@document_errors(blp, 401, 409, 429)
def delete_me():
    """Delete the account and its personal data; every session ends. Needs a fresh sign-in.

    The cookies are deleted and a last mail confirms the deletion. The audit events stay,
    without the account's email, name, IP addresses or user agents; the address can register
    again. The last active admin cannot delete itself (409 `last_admin`).
    """
    profile.delete_account(current_user_model(), client_info())
    response = clear_refresh_cookies(current_app.response_class(status=204))
    clear_device_cookie(response)
    return response


@blp.route("/email", methods=["POST"])
@limits.email_change_requests
@account_required
@fresh_required
@blp.arguments(EmailChangeSchema)
@blp.response(202, MessageSchema)
@blp.doc(operationId="requestEmailChange", security=BEARER)
@document_errors(blp, 400, 401, 403, 413, 415, 429)
def request_email_change(args):
    """Mail a confirmation link to the new address and a notice to the current one.

    Needs a fresh sign-in. The email changes only when the link (valid `EMAIL_CHANGE_HOURS`,
    `{FRONTEND_URL}/confirm-email?token=`) is used with `POST /auth/email/confirm`. The answer
    does not say whether the new address is registered already. An address at a throwaway domain
    is 422 `disposable_email` (while `BLOCK_DISPOSABLE_EMAILS` is on).
    """
    profile.request_email_change(
        current_user_model(), args["new_email"], client_info(), current_user.session_id
    )
    return {"message": gettext("A confirmation link is on its way to the new address.")}


@blp.route("/email/confirm", methods=["POST"])
@limits.email_change_requests
@blp.arguments(LinkTokenSchema)
@blp.response(200, UserSchema)
@blp.doc(operationId="confirmEmailChange")
@document_errors(blp, 400, 401, 409, 413, 415, 429)
def confirm_email_change(args):
    """Switch to the new address with the token from the mailed link; it becomes verified.

    401 `invalid_link` for an invalid, expired or spent link (it dies when the email changes);
    409 `email_taken` when another account has registered the address in the meantime.
    """
    return profile.confirm_email_change(args["token"], client_info())


@blp.route("/verify_email/request", methods=["POST"])
@access_required
@limits.verify_email_requests
@blp.response(202, MessageSchema)
@blp.doc(operationId="requestEmailVerification", security=BEARER)
@document_errors(blp, 401, 429)
def request_email_verification():
    """Mail a single-use verification link to the signed-in user's address.

    The link is valid for `EMAIL_VERIFY_HOURS` and only for the current address. Nothing is sent
    when the address is already verified.
    """
    services.request_email_verification(current_user_model(), client_info())
    return {"message": gettext("If the address is not verified yet, a link is on its way.")}


@blp.route("/verify_email", methods=["POST"])
@limits.verify_email_requests
@blp.arguments(LinkTokenSchema)
@blp.response(200, UserSchema)
@blp.doc(operationId="verifyEmail")
@document_errors(blp, 400, 401, 413, 415, 429)
def verify_email(args):
    """Confirm the address with the token from the mailed link.

    The token comes from the mailed link. It works once, and not after the email has changed (401
    `invalid_link`).
    """
    return services.verify_email(args["token"], client_info())


@blp.route("/password_reset/request", methods=["POST"])
@limits.password_reset_requests
@limits.password_reset_requests_per_email
@blp.arguments(PasswordResetRequestSchema)
@blp.response(202, MessageSchema)
@blp.doc(operationId="requestPasswordReset", parameters=captcha_parameters())
@document_errors(blp, 400, 403, 413, 415, 429, 503)
def request_password_reset(args):
    """Mail a reset link; the answer is the same whether or not the address exists.

    Answers 202 whether or not an account exists for the address, in the same time, so the answer
    tells nothing about who has an account. While the service has a CAPTCHA, a `captcha_token` is
    required (403 `captcha_failed`; 503 `captcha_unavailable` when the provider cannot check it).
    """
    require_captcha(args["captcha_token"])
    services.request_password_reset(args["email"], client_info())
    return {"message": gettext("If an account exists for this address, a reset link is on its way.")}


@blp.route("/password_reset", methods=["POST"])
@limits.password_reset_requests
@blp.arguments(PasswordResetSchema)
@blp.response(204)
@blp.doc(operationId="resetPassword")
@document_errors(blp, 400, 401, 413, 415, 429, 503)
def reset_password(args):
    """Set a new password with the token from the mailed link; every session ends.

    The token comes from the mailed link and works once (it dies when the password changes). Every
    session of the account ends. The new password follows the registration rules (422
    `password_breached` naming `new_password` for a breached one).
    """
    services.reset_password(args["token"], args["new_password"], client_info())
    return current_app.response_class(status=204)
