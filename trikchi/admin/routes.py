"""The ``/admin`` endpoints (role ``admin``)."""

from __future__ import annotations

from flask_jwt_extended import current_user

from trikchi.admin import services
from trikchi.admin.schemas import (
    AdminUserSchema,
    AuditPageSchema,
    AuditQuerySchema,
    UserPageSchema,
    UserPatchSchema,
    UserQuerySchema,
)
from trikchi.auth.guards import BEARER, role_required
from trikchi.http import Blueprint, client_info, document_errors

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Staff administration (role admin).")
admin_required = role_required("admin")


@blp.route("/users", methods=["GET"])
@admin_required
@blp.arguments(UserQuerySchema, location="query")
@blp.response(200, UserPageSchema)
@blp.doc(security=BEARER)
@document_errors(blp, 401, 403)
def list_users(args):
    """Users, paginated; ``q`` searches email and name."""
    return services.list_users(args["q"], args["page"], args["per_page"])


@blp.route("/users/<int:user_id>", methods=["PATCH"])
@admin_required
@blp.arguments(UserPatchSchema)
@blp.response(200, AdminUserSchema)
@blp.doc(security=BEARER)
@document_errors(blp, 400, 401, 403, 404, 409, 415)
def update_user(args, user_id):
    """Change a user's role and/or active flag (deactivation ends their sessions)."""
    return services.update_user(current_user, user_id, client_info(), **args)


@blp.route("/audit", methods=["GET"])
@admin_required
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditPageSchema)
@blp.doc(security=BEARER)
@document_errors(blp, 401, 403)
def audit(args):
    """Auth events, newest first, filtered by user and/or type."""
    return services.list_events(args["user_id"], args["type"], args["page"], args["per_page"])
