"""``/admin/deliveries``: failed webhooks, mails and SMS, and retrying them (role ``admin``)."""

from __future__ import annotations

from trikchi.admin.delivery_schemas import DeliveryPageSchema, DeliveryQuerySchema, DeliverySchema
from trikchi.admin.routes import admin_required
from trikchi.auth.guards import BEARER
from trikchi.http import Blueprint, document_errors
from trikchi.outbox import services

blp = Blueprint(
    "deliveries",
    __name__,
    url_prefix="/admin",
    description="The outbox: webhook, mail and SMS deliveries (role admin).",
)


@blp.route("/deliveries", methods=["GET"])
@admin_required
@blp.arguments(DeliveryQuerySchema, location="query")
@blp.response(200, DeliveryPageSchema)
@blp.doc(operationId="listDeliveries", security=BEARER)
@document_errors(blp, 401, 403)
def list_deliveries(args):
    """Webhook deliveries, mails and SMS, newest first; `status=dead` lists the failed ones.

    Filter by `status` (`pending`, `delivering`, `sent`, `dead`) and/or `kind` (`webhook`, `mail`,
    `sms`). `last_error` says what went wrong last (an HTTP status, a timeout, an SMTP error, each
    SMS gateway's failure), never a body. No content is shown: an SMS's `target` is its number,
    masked, and its text (a sign-in code) never leaves the server.
    """
    return services.list_deliveries(args["status"], args["kind"], args["page"], args["per_page"])


@blp.route("/deliveries/<int:delivery_id>/retry", methods=["POST"])
@admin_required
@blp.response(200, DeliverySchema)
@blp.doc(operationId="retryDelivery", security=BEARER)
@document_errors(blp, 401, 403, 404, 409)
def retry_delivery(delivery_id):
    """Send a dead delivery again: a fresh set of attempts, due now.

    Only a `dead` delivery can be retried (409 `conflict` otherwise). The worker picks it up at its
    next poll; a webhook keeps its `webhook-id`, so receivers can tell it is the same event. An
    SMS is sent with its text as queued; the sign-in code in it may have expired meanwhile.
    """
    return services.retry_delivery(delivery_id)
