"""Outgoing mail: written to the outbox in the caller's transaction, sent by the worker.

``trikchi.mails.mail_user`` only adds an outbox row; the caller's commit makes the mail exist
together with the change that caused it, and ``flask worker`` (``trikchi.outbox.worker``) talks
to the SMTP server, retrying on failure. A request that mails therefore never waits for SMTP;
one that may or may not mail (password reset) queues a composed mail either way
(``trikchi.outbox.services.composer``), so it does the same work whether or not a mail goes
out. With no ``MAIL_SERVER``,
the worker writes the message to the log in development and testing; production logs
that nothing was sent (without the body) and retries it later.
"""

from __future__ import annotations

import logging
import socket

from flask import Flask, current_app
from flask_mail import Mail, Message

from trikchi.addresses import smtp_address

log = logging.getLogger(__name__)

mail = Mail()


class MailNotConfigured(RuntimeError):
    """Production has no ``MAIL_SERVER``: the mail stays in the outbox and is retried."""


def init_mail(app: Flask) -> None:
    """Bind Flask-Mail to the app."""
    mail.init_app(app)


def deliver_mail(to: str, subject: str, text: str, html: str, timeout: float) -> None:
    """Send one message now over SMTP (the worker's side); raises when it was not sent."""
    app = current_app
    if not app.config.get("MAIL_SERVER"):
        if app.config["TRIKCHI_CONFIG"] == "production":
            log.error("mail not sent: MAIL_SERVER is not set", extra={"subject": subject})
            raise MailNotConfigured("MAIL_SERVER is not set")
        log.warning("mail (not sent, no MAIL_SERVER)\nTo: %s\nSubject: %s\n\n%s", to, subject, text)
        return
    message = Message(subject=subject, recipients=[smtp_address(to)], body=text, html=html)
    # Flask-Mail opens smtplib connections without a timeout; a hung server must not hold the
    # worker (and outlive its lease), so new sockets get one for the time of the send.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        mail.send(message)
    finally:
        socket.setdefaulttimeout(previous)
