"""Schemas of the deliveries admin API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from trikchi.admin.schemas import PageArgsSchema, PageSchema
from trikchi.outbox.models import KINDS, STATUSES
from trikchi.outbox.services import public_target
from trikchi.sms import mask_number


class DeliveryQuerySchema(PageArgsSchema):
    """``GET /admin/deliveries`` query: filter by status and kind."""

    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))


class DeliverySchema(Schema):
    """One webhook delivery, mail or SMS, without its content."""

    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    event_id = fields.Integer(
        allow_none=True, metadata={"description": "The audit event a webhook announces."}
    )
    event_type = fields.String(allow_none=True)
    target = fields.Method(
        "get_target",
        dump_only=True,
        metadata={
            "type": "string",
            "nullable": True,
            "description": (
                "A webhook's receiver (without credentials); an SMS's number, masked (`+99890*****67`);"
                " none for a mail."
            ),
        },
    )
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(required=True)
    last_error = fields.String(
        allow_none=True, metadata={"description": "What went wrong last (no secrets)."}
    )
    created_at = fields.DateTime(required=True)
    sent_at = fields.DateTime(allow_none=True)

    def get_target(self, delivery) -> str | None:
        """Webhooks: the receiver URL without credentials or query; SMS: the masked number; mails: none."""
        if delivery.kind == "sms":
            return mask_number((delivery.payload or {}).get("to"))
        return public_target(delivery.target)


class DeliveryPageSchema(PageSchema):
    """A page of deliveries, newest first."""

    items = fields.List(fields.Nested(DeliverySchema), required=True)
