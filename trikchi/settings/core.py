"""The service itself: its secret, database, requests, cookies over HTTPS, cross-origin callers, logs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from trikchi.settings.base import ConfigError, Derived, Flag, Integer, Items, Section, Text, Url


class DatabaseUrl(Text):
    """An SQLAlchemy URL; ``postgres://`` and ``postgresql://`` go to the psycopg 3 driver."""

    expects = "an SQLAlchemy URL such as sqlite:///trikchi.db or postgresql://user:password@host/db"

    def parse(self, raw: str, default: Any) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if raw.startswith(prefix):
                raw = "postgresql+psycopg://" + raw[len(prefix) :]
        try:
            make_url(raw).get_dialect()
        except (ArgumentError, NoSuchModuleError, ValueError):
            # Never repeated: the URL may hold the database password.
            raise ConfigError(f"{self.name} must be {self.expects}") from None
        return raw


class Origins(Items):
    """Origins that may call with credentials: listed, never ``*``."""

    def check_item(self, item: str, raw: str, default: Any) -> None:
        if item == "*":
            raise self.refuse(raw, default, "a list of origins ('*' cannot be used with credentials)")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Core(Section):
    """The secret, the database, request bodies and proxies, the frontend and cross-origin callers,
    cookies over HTTPS, logs."""

    title = "The service"

    SECRET_KEY = Text(
        None,
        "signs device cookies, mail links and the social sign-in's state; production refuses to start"
        " without one of at least 32 bytes (`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)",
        secret=True,
    )
    DATABASE_URL = DatabaseUrl(
        "sqlite:///trikchi.db",
        "SQLAlchemy URL: `sqlite:///…` (a relative path is in `instance/`) or"
        " `postgresql://user:password@host/db` (`postgres://` too; both use psycopg 3)",
    )
    SQLITE_BUSY_TIMEOUT_MS = Integer(15000, "how long an SQLite writer waits for the lock, milliseconds")
    DATABASE_CONNECT_TIMEOUT = Integer(5, "seconds to wait for PostgreSQL before answering 503", minimum=1)
    MAX_CONTENT_LENGTH = Integer(65536, "largest accepted request body, bytes", minimum=1024)
    TRUSTED_PROXY_HOPS = Integer(
        0, "reverse proxies in front whose `X-Forwarded-For`/`-Proto`/`-Host` are trusted"
    )
    FRONTEND_URL = Url(
        "http://localhost:3000",
        "the frontend's base URL: links in mails, the end of a social sign-in, the passkeys' default site",
    )
    CORS_ORIGINS = Origins(
        [], "comma-separated frontend origins allowed to call `/auth/*` with credentials (`*` is refused)"
    )
    COOKIE_SECURE = Flag(True, "cookies carry `Secure` (the service is reached over HTTPS)")
    COOKIE_SAMESITE = Text(
        "Lax",
        "`SameSite` of the refresh, CSRF and device cookies (`None` needs `COOKIE_SECURE`)",
        choices=("Lax", "Strict", "None"),
    )
    HSTS_SECONDS = Integer(
        Derived("31536000 with `COOKIE_SECURE`, else 0", lambda v: 31536000 if v["COOKIE_SECURE"] else 0),
        "`Strict-Transport-Security` max-age (0: not sent)",
    )
    LOG_LEVEL = Text("INFO", "logging level (also gunicorn's)", choices=LOG_LEVELS, normalize=str.upper)
    LOG_FORMAT = Text("json", "`json` (one object per line) or `text`", choices=("json", "text"))
    # Off by default: it cost a fifth of GET /auth/me (docs/performance.md); /metrics counts and
    # times every request by route and status, and auth events and errors are logged either way.
    LOG_REQUESTS = Flag(
        False,
        "a log line per request (method, path, status, duration, client address); auth events and"
        " errors are logged either way, and `/metrics` counts every request by route and status",
    )

    def check(self) -> None:
        if self.COOKIE_SAMESITE == "None" and not self.COOKIE_SECURE:
            raise ConfigError(
                "COOKIE_SAMESITE=None needs COOKIE_SECURE=true (browsers require it); set both, or"
                " unset COOKIE_SAMESITE for Lax"
            )

    def derived(self) -> dict[str, Any]:
        return {
            "SQLALCHEMY_DATABASE_URI": self.DATABASE_URL,
            # hide_parameters: a database error's text (logged) never holds the statement's values —
            # emails, IP addresses, encrypted key material.
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
            # The refresh token's cookie and its CSRF cookie (flask-jwt-extended).
            "JWT_COOKIE_SECURE": self.COOKIE_SECURE,
            "JWT_COOKIE_SAMESITE": self.COOKIE_SAMESITE,
        }
