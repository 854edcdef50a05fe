"""Schemas of the admin API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from trikchi.auth.models import GUEST, MAX_ID, ROLES
from trikchi.auth.schemas import NO_CONTROL_CHARACTERS, UserSchema
from trikchi.database import utcnow

# ``status`` of ``GET /admin/users``: the account's active flag.
USER_STATUSES = ("active", "inactive")


class PageArgsSchema(Schema):
    """``page`` and ``per_page`` query arguments."""

    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class UserQuerySchema(PageArgsSchema):
    """``GET /admin/users`` query: search by email, name, phone number or id, filter by role (guests
    only when asked) and status."""

    q = fields.String(load_default=None, validate=[validate.Length(max=254), NO_CONTROL_CHARACTERS])
    role = fields.String(
        load_default=None,
        validate=validate.OneOf([*ROLES, GUEST]),
        metadata={"description": "Only users of this role; guests are listed only with `guest`."},
    )
    status = fields.String(load_default=None, validate=validate.OneOf(USER_STATUSES))


class AuditQuerySchema(PageArgsSchema):
    """``GET /admin/audit`` query."""

    user_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    type = fields.String(load_default=None, validate=[validate.Length(max=40), NO_CONTROL_CHARACTERS])


class AdminUserSchema(UserSchema):
    """A user as staff see it: the user object plus the account state."""

    is_active = fields.Boolean(required=True)
    updated_at = fields.DateTime(required=True)
    banned = fields.Method(
        "get_banned",
        dump_only=True,
        metadata={"type": "boolean", "description": "Banned now (a timed ban that ended is not)."},
    )
    banned_at = fields.DateTime(allow_none=True, metadata={"description": "When the ban began; null: none."})
    banned_until = fields.DateTime(
        allow_none=True, metadata={"description": "When the ban ends; null with `banned`: until lifted."}
    )
    ban_reason = fields.String(allow_none=True, metadata={"description": "Why, for staff."})

    def get_banned(self, user: Any) -> bool:
        """Whether the user is banned now."""
        return bool(user.is_banned(utcnow()))


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


class BanSchema(Schema):
    """``POST /admin/users/<id>/ban`` body: until when (null or left out: until lifted), and why."""

    class Meta:
        unknown = RAISE

    until = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        default_timezone=UTC,
        # Far enough for any ban, near enough that every offset still converts to UTC.
        validate=validate.Range(max=datetime(9000, 1, 1, tzinfo=UTC)),
        metadata={
            "description": "When the ban ends (ISO-8601, UTC unless an offset is given); in the future."
        },
    )
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=500), NO_CONTROL_CHARACTERS],
        metadata={"description": "Why, for staff (never shown to the user)."},
    )


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
    guests = fields.Integer(
        required=True,
        metadata={
            "description": "How many guests there are (left out of `items` and `total` unless asked for)."
        },
    )


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
