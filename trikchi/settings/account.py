"""Self-service: the links mails carry, languages and security notices (SPEC §10)."""

from __future__ import annotations

from trikchi.settings.base import Flag, Integer, Section, Text


class Account(Section):
    """What a user does for themselves by mail, in their language, and what they are told."""

    title = "Self-service, languages and security notices"

    EMAIL_VERIFY_HOURS = Integer(48, "lifetime of an email verification link, hours", minimum=1)
    PASSWORD_RESET_MINUTES = Integer(30, "lifetime of a password reset link, minutes", minimum=1)
    EMAIL_CHANGE_HOURS = Integer(24, "lifetime of an email-change link, hours", minimum=1)
    DEFAULT_LOCALE = Text(
        "en",
        "language when neither the user nor `Accept-Language` chooses",
        choices=("uz", "ru", "en"),
    )
    NOTIFY_NEW_DEVICE = Flag(True, "mail a notice on a sign-in from a new device")
    NOTIFY_PASSWORD_CHANGED = Flag(True, "mail a notice when the password is changed or reset")
    NOTIFY_EMAIL_CHANGED = Flag(
        True, "mail the old address when a change of email is asked for and when it is done"
    )
    NOTIFY_MFA_CHANGED = Flag(
        True, "mail a notice when TOTP is turned on or off, or a passkey is added or removed"
    )
