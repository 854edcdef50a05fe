"""Self-service endpoints (SPEC §10): ``PATCH``/``DELETE /auth/me``, the email change."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext

from trikchi.auth import limits, profile
from trikchi.auth.devices import clear_device_cookie
from trikchi.auth.guards import BEARER, access_required, current_user, current_user_model, fresh_required
from trikchi.auth.schemas import (
    EmailChangeSchema,
    LinkTokenSchema,
    MessageSchema,
    ProfileUpdateSchema,
    UserSchema,
)
from trikchi.auth.tokens import clear_refresh_cookies
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
@fresh_required
@blp.arguments(EmailChangeSchema)
@blp.response(202, MessageSchema)
@blp.doc(operationId="requestEmailChange", security=BEARER)
@document_errors(blp, 400, 401, 413, 415, 429)
def request_email_change(args):
    """Mail a confirmation link to the new address and a notice to the current one.

    Needs a fresh sign-in. The email changes only when the link (valid `EMAIL_CHANGE_HOURS`,
    `{FRONTEND_URL}/confirm-email?token=`) is used with `POST /auth/email/confirm`. The answer
    does not say whether the new address is registered already.
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
