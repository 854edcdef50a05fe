"""The phone endpoints under ``/auth`` (SPEC §14): thin views over ``phone.services``."""

from __future__ import annotations

from flask import current_app

from trikchi.auth.guards import BEARER, access_required, current_user, fresh_required
from trikchi.auth.responses import sign_in_response
from trikchi.auth.schemas import MfaRequiredSchema, TokenSchema, UserSchema
from trikchi.captcha import captcha_parameters, require_captcha
from trikchi.http import Blueprint, client_info, document_errors
from trikchi.openapi import SET_REFRESH_COOKIES
from trikchi.phone import limits, services
from trikchi.phone.schemas import (
    CodeSentSchema,
    PhoneCodeRequestSchema,
    PhoneConfirmSchema,
    PhoneSchema,
    PhoneVerifySchema,
)

blp = Blueprint("phone", __name__, url_prefix="/auth", description="Phone numbers and SMS codes.")


@blp.route("/phone/code", methods=["POST"])
@limits.code_requests
@blp.arguments(PhoneCodeRequestSchema)
@blp.response(202, CodeSentSchema)
@blp.doc(operationId="requestPhoneCode", parameters=captcha_parameters())
@document_errors(blp, 400, 403, 413, 415, 429, 503)
def request_phone_code(args):
    """Send a sign-in code by SMS; the answer is the same whether or not the number has an account.

    The code (6 digits) works for `expires_in` seconds, once; another one to the same number can be
    asked for after `resend_after` seconds (429 with `Retry-After` before). A number that is not
    valid or not of `SMS_ALLOWED_REGIONS` is 422 `invalid_phone`. Requests are limited per IP and per
    number, and all codes together by `SMS_DAILY_LIMIT` a day (429 `rate_limited`). With
    `CAPTCHA_PROVIDER` set, `captcha_token` is required (403 `captcha_failed`; 503
    `captcha_unavailable` when the provider cannot check it).
    """
    require_captcha(args["captcha_token"])
    phone = services.parse_phone(args["phone"])
    services.request_sign_in_code(phone, client_info())
    return services.code_sent()


@blp.route("/phone/verify", methods=["POST"])
@limits.verify_failures
@blp.arguments(PhoneVerifySchema)
@blp.response(200, {"oneOf": [TokenSchema, MfaRequiredSchema]}, headers=SET_REFRESH_COOKIES)
@blp.doc(operationId="verifyPhoneCode")
@document_errors(blp, 400, 401, 413, 415, 429)
def verify_phone_code(args):
    """Sign in with the code of the SMS: the login body and cookies.

    A number without an account gets one: a customer with the number proven, no email, no password,
    and `name` (or ""). A wrong, expired, used or never sent code is 401 `invalid_code` (5 wrong
    tries kill a code), as is a disabled account. When the account has TOTP on, the answer is the
    second step, as for a login: `{"mfa_required": true, "mfa_token", "methods"}` and no cookie.
    """
    phone = services.parse_phone(args["phone"])
    result = services.verify_sign_in(phone, args["code"], args.get("name"), client_info())
    return sign_in_response(result)


@blp.route("/phone", methods=["POST"])
@limits.code_requests
@fresh_required
@blp.arguments(PhoneSchema)
@blp.response(202, CodeSentSchema)
@blp.doc(operationId="requestPhoneChange", security=BEARER)
@document_errors(blp, 400, 401, 413, 415, 429)
def request_phone_change(args):
    """Send a code to a new number for the signed-in account. Needs a fresh sign-in.

    The number changes only when the code comes back with `POST /auth/phone/confirm`. 422
    `invalid_phone` for a number codes are not sent to, 422 naming `phone` for the account's own
    number; the limits of `POST /auth/phone/code` apply.
    """
    phone = services.parse_phone(args["phone"])
    services.request_change_code(current_user, phone, client_info(), current_user.session_id)
    return services.code_sent()


@blp.route("/phone/confirm", methods=["POST"])
@limits.verify_failures
@access_required
@blp.arguments(PhoneConfirmSchema)
@blp.response(200, UserSchema)
@blp.doc(operationId="confirmPhoneChange", security=BEARER)
@document_errors(blp, 400, 401, 409, 413, 415, 429)
def confirm_phone_change(args):
    """Give the account the new number with the code sent to it; it becomes proven.

    401 `invalid_code` as for a sign-in; 409 `phone_taken` when another account has the number.
    """
    phone = services.parse_phone(args["phone"])
    return services.confirm_change(
        current_user.id, phone, args["code"], client_info(), current_user.session_id
    )


@blp.route("/phone", methods=["DELETE"])
@fresh_required
@blp.response(204)
@blp.doc(operationId="deletePhone", security=BEARER)
@document_errors(blp, 401, 409)
def delete_phone():
    """Take the number off the account. Needs a fresh sign-in.

    409 `last_sign_in_method` when it is the account's last way to sign in (no password, identity
    or passkey besides it).
    """
    services.remove_phone(current_user.id, client_info(), current_user.session_id)
    return current_app.response_class(status=204)
