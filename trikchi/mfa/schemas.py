"""marshmallow schemas of the second-factor and passkey endpoints."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from trikchi.auth.schemas import NO_CONTROL_CHARACTERS, NameField, StrictSchema, encodable

PASSKEY_NAME_MAX = 64


def code_field(description: str, **kwargs: Any) -> fields.String:
    """A TOTP or recovery code field."""
    return fields.String(
        validate=[validate.Length(min=6, max=64), NO_CONTROL_CHARACTERS, encodable],
        metadata={"description": description, "example": "123456"},
        **kwargs,
    )


class CodeSchema(StrictSchema):
    """A code from the authenticator app (or, where said, a recovery code)."""

    code = code_field(
        "A 6-digit code from the authenticator app (a recovery code also works to turn TOTP off).",
        required=True,
    )


class TotpSetupSchema(Schema):
    """``POST /auth/mfa/totp/setup`` answer: what the authenticator app needs."""

    secret = fields.String(required=True, metadata={"description": "The base32 secret, to type in by hand."})
    otpauth_uri = fields.String(
        required=True, metadata={"description": "The otpauth:// URI (what the QR code holds)."}
    )
    qr_svg = fields.String(
        required=True, metadata={"description": "The QR code of otpauth_uri as an SVG document."}
    )


class RecoveryCodesSchema(Schema):
    """Ten single-use recovery codes, shown once."""

    recovery_codes = fields.List(
        fields.String(), required=True, metadata={"description": "Shown once: store them safely."}
    )


class MfaStatusSchema(Schema):
    """``GET /auth/mfa``."""

    totp = fields.Boolean(required=True)
    recovery_codes_left = fields.Integer(required=True)
    passkeys = fields.Integer(required=True)


class MfaVerifySchema(StrictSchema):
    """``POST /auth/mfa/verify``: the ``mfa_token`` of the login answer and one code."""

    # ``_one_code`` below, in the document (trikchi.openapi.SchemaRules).
    OPENAPI_RULES: ClassVar[dict[str, Any]] = {
        "oneOf": [{"required": ["code"]}, {"required": ["recovery_code"]}],
    }

    mfa_token = fields.String(required=True, validate=[validate.Length(min=1, max=256), encodable])
    code = code_field("A 6-digit code from the authenticator app.")
    recovery_code = code_field("One of the recovery codes (each works once).")

    @validates_schema(skip_on_field_errors=True)
    def _one_code(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("code" in data) == ("recovery_code" in data):
            raise ValidationError("Send either code or recovery_code.", field_name="code")


class PasskeySchema(Schema):
    """One of the caller's passkeys."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True, allow_none=True)


class PasskeyNameSchema(StrictSchema):
    """``PATCH /auth/passkeys/<id>``."""

    name = NameField(required=True, max_length=PASSKEY_NAME_MAX, example="Phone")


class CredentialSchema(StrictSchema):
    """A credential's standard JSON form (``PublicKeyCredential.toJSON()``)."""

    class Meta(StrictSchema.Meta):
        # The browser's object may grow new members; the WebAuthn library reads what it knows.
        unknown = "include"

    id = fields.String(required=True, validate=validate.Length(min=1, max=1400))
    rawId = fields.String(required=True, validate=validate.Length(min=1, max=1400))  # noqa: N815
    type = fields.String(required=True, validate=validate.Equal("public-key"))
    response = fields.Dict(required=True)


class PasskeyRegistrationSchema(CredentialSchema):
    """``POST /auth/passkeys/registration/verify``: the credential, and optionally its name."""

    name = NameField(max_length=PASSKEY_NAME_MAX, example="Phone")


class CreationOptionsSchema(Schema):
    """``PublicKeyCredentialCreationOptionsJSON`` (for ``parseCreationOptionsFromJSON``)."""

    rp = fields.Dict(required=True)
    user = fields.Dict(required=True)
    challenge = fields.String(required=True)
    pubKeyCredParams = fields.List(fields.Dict(), required=True)  # noqa: N815
    timeout = fields.Integer()
    excludeCredentials = fields.List(fields.Dict())  # noqa: N815
    authenticatorSelection = fields.Dict()  # noqa: N815
    attestation = fields.String()


class RequestOptionsSchema(Schema):
    """``PublicKeyCredentialRequestOptionsJSON`` (for ``parseRequestOptionsFromJSON``)."""

    challenge = fields.String(required=True)
    timeout = fields.Integer()
    rpId = fields.String()  # noqa: N815
    allowCredentials = fields.List(fields.Dict())  # noqa: N815
    userVerification = fields.String()  # noqa: N815
