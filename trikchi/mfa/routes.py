"""The second-factor and passkey endpoints under ``/auth`` (SPEC §8): thin views over the services."""

from __future__ import annotations

from flask import current_app, jsonify

from trikchi.auth.devices import set_device_cookie
from trikchi.auth.guards import (
    BEARER,
    account_required,
    current_user,
    current_user_model,
    fresh_required,
)
from trikchi.auth.schemas import TokenSchema
from trikchi.auth.tokens import token_response
from trikchi.http import Blueprint, client_info, document_errors
from trikchi.mfa import limits, passkeys, signin, totp
from trikchi.mfa.schemas import (
    CodeSchema,
    CreationOptionsSchema,
    CredentialSchema,
    MfaStatusSchema,
    MfaVerifySchema,
    PasskeyNameSchema,
    PasskeyRegistrationSchema,
    PasskeySchema,
    RecoveryCodesSchema,
    RequestOptionsSchema,
    TotpSetupSchema,
)
from trikchi.openapi import SET_REFRESH_COOKIES

# Answers that carry a secret or codes are never cached.
NO_STORE = {"Cache-Control": "no-store"}

blp = Blueprint("mfa", __name__, url_prefix="/auth", description="Second factors (TOTP) and passkeys.")


def _signed_in(user, pair):
    """The login body and cookies, and the device cookie of a completed sign-in."""
    response = token_response(pair)
    if user.email:
        set_device_cookie(response, user.email)
    return response


@blp.route("/mfa", methods=["GET"])
@account_required
@blp.response(200, MfaStatusSchema)
@blp.doc(operationId="getMfaStatus", security=BEARER)
@document_errors(blp, 401, 403)
def mfa_status():
    """Which second factors the caller has.

    `totp` is true once set up and confirmed; `recovery_codes_left` counts the unused ones; `passkeys`
    the registered passkeys.
    """
    return totp.status(current_user.id)


@blp.route("/mfa/totp/setup", methods=["POST"])
@limits.mfa_attempts
@account_required
@fresh_required
@blp.response(200, TotpSetupSchema)
@blp.doc(operationId="setUpTotp", security=BEARER)
@document_errors(blp, 401, 403, 409, 429)
def set_up_totp():
    """Start setting up TOTP: a new secret for the authenticator app. Needs a fresh sign-in.

    Show `qr_svg` (or `secret` for typing in); the setup is pending until `POST /auth/mfa/totp/confirm`
    with a first code, within 15 minutes. 409 `totp_already_enabled` when TOTP is on already.
    """
    setup = totp.begin_setup(current_user_model())
    body = {"secret": setup.secret, "otpauth_uri": setup.otpauth_uri, "qr_svg": setup.qr_svg}
    return body, NO_STORE


@blp.route("/mfa/totp/confirm", methods=["POST"])
@limits.mfa_attempts
@account_required
@blp.arguments(CodeSchema)
@blp.response(200, RecoveryCodesSchema)
@blp.doc(operationId="confirmTotp", security=BEARER)
@document_errors(blp, 400, 401, 403, 409, 413, 415, 429)
def confirm_totp(args):
    """Turn TOTP on with a first code from the app; answers the 10 recovery codes, once.

    A wrong code is 422 `invalid_mfa_code` naming `code`. From now on, a password sign-in needs a
    second step (`POST /auth/mfa/verify`).
    """
    codes = totp.confirm_setup(current_user_model(), args["code"], client_info(), current_user.session_id)
    return {"recovery_codes": codes}, NO_STORE


@blp.route("/mfa/totp", methods=["DELETE"])
@limits.mfa_attempts
@account_required
@fresh_required
@blp.arguments(CodeSchema)
@blp.response(204)
@blp.doc(operationId="disableTotp", security=BEARER)
@document_errors(blp, 400, 401, 403, 409, 413, 415, 429)
def disable_totp(args):
    """Turn TOTP off (a TOTP code or a recovery code); the recovery codes go too. Needs a fresh sign-in.

    A wrong code is 422 `invalid_mfa_code` naming `code`.
    """
    totp.disable(current_user_model(), args["code"], client_info(), current_user.session_id)
    return current_app.response_class(status=204)


@blp.route("/mfa/recovery_codes", methods=["POST"])
@limits.mfa_attempts
@account_required
@fresh_required
@blp.response(200, RecoveryCodesSchema)
@blp.doc(operationId="regenerateRecoveryCodes", security=BEARER)
@document_errors(blp, 401, 403, 409, 429)
def regenerate_recovery_codes():
    """A new set of 10 recovery codes; the old set stops working. Needs a fresh sign-in.

    409 `totp_not_enabled` when TOTP is off.
    """
    codes = totp.regenerate_recovery_codes(current_user_model(), client_info(), current_user.session_id)
    return {"recovery_codes": codes}, NO_STORE


@blp.route("/mfa/verify", methods=["POST"])
@limits.mfa_failures_per_ip
@blp.arguments(MfaVerifySchema)
@blp.response(200, TokenSchema, headers=SET_REFRESH_COOKIES)
@blp.doc(operationId="verifyMfa")
@document_errors(blp, 400, 401, 403, 413, 415, 429)
def verify_mfa(args):
    """The second step of a sign-in: the `mfa_token` of the login answer and a code.

    Send `code` (6 digits from the app) or `recovery_code`. Answers like login: the access token in
    the body, the refresh cookie. A wrong or replayed code is 401 `invalid_mfa_code`; the
    `mfa_token` lives 5 minutes, works once and dies after 5 wrong codes (401 `mfa_token_invalid`:
    sign in again). Wrong codes are limited per IP and per account. 403 `account_banned` (with
    `banned_until`) when the account was banned meanwhile.
    """
    user, pair = signin.complete(
        args["mfa_token"], args.get("code"), args.get("recovery_code"), client_info()
    )
    return _signed_in(user, pair)


@blp.route("/passkeys", methods=["GET"])
@account_required
@blp.response(200, PasskeySchema(many=True))
@blp.doc(operationId="listPasskeys", security=BEARER)
@document_errors(blp, 401, 403)
def list_passkeys():
    """The caller's passkeys, oldest first.

    Each with its `id` (for rename and delete), `name`, `created_at` and `last_used_at` (null until
    its first sign-in).
    """
    return passkeys.list_passkeys(current_user.id)


@blp.route("/passkeys/registration/options", methods=["POST"])
@limits.mfa_attempts
@account_required
@fresh_required
@blp.response(200, CreationOptionsSchema)
@blp.doc(operationId="passkeyRegistrationOptions", security=BEARER)
@document_errors(blp, 401, 403, 429)
def passkey_registration_options():
    """Options for `navigator.credentials.create()` (standard JSON form). Needs a fresh sign-in.

    Pass them to `PublicKeyCredential.parseCreationOptionsFromJSON()`. The challenge works once,
    within 5 minutes. A discoverable credential with user verification is asked for.
    """
    return jsonify(passkeys.registration_options(current_user_model()))


@blp.route("/passkeys/registration/verify", methods=["POST"])
@limits.mfa_attempts
@account_required
@blp.arguments(PasskeyRegistrationSchema)
@blp.response(201, PasskeySchema)
@blp.doc(operationId="registerPasskey", security=BEARER)
@document_errors(blp, 400, 401, 403, 413, 415, 429)
def register_passkey(args):
    """Store the new passkey: send `credential.toJSON()`, plus an optional `name`.

    The challenge is found from the credential's `clientDataJSON`. A refused credential (unknown or
    expired challenge, wrong origin, no user verification, already registered) is 422
    `passkey_invalid`.
    """
    name = args.pop("name", None)
    return passkeys.register(current_user_model(), args, name, client_info(), current_user.session_id)


@blp.route("/passkeys/<string:passkey_id>", methods=["PATCH"])
@limits.mfa_attempts
@account_required
@blp.arguments(PasskeyNameSchema)
@blp.response(200, PasskeySchema)
@blp.doc(operationId="renamePasskey", security=BEARER)
@document_errors(blp, 400, 401, 403, 404, 413, 415, 429)
def rename_passkey(args, passkey_id):
    """Rename one of the caller's passkeys.

    404 when the id is not one of the caller's passkeys.
    """
    return passkeys.rename(current_user.id, passkey_id, args["name"], client_info(), current_user.session_id)


@blp.route("/passkeys/<string:passkey_id>", methods=["DELETE"])
@limits.mfa_attempts
@account_required
@fresh_required
@blp.response(204)
@blp.doc(operationId="deletePasskey", security=BEARER)
@document_errors(blp, 401, 403, 404, 429)
def delete_passkey(passkey_id):
    """Delete one of the caller's passkeys. Needs a fresh sign-in.

    It cannot sign in any more (the browser may still offer it; the answer is then 401
    `passkey_invalid`). 404 when the id is not one of the caller's passkeys.
    """
    passkeys.remove(current_user.id, passkey_id, client_info(), current_user.session_id)
    return current_app.response_class(status=204)


@blp.route("/passkeys/authentication/options", methods=["POST"])
@limits.passkey_attempts
@blp.response(200, RequestOptionsSchema)
@blp.doc(operationId="passkeyAuthenticationOptions")
@document_errors(blp, 429)
def passkey_authentication_options():
    """Options for `navigator.credentials.get()` (standard JSON form); no account is named.

    Pass them to `PublicKeyCredential.parseRequestOptionsFromJSON()`; the browser offers the
    passkeys it holds for this site. The challenge works once, within 5 minutes.
    """
    return jsonify(passkeys.authentication_options())


@blp.route("/passkeys/authentication/verify", methods=["POST"])
@limits.passkey_attempts
@limits.passkey_failures_per_ip
@blp.arguments(CredentialSchema)
@blp.response(200, TokenSchema, headers=SET_REFRESH_COOKIES)
@blp.doc(operationId="signInWithPasskey")
@document_errors(blp, 400, 401, 403, 413, 415, 429)
def sign_in_with_passkey(args):
    """Sign in with a passkey: send `credential.toJSON()`; answers like login (no second step).

    The challenge is found from the credential's `clientDataJSON`. A refused assertion (unknown or
    expired challenge, unknown passkey, bad signature, no user verification, a signature counter
    that did not grow) is 401 `passkey_invalid`. A valid passkey of a banned account is 403
    `account_banned` (with `banned_until`).
    """
    user, pair = passkeys.authenticate(args, client_info())
    return _signed_in(user, pair)
