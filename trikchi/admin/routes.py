"""The ``/admin`` endpoints (role ``admin``)."""

from __future__ import annotations

from trikchi.admin import bans, services, stats
from trikchi.admin.schemas import (
    AdminSessionSchema,
    AdminUserDetailSchema,
    AdminUserSchema,
    AuditPageSchema,
    AuditQuerySchema,
    BanSchema,
    StatsQuerySchema,
    StatsSchema,
    UserPageSchema,
    UserPatchSchema,
    UserQuerySchema,
)
from trikchi.auth.guards import BEARER, current_user, enrollment_required, role_required
from trikchi.http import Blueprint, client_info, document_errors

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Staff administration (role admin).")


def admin_required(view):
    """The admin role, and a second factor when ``MFA_REQUIRED_ROLES`` asks for one (403 otherwise)."""
    return role_required("admin")(enrollment_required(view))


@blp.route("/users", methods=["GET"])
@admin_required
@blp.arguments(UserQuerySchema, location="query")
@blp.response(200, UserPageSchema)
@blp.doc(operationId="listUsers", security=BEARER)
@document_errors(blp, 401, 403)
def list_users(args):
    """Users, paginated; ``q`` searches email, name, phone number and id; filters by role and status.

    By id, `per_page` at most 100. `q` matches a part of the email or the name (wildcards are
    taken literally), a phone number: written as people write it (`90 123 45 67`), or a part of
    its digits, or the whole id. `role` keeps one role: guests (SPEC §15) are left out unless
    `role=guest` asks for them alone; `guests` counts them. `status`: `active` or `inactive`
    accounts.
    """
    return services.list_users(args["q"], args["page"], args["per_page"], args["role"], args["status"])


@blp.route("/users/<int:user_id>", methods=["GET"])
@admin_required
@blp.response(200, AdminUserDetailSchema)
@blp.doc(operationId="getUser", security=BEARER)
@document_errors(blp, 401, 403, 404)
def get_user(user_id):
    """One user, with the ways the account can sign in and the methods it signed in with.

    `sign_in` says whether a password is set, how many independent ways to sign in the account has
    (the rule that keeps the last one), which second factors are on, and the methods of its
    recorded sign-ins.
    """
    return services.user_details(user_id)


@blp.route("/users/<int:user_id>/sessions", methods=["GET"])
@admin_required
@blp.response(200, AdminSessionSchema(many=True))
@blp.doc(operationId="listUserSessions", security=BEARER)
@document_errors(blp, 401, 403, 404)
def list_user_sessions(user_id):
    """A user's live sessions, most recently used first.

    Sessions not revoked and not expired, with how each was signed in (`auth_method`) and the
    device it was opened from; end one with `DELETE /admin/users/<id>/sessions/<sid>`.
    """
    return services.list_user_sessions(user_id)


@blp.route("/users/<int:user_id>/sessions/<string:session_id>", methods=["DELETE"])
@admin_required
@blp.response(204)
@blp.doc(operationId="revokeUserSession", security=BEARER)
@document_errors(blp, 401, 403, 404)
def revoke_user_session(user_id, session_id):
    """End one session of a user: its refresh token stops working at once.

    404 when the session is not the user's. A `session_revoked` event names the admin (`by`).
    """
    services.revoke_user_session(current_user, user_id, session_id, client_info())


@blp.route("/users/<int:user_id>", methods=["PATCH"])
@admin_required
@blp.arguments(UserPatchSchema)
@blp.response(200, AdminUserSchema)
@blp.doc(operationId="updateUser", security=BEARER)
@document_errors(blp, 400, 401, 403, 404, 409, 415)
def update_user(args, user_id):
    """Change a user's role and/or active flag (deactivation ends their sessions).

    Send `role` and/or `is_active`. Deactivating ends every session of the user at once. The last
    active admin can be neither demoted nor deactivated (409 `last_admin`). Each change is an audit
    event.
    """
    return services.update_user(current_user, user_id, client_info(), **args)


@blp.route("/users/<int:user_id>/ban", methods=["POST"])
@admin_required
@blp.arguments(BanSchema)
@blp.response(200, AdminUserSchema)
@blp.doc(operationId="banUser", security=BEARER)
@document_errors(blp, 400, 401, 403, 404, 409, 415)
def ban_user(args, user_id):
    """Ban a user until `until` (null or left out: until lifted), with a `reason` for staff.

    Every session of the user ends at once, and every way of signing in answers 403
    `account_banned` with `banned_until` until the ban ends or is lifted. Banning a banned user
    replaces the end and the reason. `until` must be in the future (422); the last active admin
    cannot be banned (409 `last_admin`). An audit event (and webhook) `user_banned`.
    """
    return bans.ban_user(current_user.id, user_id, args["until"], args["reason"], client_info())


@blp.route("/users/<int:user_id>/ban", methods=["DELETE"])
@admin_required
@blp.response(200, AdminUserSchema)
@blp.doc(operationId="unbanUser", security=BEARER)
@document_errors(blp, 401, 403, 404)
def unban_user(user_id):
    """Lift a user's ban: they can sign in again. An audit event (and webhook) `user_unbanned`.

    Lifting the ban of a user who is not banned changes nothing.
    """
    return bans.unban_user(current_user.id, user_id, client_info())


@blp.route("/audit", methods=["GET"])
@admin_required
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditPageSchema)
@blp.doc(operationId="listAuditEvents", security=BEARER)
@document_errors(blp, 401, 403)
def audit(args):
    """Auth events, newest first, filtered by user and/or type.

    Sign-ins, failures, logouts, rotations, reuse detections, password and role changes, with time,
    user, IP and user agent — never a password or a token.
    """
    return services.list_events(args["user_id"], args["type"], args["page"], args["per_page"])


@blp.route("/stats", methods=["GET"])
@admin_required
@blp.arguments(StatsQuerySchema, location="query")
@blp.response(200, StatsSchema)
@blp.doc(operationId="getStats", security=BEARER)
@document_errors(blp, 401, 403)
def get_stats(args):
    """Sign-ins, registrations and SMS codes per day, and the sessions live now.

    `days` (1–90, default 30) UTC days up to today, oldest first, each present with zeros when
    nothing happened. `sign_ins` counts by method the sign-ins that opened a session
    (`succeeded`) and the refused ones (`failed`: a wrong password, passkey, social sign-in or
    second-step code); `registrations` new accounts; `sms_sent` SMS codes sent (`phone_code_sent`
    events). `active_sessions`: sessions not revoked, not expired, of active users.
    """
    return stats.sign_in_stats(args["days"])
