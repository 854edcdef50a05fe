"""Schemas of the admin API."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from trikchi.auth.models import MAX_ID, ROLES
from trikchi.auth.schemas import NO_CONTROL_CHARACTERS, UserSchema

# ``status`` of ``GET /admin/users``: the account's active flag.
USER_STATUSES = ("active", "inactive")


class PageArgsSchema(Schema):
    """``page`` and ``per_page`` query arguments."""

    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class UserQuerySchema(PageArgsSchema):
    """``GET /admin/users`` query: search by email, name or id; filter by role and status."""

    q = fields.String(load_default=None, validate=[validate.Length(max=254), NO_CONTROL_CHARACTERS])
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))
    status = fields.String(load_default=None, validate=validate.OneOf(USER_STATUSES))


class AuditQuerySchema(PageArgsSchema):
    """``GET /admin/audit`` query."""

    user_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    type = fields.String(load_default=None, validate=[validate.Length(max=40), NO_CONTROL_CHARACTERS])


class AdminUserSchema(UserSchema):
    """A user as staff see it: the user object plus the account state."""

    is_active = fields.Boolean(required=True)
    updated_at = fields.DateTime(required=True)


class StrictBoolean(fields.Boolean):
    """``true`` or ``false`` and nothing else: ``1`` and ``0`` are numbers, not booleans.

    marshmallow's ``Boolean(truthy={True}, falsy={False})`` still took ``1``, ``1.0`` and ``0``
    (``1 in {True}`` is true in Python), which the document's ``type: boolean`` refuses.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class UserPatchSchema(Schema):
    """``PATCH /admin/users/<id>`` body: a new role and/or active flag (an empty body changes nothing)."""

    class Meta:
        unknown = RAISE

    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = StrictBoolean()


class AuditEventSchema(Schema):
    """One auth event."""

    id = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    type = fields.String(required=True)
    user_id = fields.Integer(allow_none=True)
    session_id = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)


class PageSchema(Schema):
    """Where a page stands: ``items`` come from the subclass."""

    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class UserPageSchema(PageSchema):
    """A page of users."""

    items = fields.List(fields.Nested(AdminUserSchema), required=True)


class AuditPageSchema(PageSchema):
    """A page of auth events, newest first."""

    items = fields.List(fields.Nested(AuditEventSchema), required=True)


class StatsQuerySchema(Schema):
    """``GET /admin/stats`` query: how many days, up to today."""

    class Meta:
        unknown = RAISE

    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=90))


class SignInCountSchema(Schema):
    """Sign-ins of one method on one day."""

    succeeded = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class DayStatsSchema(Schema):
    """One UTC day of the audit log."""

    date = fields.Date(required=True)
    sign_ins = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(SignInCountSchema),
        required=True,
        metadata={
            "description": "By method (`password`, `totp`, `recovery_code`, `passkey`, `oidc:<provider>`, "
            "`telegram`, `seed`, `phone`, …): sign-ins that opened a session and refused ones."
        },
    )
    registrations = fields.Integer(required=True)
    sms_sent = fields.Integer(required=True, metadata={"description": "`phone_code_sent` events."})


class StatsSchema(Schema):
    """The console's overview: the last days, oldest first, and the sessions live now."""

    days = fields.List(fields.Nested(DayStatsSchema), required=True)
    active_sessions = fields.Integer(required=True)


class SignInWaysSchema(Schema):
    """How an account can sign in, and how it did."""

    password = fields.Boolean(required=True, metadata={"description": "A password is set."})
    ways = fields.Integer(
        required=True,
        metadata={"description": "Independent ways to sign in: a password, identities, passkeys, …"},
    )
    second_factors = fields.List(
        fields.String(), required=True, metadata={"description": "Second factors on (`totp`, `passkey`)."}
    )
    methods_used = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Methods of the account's recorded sign-ins (`password`, `totp`, …)."},
    )


class AdminUserDetailSchema(Schema):
    """One user, as the console's user page shows it."""

    user = fields.Nested(AdminUserSchema, required=True)
    sign_in = fields.Nested(SignInWaysSchema, required=True)


class AdminSessionSchema(Schema):
    """A live session of a user."""

    id = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    auth_method = fields.String(required=True)
    user_agent = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
