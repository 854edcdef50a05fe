"""marshmallow schemas of the auth endpoints (inputs reject unknown fields)."""

from __future__ import annotations

import unicodedata
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from trikchi.addresses import INVALID as INVALID_EMAIL
from trikchi.addresses import InvalidEmail, canonical_email
from trikchi.addresses import normalize_email as normalize_email  # the services import it from here
from trikchi.auth.passwords import MAX_LENGTH, MIN_LENGTH, password_problems
from trikchi.captcha import HEADER as CAPTCHA_HEADER
from trikchi.captcha import MAX_TOKEN_LENGTH as CAPTCHA_MAX_LENGTH
from trikchi.captcha import TOKEN_PATTERN as CAPTCHA_TOKEN_PATTERN
from trikchi.i18n import LOCALES, N_

EMAIL_MAX = 254
NAME_MAX = 100


class Pattern(validate.Regexp):
    """``validate.Regexp`` over the whole value, as the document's ``pattern`` is read.

    A JSON Schema ``pattern`` is an ECMA-262 regex, whose ``$`` is the end of the text; ``re.match``
    lets ``$`` match before a final newline too, so ``"Ada\\n"`` passed ``^[^\\x00-\\x1f]*$`` here
    while the document refused it. apispec writes ``regex.pattern`` into the document unchanged.
    """

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# No NUL or other control characters (PostgreSQL cannot store NUL); part of the OpenAPI schema.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
NO_CONTROL_CHARACTERS = Pattern(
    rf"^[^{CONTROL_CHARACTERS}]*$", error=N_("Must not contain control characters.")
)
# The white space that ``str.strip()`` removes, less the control characters (refused anyway).
SPACES = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


class NamePattern(Pattern):
    """A name: no control character, and something besides spaces (trimmed off the ends when stored).

    Written so that no input makes the regex backtrack more than once per character. A name of
    spaces only is refused as the empty name it would be once trimmed.
    """

    def __call__(self, value: Any) -> Any:
        if value == "":
            return value  # Length says it
        return super().__call__(value)

    def _format_error(self, value: Any) -> str:
        if NO_CONTROL_CHARACTERS.regex.fullmatch(value) is not None:
            return validate.Length.message_min.format(min=1)
        return NO_CONTROL_CHARACTERS.error


NAME_PATTERN = NamePattern(rf"^[{SPACES}]*[^{CONTROL_CHARACTERS}{SPACES}][^{CONTROL_CHARACTERS}]*$")


def encodable(value: str) -> None:
    """Refuse lone UTF-16 surrogates, which cannot be encoded to UTF-8 for hashing."""
    if any(unicodedata.category(char) == "Cs" for char in value):
        raise ValidationError("Must be valid Unicode text.")


def captcha_token_field() -> fields.String:
    """The optional ``captcha_token`` of the bodies whose views call ``trikchi.captcha.require_captcha``."""
    return fields.String(
        load_default=None,
        allow_none=True,
        load_only=True,
        # "" is no token: ignored without a CAPTCHA, 403 captcha_failed with one.
        validate=[
            validate.Length(max=CAPTCHA_MAX_LENGTH),
            Pattern(CAPTCHA_TOKEN_PATTERN, error=N_("Must be the token of the CAPTCHA widget.")),
        ],
        metadata={
            "description": (
                "The CAPTCHA widget's token (Turnstile or hCaptcha), required while the service has a"
                f" `CAPTCHA_PROVIDER`; or send it in the `{CAPTCHA_HEADER}` header."
            )
        },
    )


class StrictSchema(Schema):
    """Input schema: unknown fields are an error naming the field."""

    class Meta:
        unknown = RAISE


class NameField(fields.String):
    """A name (a person's, a passkey's): checked as sent (the document's rules), kept without the
    spaces around it."""

    def __init__(self, max_length: int = NAME_MAX, example: str = "Ada", **kwargs: Any) -> None:
        super().__init__(
            validate=[validate.Length(min=1, max=max_length), NAME_PATTERN, encodable],
            metadata={
                "description": "Not blank, no control characters; spaces around it are dropped.",
                "example": example,
            },
            **kwargs,
        )

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        # Validated as it came (``_deserialize`` runs before the validators), then trimmed.
        name = super().deserialize(value, attr, data, **kwargs)
        return name.strip() if isinstance(name, str) else name


def password_field(**metadata: Any) -> fields.String:
    """A password: length-checked here, policy-checked against the other fields below."""
    return fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=MIN_LENGTH, max=MAX_LENGTH), encodable],
        metadata={"format": "password", **metadata},
    )


class EmailField(fields.String):
    """An email address of at most 254 characters, loaded in its stored form (``trikchi.addresses``).

    Where an account is made or an address set, one trikchi cannot mail to is refused. A
    ``lookup`` field (sign-in, reset request) also takes the trimmed, lower-cased form of an
    address that was stored before that rule, so that its account can still sign in.
    """

    default_error_messages = {"invalid": INVALID_EMAIL}

    def __init__(self, lookup: bool = False, **kwargs: Any) -> None:
        self.lookup = lookup
        super().__init__(
            required=True,
            validate=validate.Length(max=EMAIL_MAX),
            metadata={"format": "email", "example": "user@example.com"},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > EMAIL_MAX:  # the document's maxLength is of the value sent, before trimming
            raise ValidationError(validate.Length.message_max.format(max=EMAIL_MAX))
        try:
            return canonical_email(text)
        except InvalidEmail as error:
            if self.lookup and _legacy_email(text.strip()):
                return text.strip().lower()
            raise ValidationError(error.message) from None


def _legacy_email(value: str) -> bool:
    """What registration accepted before ``trikchi.addresses`` (marshmallow's ``Email``)."""
    try:
        _MARSHMALLOW_EMAIL(value)
    except ValidationError:
        return False
    return True


_MARSHMALLOW_EMAIL = validate.Email()


class RegisterSchema(StrictSchema):
    """``POST /auth/register`` body."""

    name = NameField(required=True)
    email = EmailField()
    password = password_field(example="correct horse battery")
    captcha_token = captcha_token_field()

    @validates_schema(skip_on_field_errors=True)
    def _password_policy(self, data: dict[str, Any], **_kwargs: Any) -> None:
        problems = password_problems(data["password"], data["email"])
        if problems:
            raise ValidationError(problems, field_name="password")


class GuestSchema(StrictSchema):
    """``POST /auth/guest`` body: nothing, or the CAPTCHA widget's token."""

    captcha_token = fields.String(
        load_only=True,
        validate=[validate.Length(min=1, max=4096), NO_CONTROL_CHARACTERS, encodable],
        metadata={
            "description": "The CAPTCHA widget's token, needed when CAPTCHA_PROVIDER is set (SPEC §14)."
        },
    )


class LoginSchema(StrictSchema):
    """``POST /auth/login`` body; no policy here, old passwords must still sign in."""

    email = EmailField(lookup=True)
    password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=1, max=1024), encodable],
        metadata={"format": "password"},
    )


class ReauthenticateSchema(StrictSchema):
    """``POST /auth/reauthenticate`` body (``code`` when TOTP is on)."""

    password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=1, max=1024), encodable],
        metadata={"format": "password"},
    )
    code = fields.String(
        load_only=True,
        validate=[validate.Length(min=6, max=64), NO_CONTROL_CHARACTERS, encodable],
        metadata={"description": "When TOTP is on: a 6-digit code from the app, or a recovery code."},
    )


class PasswordChangeSchema(StrictSchema):
    """``POST /auth/password`` body."""

    current_password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=1, max=1024), encodable],
        metadata={"format": "password"},
    )
    new_password = password_field()


class UserSchema(Schema):
    """The user object of SPEC §3 (plus ``email_verified``, ``locale``, ``phone``, ``phone_verified``)."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "null for an account made by a sign-in that gave no address (Telegram)."},
    )
    role = fields.String(
        required=True, metadata={"description": "customer, admin, or guest (SPEC §15: no account yet)."}
    )
    is_guest = fields.Boolean(
        required=True,
        metadata={
            "description": "A guest: a visitor's id before any credential; it becomes a customer keeping it."
        },
    )
    email_verified = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    locale = fields.String(
        allow_none=True,
        metadata={"description": "Language of mails and messages (uz, ru, en); null: the browser's."},
    )
    phone = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "E.164 (`+998901234567`); null until a number is proven by an SMS code."},
    )
    phone_verified = fields.Boolean(required=True)


def user_body(user: Any) -> dict[str, Any]:
    """``UserSchema().dump(user)``, built directly: what ``GET /auth/me`` answers on every call.

    marshmallow's per-field machinery was ~8 µs of a ~140 µs ``/auth/me`` in-process (README,
    Performance). The same keys and values, the schema still documents them, and a test
    compares the two for every kind of user record, so they cannot drift apart.
    """
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "is_guest": user.is_guest,
        "email_verified": user.email_verified,
        "created_at": user.created_at.isoformat(),  # marshmallow's DateTime default ("iso")
        "locale": user.locale,
        "phone": user.phone,
        "phone_verified": user.phone_verified,
    }


class TokenSchema(Schema):
    """Login and refresh response body."""

    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    user_id = fields.Integer(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime in seconds."})
    csrf_token = fields.String(
        required=True,
        metadata={"description": "Send as X-CSRF-TOKEN on refresh and logout (= csrf_refresh_token cookie)."},
    )


class MessageSchema(Schema):
    """A plain confirmation."""

    message = fields.String(required=True)


class SessionSchema(Schema):
    """One of the caller's sessions (SPEC §4)."""

    id = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    user_agent = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    current = fields.Boolean(required=True)


class LinkTokenSchema(StrictSchema):
    """``POST /auth/verify_email`` body: the token from the mailed link."""

    token = fields.String(required=True, validate=[validate.Length(min=1, max=1024), encodable])


class PasswordResetRequestSchema(StrictSchema):
    """``POST /auth/password_reset/request`` body."""

    email = EmailField(lookup=True)
    captcha_token = captcha_token_field()


class PasswordResetSchema(StrictSchema):
    """``POST /auth/password_reset`` body."""

    token = fields.String(required=True, validate=[validate.Length(min=1, max=1024), encodable])
    new_password = password_field()


class ProfileUpdateSchema(StrictSchema):
    """``PATCH /auth/me`` body: any of the fields; ``locale`` null follows the browser again."""

    name = NameField()
    locale = fields.String(
        allow_none=True,
        validate=validate.OneOf(LOCALES),
        metadata={"description": "uz (Uzbek, Latin script), ru or en; null: the browser's Accept-Language."},
    )


class EmailChangeSchema(StrictSchema):
    """``POST /auth/email`` body."""

    new_email = EmailField()


class MfaRequiredSchema(Schema):
    """A sign-in answered with the second step (SPEC §13): no token, no cookie yet."""

    mfa_required = fields.Boolean(required=True, metadata={"example": True})
    mfa_token = fields.String(
        required=True, metadata={"description": "Send to POST /auth/mfa/verify within 5 minutes."}
    )
    methods = fields.List(
        fields.String(validate=validate.OneOf(["totp", "recovery_code"])),
        required=True,
        metadata={"example": ["totp", "recovery_code"]},
    )
