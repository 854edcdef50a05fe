"""Schemas of the social sign-in endpoints."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from trikchi.auth.schemas import NO_CONTROL_CHARACTERS, Pattern, StrictSchema, encodable
from trikchi.i18n import N_

REDIRECT_REFUSED = N_("Must be a relative path on the frontend, like /profile.")


class AuthorizeArgsSchema(Schema):
    """``GET /auth/oauth/<provider>/authorize`` query."""

    class Meta:
        unknown = RAISE

    redirect_to = fields.String(
        load_default="/",
        validate=[
            validate.Length(min=1, max=2000),
            # A path: one leading slash, then no slash or backslash (//host, /\host are hosts to
            # browsers), no backslash, space or control character anywhere (encode them).
            Pattern(
                r"^/(?![/\\])[^\\\x00-\x20\x7f-\x9f]*$",
                error=REDIRECT_REFUSED,
            ),
        ],
        metadata={
            "description": "Where on FRONTEND_URL to land afterwards: a relative path (`/account?tab=1`),"
            " never a URL with a scheme or host.",
            "example": "/account",
        },
    )


def _text(max_length: int, **kwargs: object) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=max_length), NO_CONTROL_CHARACTERS, encodable], **kwargs
    )


class TelegramLoginSchema(StrictSchema):
    """``POST /auth/telegram`` body: the Telegram Login widget's user object, unchanged."""

    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**63 - 1))
    first_name = _text(256)
    last_name = _text(256)
    username = _text(64)
    photo_url = _text(1024)
    auth_date = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=2**40),
        metadata={"description": "UNIX time."},
    )
    hash = fields.String(
        required=True,
        validate=Pattern(r"^[0-9a-fA-F]{64}$"),
        metadata={"description": "HMAC-SHA256 (hex) of the other fields under SHA256(bot token)."},
    )


class IdentitySchema(Schema):
    """One of the caller's linked identities."""

    id = fields.Integer(required=True)
    provider = fields.String(required=True, metadata={"example": "google"})
    email = fields.String(
        required=True, allow_none=True, metadata={"description": "The provider's address when it was linked."}
    )
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True)


class ProvidersSchema(Schema):
    """The sign-in methods this instance offers besides the password, for a frontend's buttons."""

    oidc = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "OpenID Connect provider names (`OAUTH_PROVIDERS`).", "example": ["google"]},
    )
    telegram_bot = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The bot's username for the Telegram Login widget; null when not configured."
        },
    )
