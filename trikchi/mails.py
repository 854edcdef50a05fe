"""Mails from templates: ``templates/mail/<lang>/<kind>.txt`` (its ``subject`` set at the top)
and ``.html``, one pair per kind and language, rendered in the recipient's language and
queued in the outbox (``trikchi.outbox.services.enqueue_mail``) in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, current_app
from jinja2 import Environment, StrictUndefined

from trikchi.database import utcnow
from trikchi.i18n import LOCALES, user_locale
from trikchi.outbox.services import enqueue_mail

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
    enqueue_mail(address, subject, text, html)
    return True


def format_when(moment: datetime | None = None) -> str:
    """A time as mails show it: ``2026-11-25 16:40 UTC``."""
    return (moment or utcnow()).strftime("%Y-%m-%d %H:%M UTC")
