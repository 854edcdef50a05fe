"""Outgoing mail over SMTP (Flask-Mail), sent off the request thread.

Sending in the background means a request that mails (password reset) takes the
same time whether or not a mail goes out, and a slow SMTP server never holds a
worker. With no ``MAIL_SERVER``, development and testing write the message to the
log instead; production logs that nothing was sent, without the body.
"""

from __future__ import annotations

import atexit
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask, current_app
from flask_mail import Mail, Message

log = logging.getLogger(__name__)

mail = Mail()
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="trikchi-mail")
atexit.register(_executor.shutdown, wait=True)


def init_mail(app: Flask) -> None:
    """Bind Flask-Mail to the app."""
    mail.init_app(app)


def send_mail(to: str, subject: str, text: str, html: str) -> Future[None]:
    """Queue a plain-text + HTML message to ``to``; returns the sending future."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    message = Message(subject=subject, recipients=[to], body=text, html=html)
    return _executor.submit(_deliver, app, message)


def _deliver(app: Flask, message: Message) -> None:
    with app.app_context():
        if not app.config.get("MAIL_SERVER"):
            if app.config["TRIKCHI_CONFIG"] == "production":
                log.error("mail not sent: MAIL_SERVER is not set", extra={"subject": message.subject})
            else:
                log.warning(
                    "mail (not sent, no MAIL_SERVER)\nTo: %s\nSubject: %s\n\n%s",
                    ", ".join(message.recipients),
                    message.subject,
                    message.body,
                )
            return
        try:
            mail.send(message)
        except Exception:  # noqa: BLE001 - a failed mail must be logged, never crash the worker
            log.exception("mail delivery failed", extra={"subject": message.subject})
