"""The stable ``error`` codes of error bodies, and the generic code of each HTTP status.

Kept apart from ``trikchi.errors`` (which needs the database session) so that the
API document and the gunicorn workers can use them without importing the app.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every value of the ``error`` field; documented as an enum in the API document and in docs/api.md."""

    BAD_REQUEST = "bad_request"
    INVALID_JSON = "invalid_json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION_FAILED = "validation_failed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    AUTHENTICATION_REQUIRED = "authentication_required"
    INVALID_CREDENTIALS = "invalid_credentials"
    TOKEN_INVALID = "token_invalid"  # noqa: S105
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    SESSION_ENDED = "session_ended"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105
    CSRF_FAILED = "csrf_failed"
    FRESH_SIGNIN_REQUIRED = "fresh_signin_required"
    INVALID_LINK = "invalid_link"
    MFA_TOKEN_INVALID = "mfa_token_invalid"  # noqa: S105
    INVALID_MFA_CODE = "invalid_mfa_code"
    MFA_ENROLLMENT_REQUIRED = "mfa_enrollment_required"
    ACCOUNT_REQUIRED = "account_required"
    TOTP_ALREADY_ENABLED = "totp_already_enabled"
    TOTP_NOT_ENABLED = "totp_not_enabled"
    TOTP_SETUP_REQUIRED = "totp_setup_required"
    PASSKEY_INVALID = "passkey_invalid"
    FORBIDDEN = "forbidden"
    ACCOUNT_BANNED = "account_banned"
    PASSWORD_BREACHED = "password_breached"  # noqa: S105
    DISPOSABLE_EMAIL = "disposable_email"
    EMAIL_TAKEN = "email_taken"
    LAST_ADMIN = "last_admin"
    CONFLICT = "conflict"
    LAST_SIGN_IN_METHOD = "last_sign_in_method"
    SOCIAL_LOGIN_FAILED = "social_login_failed"
    INVALID_PHONE = "invalid_phone"
    INVALID_CODE = "invalid_code"
    PHONE_TAKEN = "phone_taken"
    RATE_LIMITED = "rate_limited"
    CAPTCHA_FAILED = "captcha_failed"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    CAPTCHA_UNAVAILABLE = "captcha_unavailable"


# What each ``error`` value means, for the API document and docs/api.md.
ERROR_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: "The request could not be parsed (malformed request line, headers or query).",
    ErrorCode.INVALID_JSON: "The body is not valid JSON.",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "The body is not declared as application/json.",
    ErrorCode.VALIDATION_FAILED: "A field is missing, unknown or breaks a rule; `errors` names the fields.",
    ErrorCode.PAYLOAD_TOO_LARGE: "The body is larger than MAX_CONTENT_LENGTH.",
    ErrorCode.URI_TOO_LONG: "The request line is too long (refused by gunicorn).",
    ErrorCode.HEADERS_TOO_LARGE: "A header is too large, or there are too many (refused by gunicorn).",
    ErrorCode.NOT_FOUND: "No such route, or no such resource of the caller.",
    ErrorCode.METHOD_NOT_ALLOWED: "The route exists but not with this method; see `Allow`.",
    ErrorCode.AUTHENTICATION_REQUIRED: "No access token (Authorization header) or refresh cookie was sent.",
    ErrorCode.INVALID_CREDENTIALS: "Wrong email or password (the same answer for unknown emails).",
    ErrorCode.TOKEN_INVALID: "The token is malformed, forged, of the wrong type, or lacks a required claim.",
    ErrorCode.TOKEN_EXPIRED: "The token has expired: refresh (access token) or sign in (refresh token).",
    ErrorCode.SESSION_ENDED: "The session was signed out, revoked or expired, or the user is disabled.",
    ErrorCode.REFRESH_TOKEN_REUSED: "An already-used refresh token was presented: the session was revoked.",
    ErrorCode.FRESH_SIGNIN_REQUIRED: (
        "The operation needs a recent sign-in: call POST /auth/reauthenticate (or sign in again) first."
    ),
    ErrorCode.CSRF_FAILED: "The X-CSRF-TOKEN header is missing or does not match the csrf_refresh_token.",
    ErrorCode.INVALID_LINK: "A verification or reset link is invalid, expired or already used.",
    ErrorCode.MFA_TOKEN_INVALID: (
        "The mfa_token is unknown, expired (5 minutes), already used, or dead after 5 wrong codes:"
        " sign in again."
    ),
    ErrorCode.INVALID_MFA_CODE: "The TOTP or recovery code is wrong or was already used.",
    ErrorCode.MFA_ENROLLMENT_REQUIRED: (
        "The role needs a second factor: set up TOTP or add a passkey (/auth/mfa, /auth/passkeys) first."
    ),
    ErrorCode.ACCOUNT_REQUIRED: (
        "A guest cannot do this: it needs an account first (POST /auth/register with the guest's token,"
        " or a sign-in by phone, OpenID Connect or Telegram)."
    ),
    ErrorCode.TOTP_ALREADY_ENABLED: "TOTP is already on; turn it off first to set up a new secret.",
    ErrorCode.TOTP_NOT_ENABLED: "TOTP is not on for this account.",
    ErrorCode.TOTP_SETUP_REQUIRED: "No TOTP setup is pending (or it expired): set it up again.",
    ErrorCode.PASSKEY_INVALID: (
        "The passkey response was refused: unknown or expired challenge, unknown credential, bad signature,"
        " no user verification, or a signature counter that did not grow."
    ),
    ErrorCode.FORBIDDEN: "Signed in, but the role does not allow this.",
    ErrorCode.ACCOUNT_BANNED: (
        "The account is banned by staff: no sign-in by any method. `banned_until` says until when"
        " (null: until lifted)."
    ),
    ErrorCode.PASSWORD_BREACHED: (
        "The new password appears in a known data breach (Have I Been Pwned); `errors` names the field."
    ),
    ErrorCode.DISPOSABLE_EMAIL: (
        "The address is at a throwaway (disposable) mail domain; `errors` names the field."
    ),
    ErrorCode.EMAIL_TAKEN: "The email is already registered.",
    ErrorCode.LAST_ADMIN: "The change would leave no active admin.",
    ErrorCode.CONFLICT: "The request conflicts with the current state.",
    ErrorCode.LAST_SIGN_IN_METHOD: (
        "The identity, passkey or phone number is the account's last way to sign in (no password, nothing"
        " else): it stays."
    ),
    ErrorCode.SOCIAL_LOGIN_FAILED: (
        "A Telegram sign-in could not be verified: bad signature, too old, or a disabled account."
    ),
    ErrorCode.INVALID_PHONE: (
        "Not a valid phone number of a country SMS codes are sent to (SMS_ALLOWED_REGIONS); `errors` names"
        " the field."
    ),
    ErrorCode.INVALID_CODE: (
        "The SMS code is wrong, expired (5 minutes), already used or dead after 5 wrong tries, or no code"
        " was sent to this number (one answer for all)."
    ),
    ErrorCode.PHONE_TAKEN: "Another account has this phone number.",
    ErrorCode.RATE_LIMITED: "Too many attempts; wait for `Retry-After` seconds.",
    ErrorCode.CAPTCHA_FAILED: (
        "The CAPTCHA is required and its token (`captcha_token` or `X-Captcha-Token`) is missing, expired,"
        " already used or refused: solve it again."
    ),
    ErrorCode.INTERNAL_ERROR: "An unexpected failure on the server (logged, never shown).",
    ErrorCode.SERVICE_UNAVAILABLE: (
        "The database (or the breached-password check, when it fails closed) does not answer;"
        " retry after `Retry-After` seconds."
    ),
    ErrorCode.CAPTCHA_UNAVAILABLE: (
        "The CAPTCHA provider could not check the token (unreachable, or an error on its side); retry"
        " after `Retry-After` seconds."
    ),
}

# The ``error`` of an HTTP status when nothing more specific is known.
_STATUS_ERRORS: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.AUTHENTICATION_REQUIRED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    414: ErrorCode.URI_TOO_LONG,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_FAILED,
    429: ErrorCode.RATE_LIMITED,
    431: ErrorCode.HEADERS_TOO_LARGE,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


def error_code_for(status: int) -> ErrorCode:
    """The generic ``error`` of an HTTP status."""
    return _STATUS_ERRORS.get(status, ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR)
