"""The audit log: auth event names and ``record_event`` (adds an event and its webhooks to a transaction)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import insert

from trikchi.auth.models import AuthEvent
from trikchi.database import utcnow
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.metrics import count_event
from trikchi.notices import notify_event
from trikchi.outbox.services import enqueue_webhooks, webhook_body, webhooks_wanted

log = logging.getLogger(__name__)


class Events:
    """Names of the auth events in the audit log."""

    REGISTERED = "registered"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    REUSE_DETECTED = "refresh_reuse_detected"
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    SESSION_REVOKED = "session_revoked"
    REAUTHENTICATED = "reauthenticated"
    REAUTHENTICATION_FAILED = "reauthentication_failed"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name, not a secret
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name, not a secret
    PASSWORD_RESET_REQUESTED = "password_reset_requested"  # noqa: S105 - an event name
    EMAIL_VERIFICATION_REQUESTED = "email_verification_requested"
    EMAIL_VERIFIED = "email_verified"
    ROLE_CHANGED = "role_changed"
    USER_DEACTIVATED = "user_deactivated"
    USER_REACTIVATED = "user_reactivated"
    PROFILE_UPDATED = "profile_updated"
    EMAIL_CHANGE_REQUESTED = "email_change_requested"
    EMAIL_CHANGED = "email_changed"
    ACCOUNT_DELETED = "account_deleted"
    # Moving from the seed's service (SPEC §12).
    SEED_TOKEN_EXCHANGED = "seed_token_exchanged"  # noqa: S105 - an event name, not a secret
    SEED_USER_IMPORTED = "seed_user_imported"
    # Second factors and passkeys (SPEC §8); details never hold a secret or a code.
    MFA_TOTP_ENABLED = "mfa_totp_enabled"
    MFA_TOTP_DISABLED = "mfa_totp_disabled"
    MFA_RECOVERY_CODES_REGENERATED = "mfa_recovery_codes_regenerated"
    MFA_CHALLENGE_FAILED = "mfa_challenge_failed"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"
    PASSKEY_RENAMED = "passkey_renamed"
    PASSKEY_LOGIN_FAILED = "passkey_login_failed"
    PASSKEY_COUNTER_REGRESSED = "passkey_counter_regressed"
    # Social sign-in (SPEC §9); its sign-ins are LOGIN_SUCCEEDED with method oidc:<provider>/telegram.
    IDENTITY_LINKED = "identity_linked"
    IDENTITY_UNLINKED = "identity_unlinked"
    SOCIAL_LOGIN_FAILED = "social_login_failed"


def record_event(
    type_: str,
    client: ClientInfo | None,
    user_id: int | None = None,
    session_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit event (and its webhook deliveries) to the current transaction; log and count it.

    The caller commits: the event and its deliveries are written, or neither is.
    """
    log.info(
        "auth event %s",
        type_,
        extra={
            "event": type_,
            "user_id": user_id,
            "session_id": session_id,
            "ip": client.ip if client else None,
        },
    )
    count_event(type_, details)
    # One INSERT on the transaction's connection (the ORM's unit of work cost more than the
    # row); pending ORM changes are flushed first so that the event can refer to them.
    db.session.flush()
    now = utcnow()
    row = {
        "created_at": now,
        "type": type_,
        "user_id": user_id,
        "session_id": session_id,
        "ip": client.ip if client else None,
        "user_agent": client.user_agent if client else None,
        "details": details,
    }
    if webhooks_wanted(type_):
        # Webhooks: the receivers' deliveries join the event's transaction (the outbox), named by its id.
        event_id = db.session.connection().execute(_INSERT_EVENT_RETURNING_ID, row).scalar_one()
        enqueue_webhooks(event_id, type_, webhook_body(type_, now, user_id, session_id, details), now)
    else:
        db.session.connection().execute(_INSERT_EVENT, row)
    # Security notices (SPEC §10) of the event types that have one; mailed from here so that
    # every feature's events get them without code of their own.
    notify_event(type_, client, user_id, details)


_INSERT_EVENT = insert(AuthEvent.__table__)
_INSERT_EVENT_RETURNING_ID = insert(AuthEvent.__table__).returning(AuthEvent.__table__.c.id)
