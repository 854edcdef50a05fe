"""Mails from templates: ``templates/mail/<lang>/<kind>.txt`` (its ``subject`` set at the top)
and ``.html``, one pair per kind and language, rendered in the recipient's language and
handed to ``trikchi.mail.send_mail``.

A *composed* mail is written by the outbox worker instead: the request queues only the
name of its composer and a few secret-free values, and the composer (registered by the
feature with ``@composer``) renders it at sending time, or decides there is nothing to
send. A request that may or may not mail (a password reset for an address that may have
no account) thus does the same work either way, and no live link waits in the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from flask import Flask, current_app
from jinja2 import Environment, StrictUndefined

from trikchi.database import utcnow
from trikchi.i18n import LOCALES, user_locale
from trikchi.mail import send_mail

# Every kind of mail; each exists as text and HTML in every language of ``LOCALES``.
KINDS = (
    "verify_email",
    "password_reset",
    "confirm_email_change",
    "email_change_requested",
    "email_changed",
    "account_deleted",
    "new_device",
    "password_changed",
    "second_factor_changed",
)


def _environment(app: Flask) -> Environment:
    """The app's Jinja environment, but strict: a mail with a missing value fails loudly."""
    env = app.extensions.get("trikchi_mail_jinja")
    if env is None:
        env = app.jinja_env.overlay(undefined=StrictUndefined)
        app.extensions["trikchi_mail_jinja"] = env
    return env


def render_mail(kind: str, locale: str, **context: Any) -> tuple[str, str, str]:
    """``(subject, text, html)`` of mail ``kind`` in ``locale``."""
    if kind not in KINDS or locale not in LOCALES:
        raise ValueError(f"no mail {kind!r} in {locale!r}")
    env = _environment(current_app._get_current_object())  # type: ignore[attr-defined]
    values = {"frontend_url": current_app.config["FRONTEND_URL"], "lang": locale, **context}
    module = env.get_template(f"mail/{locale}/{kind}.txt").make_module(values)
    subject = str(module.subject).strip()
    text = str(module).strip() + "\n"
    html = env.get_template(f"mail/{locale}/{kind}.html").render(subject=subject, **values)
    return subject, text, html


def mail_user(user: Any, kind: str, to: str | None = None, **context: Any) -> bool:
    """Send mail ``kind`` to ``user`` (or to ``to``) in the user's language; False without an address."""
    address = to or getattr(user, "email", None)
    if not address:  # an account without email (Telegram sign-in): nothing to send to
        return False
    subject, text, html = render_mail(kind, user_locale(user), name=user.name, **context)
    send_mail(address, subject, text, html)
    return True


class ComposedMail(NamedTuple):
    """What a composer makes: the recipient and the rendered mail."""

    to: str
    subject: str
    text: str
    html: str


# name -> composer(values) -> the mail, or None when there is nothing to send.
Composer = Callable[[dict[str, Any]], ComposedMail | None]
_COMPOSERS: dict[str, Composer] = {}


def composer(name: str) -> Callable[[Composer], Composer]:
    """Register the function that writes composed mail ``name`` in the worker."""

    def register(function: Composer) -> Composer:
        _COMPOSERS[name] = function
        return function

    return register


def queue_composed_mail(name: str, **values: Any) -> None:
    """Queue mail ``name`` for the worker to compose, in the current transaction (the caller commits).

    ``values`` (JSON, stored until the mail is sent) must hold no secret and no address.
    """
    from trikchi.outbox.services import enqueue_composed_mail

    if name not in _COMPOSERS:
        raise ValueError(f"no composer for mail {name!r}")
    enqueue_composed_mail(name, values)


def compose_mail(payload: dict[str, Any]) -> ComposedMail | None:
    """The worker's side: the mail a queued payload stands for, or None (nothing to send)."""
    return _COMPOSERS[payload["compose"]](payload.get("values") or {})


def format_when(moment: datetime | None = None) -> str:
    """A time as mails show it: ``2026-11-25 16:40 UTC``."""
    return (moment or utcnow()).strftime("%Y-%m-%d %H:%M UTC")
