"""Mail: the SMTP server the outbox worker sends through (Flask-Mail)."""

from __future__ import annotations

from typing import Any

from trikchi.settings.base import ConfigError, Flag, Integer, Section, Text


class Mail(Section):
    """Without ``MAIL_SERVER`` mails are logged, not sent."""

    title = "Mail"

    MAIL_SERVER = Text(None, "SMTP server host (unset: mails are logged, not sent)")
    MAIL_PORT = Integer(587, "SMTP port", minimum=1, maximum=65535)
    MAIL_USE_TLS = Flag(True, "STARTTLS after connecting")
    MAIL_USE_SSL = Flag(False, "TLS from the first byte (port 465)")
    MAIL_USERNAME = Text(None, "SMTP user")
    MAIL_PASSWORD = Text(None, "SMTP password", secret=True)
    MAIL_DEFAULT_SENDER = Text("trikchi <no-reply@trikchi.uz>", "`From` of every mail")

    def check(self) -> None:
        if self.MAIL_USE_TLS and self.MAIL_USE_SSL:
            raise ConfigError(
                "MAIL_USE_TLS and MAIL_USE_SSL cannot both be true: set MAIL_USE_TLS=false for SMTPS"
                " (port 465), or MAIL_USE_SSL=false for STARTTLS (port 587)"
            )

    def derived(self) -> dict[str, Any]:
        # Flask-Mail would silently drop mail under TESTING; the tests use a real SMTP server.
        return {"MAIL_SUPPRESS_SEND": False}
