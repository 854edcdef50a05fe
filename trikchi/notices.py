"""Security notices by mail (SPEC §10), sent when the audit event that records the change is.

``notify_event`` receives every recorded audit event (``signals.event_recorded``); the mapping
below says which event types make a notice, of which mail kind, under which switch. A feature that adds a
security event (a second factor, a passkey) gets its notice by an entry here, without
code of its own. The email change notices go to the *old* address, so the email service
sends them itself (``notify_email_changed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_request_context

from trikchi import signals
from trikchi.auth.devices import is_known_device
from trikchi.auth.models import User
from trikchi.events import RecordedEvent
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.mails import format_when, mail_user

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """The mail an event type sends, the setting that switches it off, and its template values."""

    kind: str
    setting: str
    values: dict[str, Any]


# event type -> notice. The names of #14's events are literals: they need no import.
NOTICES: dict[str, Notice] = {
    "password_changed": Notice("password_changed", "NOTIFY_PASSWORD_CHANGED", {"reset": False}),
    "password_reset": Notice("password_changed", "NOTIFY_PASSWORD_CHANGED", {"reset": True}),
    "mfa_totp_enabled": Notice("second_factor_changed", "NOTIFY_MFA_CHANGED", {"change": "totp_enabled"}),
    "mfa_totp_disabled": Notice("second_factor_changed", "NOTIFY_MFA_CHANGED", {"change": "totp_disabled"}),
    "passkey_added": Notice("second_factor_changed", "NOTIFY_MFA_CHANGED", {"change": "passkey_added"}),
    "passkey_removed": Notice("second_factor_changed", "NOTIFY_MFA_CHANGED", {"change": "passkey_removed"}),
    "phone_changed": Notice("second_factor_changed", "NOTIFY_PHONE_CHANGED", {"change": "phone_changed"}),
}
SIGN_IN = "login_succeeded"
# Sign-ins that are no device's first visit: a seed token is a shop's migration, not a person.
_NOT_A_DEVICE = {"seed"}


def init_app(_app: Flask) -> None:
    """Mail the notices of recorded events (connected once, whatever the app)."""
    signals.event_recorded.connect(notify_event)


def notify_event(_app: Flask, event: RecordedEvent) -> None:
    """Mail the notice of an event to its user, if the event type has one and it is switched on."""
    type_, client, user_id, details = event.type, event.client, event.user_id, event.details
    if user_id is None:
        return
    if type_ == SIGN_IN:
        _notify_sign_in(client, user_id, details)
        return
    notice = NOTICES.get(type_)
    if notice is None or not current_app.config.get(notice.setting, True):
        return
    user = _user(user_id)
    if user is not None:
        mail_user(user, notice.kind, when=format_when(), **notice.values)


def _notify_sign_in(client: ClientInfo | None, user_id: int, details: dict[str, Any] | None) -> None:
    """A sign-in from a browser without a device cookie of the account: "new device"."""
    method = (details or {}).get("method")
    if not current_app.config["NOTIFY_NEW_DEVICE"] or method in _NOT_A_DEVICE or not has_request_context():
        return
    user = _user(user_id)
    if user is None or not user.email or is_known_device(user.email):
        return
    mail_user(
        user,
        "new_device",
        when=format_when(),
        ip=client.ip if client else None,
        user_agent=client.user_agent if client else None,
    )


def notify_email_changed(user: Any, old_email: str, new_email: str, kind: str) -> None:
    """Tell the old address that the email is changing (``email_change_requested``) or changed."""
    if current_app.config["NOTIFY_EMAIL_CHANGED"]:
        mail_user(user, kind, to=old_email, new_email=new_email, when=format_when())


def _user(user_id: int) -> Any:
    return db.session.get(User, user_id)
