"""marshmallow schemas of the phone endpoints (inputs reject unknown fields).

A number is a JSON string here, read as people write it; whether it is a number trikchi sends
codes to is ``trikchi.phones``' answer (422 ``invalid_phone``), given by the service.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from trikchi.auth.schemas import (
    NO_CONTROL_CHARACTERS,
    NameField,
    Pattern,
    StrictSchema,
    captcha_token_field,
    encodable,
)
from trikchi.i18n import N_

# Six ASCII digits: ``\d`` would take other scripts' digits too.
CODE_PATTERN = Pattern(r"^[0-9]{6}$", error=N_("Enter the 6 digits of the code."))


def phone_field() -> fields.String:
    """A phone number as written (``+998 90 123 45 67``, ``90 123 45 67``, ``998901234567``)."""
    return fields.String(
        required=True,
        validate=[validate.Length(min=1), NO_CONTROL_CHARACTERS, encodable],
        metadata={
            "description": (
                "A number of `SMS_ALLOWED_REGIONS` as people write it; without `+` and country code it is"
                " read as a number of `PHONE_DEFAULT_REGION` (422 `invalid_phone` otherwise)."
            ),
            "example": "+998 90 123 45 67",
        },
    )


def code_field() -> fields.String:
    """The six digits of an SMS code."""
    return fields.String(
        required=True,
        load_only=True,
        validate=CODE_PATTERN,
        metadata={"description": "The 6 digits of the SMS.", "example": "123456"},
    )


class PhoneCodeRequestSchema(StrictSchema):
    """``POST /auth/phone/code`` body."""

    phone = phone_field()
    captcha_token = captcha_token_field()


class PhoneSchema(StrictSchema):
    """``POST /auth/phone`` body: the new number."""

    phone = phone_field()


class PhoneVerifySchema(StrictSchema):
    """``POST /auth/phone/verify`` body."""

    phone = phone_field()
    code = code_field()
    # The name of an account made now (a new number); ignored for an account that exists.
    name = NameField()


class PhoneConfirmSchema(StrictSchema):
    """``POST /auth/phone/confirm`` body."""

    phone = phone_field()
    code = code_field()


class CodeSentSchema(Schema):
    """A code is on its way (or would be: the answer is the same for every number)."""

    expires_in = fields.Integer(
        required=True, metadata={"description": "Seconds the code works.", "example": 300}
    )
    resend_after = fields.Integer(
        required=True,
        metadata={"description": "Seconds before another code may be asked for.", "example": 60},
    )
