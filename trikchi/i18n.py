"""Languages (SPEC §10): Flask-Babel set-up, the locale of a request and of a mail, and the
translation of error messages.

The request's language is the signed-in user's ``locale``, else the best match of
``Accept-Language``, else ``DEFAULT_LOCALE``. Error messages stay plain English strings
where they are raised (marked with ``N_`` for extraction); ``translate`` looks them up in
the catalog when the error response is built, so the ``error`` code never changes and a
string that has no translation is answered in English rather than not at all.

Catalogs: ``trikchi/translations/<lang>/LC_MESSAGES/messages.po`` (compiled to ``.mo`` by
``make translations``, which ``make run`` and ``make test`` depend on).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, force_locale, gettext

LOCALES = ("uz", "ru", "en")
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

babel = Babel()


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark ``message`` for extraction; it is translated later, when the response is built."""
    return message


def init_app(app: Flask) -> None:
    """Bind Flask-Babel: catalogs in ``trikchi/translations``, the locale chosen per request."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", app.config["DEFAULT_LOCALE"])
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    babel.init_app(app, locale_selector=select_locale)
    if not all((TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.mo").exists() for locale in LOCALES):
        # Not built yet (`make translations` is the way): build them now rather than answer
        # in English; a read-only installation says what is missing instead.
        try:
            compile_catalogs()
        except OSError as error:
            app.logger.warning("message catalogs not compiled (%s): run `make translations`", error)


def select_locale() -> str:
    """The signed-in user's language, else the best ``Accept-Language`` match, else the default."""
    user = g.get("trikchi_user")
    locale = getattr(user, "locale", None)
    if locale in LOCALES:
        return locale
    return request_locale()


def request_locale() -> str:
    """The best ``Accept-Language`` match among the supported languages, else ``DEFAULT_LOCALE``."""
    if has_request_context():
        best = request.accept_languages.best_match(LOCALES)
        if best:
            return best
    return current_app.config["DEFAULT_LOCALE"]


def user_locale(user: Any) -> str:
    """The language to write to ``user`` in: theirs if set, else the request's."""
    locale = getattr(user, "locale", None)
    return locale if locale in LOCALES else request_locale()


def translate(message: str, locale: str | None = None) -> str:
    """``message`` in the request's language (or ``locale``); unchanged when the catalog lacks it."""
    if locale is not None:
        with force_locale(locale):
            return translate(message)
    translated = gettext(message)
    if translated != message:
        return translated
    return _translate_formatted(message)


def translate_errors(errors: Any) -> Any:
    """Translate every message of a field → messages map (nested as marshmallow nests it)."""
    if isinstance(errors, str):
        return translate(errors)
    if isinstance(errors, dict):
        return {key: translate_errors(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [translate_errors(value) for value in errors]
    return errors


# Messages that reach the client already formatted (marshmallow's validators, the password
# policy): the template is the catalog entry, the values are carried over by pattern.
FORMATTED_MESSAGES = (
    N_("Length must be between {min} and {max}."),
    N_("Shorter than minimum length {min}."),
    N_("Longer than maximum length {max}."),
    N_("Length must be {equal}."),
    N_("Must be one of: {choices}."),
    N_("Password must be between {min} and {max} characters."),
    N_("This needs the {role} role."),
)

# marshmallow's and webargs' fixed messages, here so that the catalogs carry them.
FIXED_MESSAGES = (
    N_("Missing data for required field."),
    N_("Unknown field."),
    N_("Field may not be null."),
    N_("Not a valid string."),
    N_("Not a valid integer."),
    N_("Not a valid boolean."),
    N_("Not a valid email address."),
    N_("Not a valid datetime."),
    N_("Invalid input type."),
    N_("Invalid value."),
    N_("String does not match expected pattern."),
    N_("Content-Type must be application/json."),
    N_("Invalid JSON body."),
)


@cache
def _formatted_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    patterns = []
    for template in FORMATTED_MESSAGES:
        regex = re.escape(template)
        for name in re.findall(r"\{(\w+)\}", template):
            regex = regex.replace(re.escape("{" + name + "}"), f"(?P<{name}>.+?)", 1)
        patterns.append((re.compile(f"^{regex}$", re.DOTALL), template))
    return tuple(patterns)


def _translate_formatted(message: str) -> str:
    for pattern, template in _formatted_patterns():
        match = pattern.match(message)
        if match:
            translated = gettext(template)
            if translated == template:
                return message
            try:
                return translated.format(**match.groupdict())
            except (KeyError, IndexError, ValueError):
                return message
    return message


def compile_catalogs(directory: Path = TRANSLATIONS_DIR, locales: Iterable[str] = LOCALES) -> None:
    """Compile each ``messages.po`` to ``messages.mo`` when missing or older (Babel's API)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for locale in locales:
        folder = directory / locale / "LC_MESSAGES"
        po, mo = folder / "messages.po", folder / "messages.mo"
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=locale)
        with mo.open("wb") as target:
            write_mo(target, catalog)
