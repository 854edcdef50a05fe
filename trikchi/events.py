"""The audit log: the ``auth_events`` table, event names, and ``record_event``.

``record_event`` adds one row to the caller's transaction and sends ``signals.event_recorded``:
features subscribe to it (notices mail, the outbox queues webhooks, metrics count) without
the core knowing them, and what they write joins the same commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, insert
from sqlalchemy.orm import Mapped, mapped_column

from trikchi.database import NEVER_REUSE_IDS, UTCDateTime, utcnow
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.signals import event_recorded

log = logging.getLogger(__name__)


class AuthEvent(db.Model):
    """An audit record of an auth event; never holds a password or a token."""

    __tablename__ = "auth_events"
    # Events of some types over a range of days by method (``/admin/stats``) read this index alone,
    # no row; it also serves every lookup by type (the audit log's filter).
    __table_args__ = (
        Index("ix_auth_events_type_created_at_method", "type", "created_at", "method"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    session_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # ``details["method"]`` (a sign-in's ``password``, ``passkey``, ``oidc:<provider>``, …) as a
    # column of its own, so that counting sign-ins by method reads no JSON (``record_event``).
    method: Mapped[str | None] = mapped_column(String(40), nullable=True)


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
    USER_BANNED = "user_banned"
    USER_UNBANNED = "user_unbanned"
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
    # Phone numbers and SMS codes (SPEC §14); details hold a masked number, never a code. Its
    # sign-ins are LOGIN_SUCCEEDED / LOGIN_FAILED with method phone.
    PHONE_CODE_SENT = "phone_code_sent"
    PHONE_VERIFIED = "phone_verified"
    PHONE_CHANGED = "phone_changed"
    # Guests (SPEC §15): created; become a customer keeping the id (details: the method); or,
    # proven to own another account, removed into it (details: guest_id and user_id).
    GUEST_CREATED = "guest_created"
    GUEST_UPGRADED = "guest_upgraded"
    GUEST_MERGED = "guest_merged"


@dataclass(frozen=True)
class RecordedEvent:
    """What ``signals.event_recorded`` carries: the event's row (its id included) and its client."""

    id: int
    type: str
    created_at: datetime
    user_id: int | None
    session_id: str | None
    details: dict[str, Any] | None
    client: ClientInfo | None


def record_event(
    type_: str,
    client: ClientInfo | None,
    user_id: int | None = None,
    session_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the current transaction, log it, and tell the subscribers.

    The caller commits: the event and whatever its subscribers wrote (webhook deliveries,
    notice mails) are written, or none of them is.
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
        "method": _method_of(details),
    }
    event_id = db.session.connection().execute(_INSERT_EVENT, row).scalar_one()
    event = RecordedEvent(event_id, type_, now, user_id, session_id, details, client)
    event_recorded.send(current_app._get_current_object(), event=event)  # type: ignore[attr-defined]


def _method_of(details: dict[str, Any] | None) -> str | None:
    """The method an event's details name, if any (at most the column's 40 characters)."""
    method = details.get("method") if details else None
    return method[:40] if isinstance(method, str) else None


_INSERT_EVENT = insert(AuthEvent.__table__).returning(AuthEvent.__table__.c.id)
