"""Configuration for trikchi, read from the environment (and a ``.env`` file).

Each concern declares, reads and checks its own variables in ``trikchi/settings/`` (core,
passwords, tokens, signing keys, mail, self-service, second factors, social sign-in, phone numbers,
the seed, the outbox, SMS gateways, CAPTCHA, metrics, rate limits, abuse protection; gunicorn's in
``serving``): that is the one table of variables, defaults and meanings. This module puts the
concerns together: ``Config`` reads them all, and ``DevelopmentConfig``, ``TestingConfig`` and
``ProductionConfig`` differ in a few defaults (``own_defaults``) and production's refusals (weak
secrets, codes in the log). A bad value raises ``ConfigError`` naming the variable and what to do.

``create_app`` picks a class by name (``TRIKCHI_CONFIG``) and instantiates it, so every value is
read from the environment when the app is built, not when this module is imported.

``python config.py`` prints the tables of docs/configuration.md (a test checks they agree).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from dotenv import load_dotenv

from trikchi.settings.abuse import Abuse
from trikchi.settings.account import Account
from trikchi.settings.base import ConfigError, Derived, Section, Setting, Text, default_text
from trikchi.settings.captcha import Captcha
from trikchi.settings.core import Core
from trikchi.settings.guests import Guests
from trikchi.settings.keys import MIN_SECRET_BYTES, SigningKeys
from trikchi.settings.limits import Limits
from trikchi.settings.mail import Mail
from trikchi.settings.metrics import Metrics
from trikchi.settings.outbox import Outbox
from trikchi.settings.passwords import Passwords
from trikchi.settings.phone import Phone
from trikchi.settings.second_factors import SecondFactors
from trikchi.settings.seed import Seed
from trikchi.settings.serving import Serving
from trikchi.settings.sms import Sms
from trikchi.settings.social import GOOGLE_DISCOVERY_URL, Social
from trikchi.settings.tokens import Tokens

__all__ = [
    "GOOGLE_DISCOVERY_URL",
    "Config",
    "ConfigError",
    "DevelopmentConfig",
    "ProductionConfig",
    "TestingConfig",
    "load_config",
]

BASE_DIR = Path(__file__).resolve().parent

# A .env file next to this one is read, but never overrides the real environment.
load_dotenv(BASE_DIR / ".env")

HOW_TO_MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
RANDOM_SECRET = Derived("random per process", lambda _: secrets.token_urlsafe(48))


class Config:
    """Settings shared by every environment: every concern's variables, with their declared defaults."""

    NAME = "base"
    #: The concerns, in the order they are read: a derived default may use an earlier one's settings.
    sections: ClassVar[tuple[type[Section], ...]] = (
        Core,
        Passwords,
        Tokens,
        SigningKeys,
        Mail,
        Account,
        SecondFactors,
        Social,
        Phone,
        Guests,
        Seed,
        Outbox,
        Sms,
        Captcha,
        Metrics,
        Limits,
        Abuse,
    )
    #: This environment's defaults where they differ from the declared ones (subclasses add theirs).
    own_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        defaults = self.defaults()
        for section in self.sections:
            self.__dict__.update(section(environ, defaults, self.__dict__).settings())

        # flask-smorest / OpenAPI
        self.API_TITLE = "trikchi"
        self.API_VERSION = "1.0.0"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_SWAGGER_UI_PATH = "docs"
        self.OPENAPI_SWAGGER_UI_URL = "/docs/assets/"
        from trikchi.openapi import spec_options

        self.API_SPEC_OPTIONS = spec_options()

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The ``own_defaults`` of this class and the classes it extends (the nearest wins)."""
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("own_defaults", {}))
        return merged

    def validate(self) -> None:
        """Raise ``ConfigError`` when this environment cannot run with these settings (each concern
        has checked its own variables already; these rules span two)."""
        # An SMS may try two gateways, each for up to the timeout, within one lease.
        timeout, lease = getattr(self, "OUTBOX_TIMEOUT_SECONDS", 0), getattr(self, "OUTBOX_LEASE_SECONDS", 0)
        if getattr(self, "SMS_FALLBACK_PROVIDER", None) and lease < 2 * timeout + 2:
            raise ConfigError(
                f"OUTBOX_LEASE_SECONDS must be at least 2 × OUTBOX_TIMEOUT_SECONDS + 2 ({2 * timeout + 2})"
                " with SMS_FALLBACK_PROVIDER (each gateway may take OUTBOX_TIMEOUT_SECONDS); raise it, or"
                " lower OUTBOX_TIMEOUT_SECONDS"
            )


class DevelopmentConfig(Config):
    """``flask run`` on a laptop: SQLite in ``instance/``, plain-HTTP cookies."""

    NAME = "development"
    own_defaults: ClassVar[dict[str, Any]] = {
        # Random keys keep development working out of the box; sessions end on restart.
        "SECRET_KEY": RANDOM_SECRET,
        "JWT_SECRET_KEY": RANDOM_SECRET,
        # Plain HTTP on localhost, readable lines on a terminal.
        "COOKIE_SECURE": False,
        "LOG_FORMAT": "text",
        # The reference frontend of `make web` too (passkeys need localhost, not an IP).
        "WEBAUTHN_ORIGINS": Derived(
            "`FRONTEND_URL`, `http://localhost:8001`, `http://127.0.0.1:8001`",
            lambda v: [v["FRONTEND_URL"], "http://localhost:8001", "http://127.0.0.1:8001"],
        ),
    }


class TestingConfig(DevelopmentConfig):
    """pytest: cheapest argon2 parameters, debug off so errors take the real path."""

    NAME = "testing"
    DEBUG = False
    TESTING = True
    own_defaults: ClassVar[dict[str, Any]] = {
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8,
        "ARGON2_PARALLELISM": 1,
        "LOG_LEVEL": "WARNING",
        # Tests may run asymmetric modes without configuring a key-encryption secret.
        "SIGNING_KEYS_SECRET": Derived("`SECRET_KEY`", lambda v: [v["SECRET_KEY"]]),
    }


class ProductionConfig(Config):
    """``gunicorn wsgi:app``: secure cookies, strong secrets required, no sign-in codes in the log."""

    NAME = "production"
    DEBUG = False
    own_defaults: ClassVar[dict[str, Any]] = {
        # No gateway until one is configured: SMS wait in the outbox (and the app warns at start).
        "SMS_PROVIDER": None,
    }

    def validate(self) -> None:
        """Refuse to start without strong signing keys, or with SMS codes written to the log."""
        super().validate()
        if getattr(self, "SMS_PROVIDER", None) == "log":
            raise ConfigError(
                "SMS_PROVIDER=log writes sign-in codes to the log and is for development only; set it to"
                " eskiz or playmobile (docs/sms.md), or unset it in production"
            )
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value = getattr(self, name)
            if not value:
                raise ConfigError(f"{name} must be set in production; generate one with: {HOW_TO_MAKE_A_KEY}")
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"{name} must be at least {MIN_SECRET_BYTES} bytes in production; generate one with:"
                    f" {HOW_TO_MAKE_A_KEY}"
                )


CONFIGS: dict[str, type[Config]] = {
    cls.NAME: cls for cls in (DevelopmentConfig, TestingConfig, ProductionConfig)
}


class Environment(Section):
    """Which configuration class the app is built with."""

    title = "The environment"

    TRIKCHI_CONFIG = Text(
        Derived("`development`; `production` for `wsgi:app` (`wsgi.py`)", lambda _: "development"),
        "which environment's defaults apply: `development`, `testing` or `production`",
        choices=tuple(CONFIGS),
    )


def load_config(name: str | None = None) -> Config:
    """Build and validate the configuration called ``name`` (default ``TRIKCHI_CONFIG``)."""
    environment = Environment(os.environ if not name else {"TRIKCHI_CONFIG": name})
    config = CONFIGS[environment.TRIKCHI_CONFIG]()
    config.validate()
    return config


# The documentation: docs/configuration.md holds these tables, between these markers.
DOCS_BEGIN = "<!-- settings: generated by `python config.py`; tests/test_config.py checks it -->"
DOCS_END = "<!-- end of settings -->"
#: Every concern with documented variables, in the order of docs/configuration.md.
DOCUMENTED: tuple[type[Section], ...] = (Environment, *Config.sections, Serving)


def documented_settings() -> Iterator[tuple[type[Section], Setting]]:
    """Every documented variable (a family, like ``OAUTH_<NAME>_*``, as its pattern) and its concern."""
    for section in DOCUMENTED:
        for declared in section.declared():
            for setting in declared.documented():
                yield section, setting


def documented_default(setting: Setting) -> str:
    """The default as docs/configuration.md states it, with the environments that differ."""
    text = default_text(setting.default)
    differing: dict[str, list[str]] = {}
    for name, cls in CONFIGS.items():
        own = cls.defaults().get(setting.name, setting.default)
        if default_text(own) != text:
            differing.setdefault(default_text(own), []).append(name)
    if differing:
        text += " (" + "; ".join(f"{', '.join(names)}: {other}" for other, names in differing.items()) + ")"
    return text


def describe(section: type[Section]) -> str:
    """A concern's docstring as one Markdown paragraph."""
    return " ".join((section.__doc__ or "").split()).replace("``", "`")


def settings_table() -> str:
    """The Markdown tables of docs/configuration.md: a table per concern, a row per variable."""
    lines: list[str] = []
    for section in DOCUMENTED:
        lines += [f"### {section.title}", "", describe(section), ""]
        lines += ["| variable | meaning | default |", "|---|---|---|"]
        for declared in section.declared():
            for setting in declared.documented():
                cells = (f"`{setting.name}`", setting.meaning, documented_default(setting))
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join([DOCS_BEGIN, "", *lines, DOCS_END])


def write_settings_table(path: Path) -> None:
    """Replace the tables between the markers of ``path`` with today's."""
    text = path.read_text()
    before, _, rest = text.partition(DOCS_BEGIN)
    _, _, after = rest.partition(DOCS_END)
    path.write_text(before + settings_table() + (after or "\n"))


if __name__ == "__main__":
    # python config.py: print the tables; python config.py docs/configuration.md: rewrite them there.
    import sys

    if len(sys.argv) > 1:
        write_settings_table(Path(sys.argv[1]))
    else:
        print(settings_table())
