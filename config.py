"""Configuration for trikchi, read from the environment (and a ``.env`` file).

``create_app`` picks a class by name (``TRIKCHI_CONFIG``) and instantiates it,
so every value is read from the environment when the app is built, not when
this module is imported.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent

# A .env file next to this one is read, but never overrides the real environment.
load_dotenv(BASE_DIR / ".env")

MIN_SECRET_BYTES = 32
ACCESS_TOKEN_ALGORITHMS = ("HS256", "ES256", "EdDSA", "RS256")


class ConfigError(RuntimeError):
    """The environment does not describe a configuration the app can run with."""


def env_str(name: str, default: str | None = None) -> str | None:
    """Return a stripped environment variable, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean environment variable (``1/true/yes/on`` and ``0/false/no/off``)."""
    value = env_str(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """Parse an integer environment variable, refusing values below ``minimum``."""
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str) -> list[str]:
    """Parse a comma-separated environment variable into a list of non-empty items."""
    return [item.strip() for item in (env_str(name) or "").split(",") if item.strip()]


def env_datetime(name: str) -> datetime | None:
    """Parse an ISO 8601 date (midnight UTC) or date-time (UTC unless it names an offset)."""
    value = env_str(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name} must be an ISO date or date-time (2027-01-31), got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def env_roles(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of roles where an empty value means none (unlike ``env_list``'s default)."""
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def public_url(name: str) -> str | None:
    """An http(s) base URL without query or fragment (trailing slash dropped), or None when unset."""
    from urllib.parse import urlsplit

    value = env_str(name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an http(s) URL without query or fragment, got {value!r}")
    return value.rstrip("/")


def database_url(default: str) -> str:
    """Return ``DATABASE_URL`` with PostgreSQL URLs pointed at the psycopg 3 driver."""
    url = env_str("DATABASE_URL") or default
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


GOOGLE_DISCOVERY_URL = "https://accounts.google.com/.well-known/openid-configuration"
PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


def oauth_providers() -> dict[str, dict[str, str | None]]:
    """``OAUTH_PROVIDERS`` and each provider's ``OAUTH_<NAME>_*`` settings (SPEC §9)."""
    providers: dict[str, dict[str, str | None]] = {}
    for raw in env_list("OAUTH_PROVIDERS"):
        name = raw.lower()
        if not PROVIDER_NAME.match(name) or name == "telegram":
            raise ConfigError(
                f"OAUTH_PROVIDERS: {raw!r} must be a lower-case name of letters, digits and _"
                " (at most 20, not 'telegram')"
            )
        prefix = f"OAUTH_{name.upper()}_"
        discovery = env_str(prefix + "DISCOVERY_URL", GOOGLE_DISCOVERY_URL if name == "google" else None)
        client_id = env_str(prefix + "CLIENT_ID")
        if not discovery:
            raise ConfigError(f"{prefix}DISCOVERY_URL must be set for the provider {name!r}")
        if not client_id:
            raise ConfigError(f"{prefix}CLIENT_ID must be set for the provider {name!r}")
        providers[name] = {
            "discovery_url": discovery,
            "client_id": client_id,
            "client_secret": env_str(prefix + "CLIENT_SECRET"),
            "scopes": env_str(prefix + "SCOPES", "openid email profile"),
        }
    return providers


class Config:
    """Settings shared by every environment."""

    NAME = "base"

    def __init__(self) -> None:
        self.SECRET_KEY = env_str("SECRET_KEY")
        self.JWT_SECRET_KEY = env_str("JWT_SECRET_KEY")
        # Relative SQLite paths are resolved inside the instance folder.
        self.SQLALCHEMY_DATABASE_URI = database_url("sqlite:///trikchi.db")
        # hide_parameters: a database error's text (logged) never holds the statement's values —
        # emails, IP addresses, encrypted key material.
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
        self.SQLITE_BUSY_TIMEOUT_MS = env_int("SQLITE_BUSY_TIMEOUT_MS", 15000)
        self.DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 5, 1)

        self.MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 64 * 1024, 1024)

        self.ACCESS_TOKEN_MINUTES = env_int("ACCESS_TOKEN_MINUTES", 15, 1)
        self.REFRESH_TOKEN_DAYS = env_int("REFRESH_TOKEN_DAYS", 30, 1)
        self.SESSION_MAX_DAYS = env_int("SESSION_MAX_DAYS", 90, 1)
        self.REFRESH_REUSE_GRACE_SECONDS = env_int("REFRESH_REUSE_GRACE_SECONDS", 10)
        # SPEC §8: sensitive operations need an interactive authentication this recent.
        self.FRESH_SIGNIN_SECONDS = env_int("FRESH_SIGNIN_SECONDS", 600, 1)
        self.COOKIE_SECURE = env_bool("COOKIE_SECURE", self.default_cookie_secure())
        self.COOKIE_SAMESITE = env_str("COOKIE_SAMESITE", "Lax")
        if self.COOKIE_SAMESITE not in {"Lax", "Strict", "None"}:
            raise ConfigError("COOKIE_SAMESITE must be Lax, Strict or None")
        if self.COOKIE_SAMESITE == "None" and not self.COOKIE_SECURE:
            raise ConfigError("COOKIE_SAMESITE=None needs COOKIE_SECURE=true (browsers require it)")

        # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
        self.TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0)

        self.ARGON2_TIME_COST = env_int("ARGON2_TIME_COST", 3, 1)
        self.ARGON2_MEMORY_COST = env_int("ARGON2_MEMORY_COST", 65536, 8)
        self.ARGON2_PARALLELISM = env_int("ARGON2_PARALLELISM", 4, 1)

        self.LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
        self.LOG_FORMAT = env_str("LOG_FORMAT", self.default_log_format())
        if self.LOG_FORMAT not in {"text", "json"}:
            raise ConfigError("LOG_FORMAT must be text or json")
        # A log line per request (method, path, status, duration, client address). Off by default:
        # it cost a fifth of GET /auth/me (docs/performance.md); /metrics counts and times every
        # request by route and status, and auth events and errors are logged either way.
        self.LOG_REQUESTS = env_bool("LOG_REQUESTS", False)

        # Browser frontends on other origins allowed to call the API with cookies.
        self.CORS_ORIGINS = env_list("CORS_ORIGINS")
        if "*" in self.CORS_ORIGINS:
            raise ConfigError("CORS_ORIGINS must list origins; '*' cannot be used with credentials")

        # Flask-Limiter. memory:// counts per process: use redis:// with several workers/hosts.
        self.RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = env_str("RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_STRATEGY = "moving-window"
        self.RATELIMIT_KEY_PREFIX = "trikchi"
        self.RATELIMIT_HEADERS_ENABLED = False  # Retry-After is set on 429s by trikchi.errors
        # If Redis goes away, keep limiting per process rather than failing every request.
        self.RATELIMIT_SWALLOW_ERRORS = True
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.RATELIMIT_LOGIN = env_str("RATELIMIT_LOGIN", "30 per minute")
        self.RATELIMIT_LOGIN_FAILURES_PER_IP = env_str(
            "RATELIMIT_LOGIN_FAILURES_PER_IP", "10 per minute;100 per hour"
        )
        self.RATELIMIT_LOGIN_FAILURES_PER_EMAIL = env_str(
            "RATELIMIT_LOGIN_FAILURES_PER_EMAIL", "5 per minute;20 per hour"
        )
        self.RATELIMIT_REGISTER = env_str("RATELIMIT_REGISTER", "10 per minute;50 per hour")
        self.RATELIMIT_REFRESH = env_str("RATELIMIT_REFRESH", "60 per minute")
        self.RATELIMIT_PASSWORD = env_str("RATELIMIT_PASSWORD", "10 per minute")
        self.RATELIMIT_REAUTHENTICATE = env_str("RATELIMIT_REAUTHENTICATE", "10 per minute;50 per hour")
        self.DEVICE_COOKIE_DAYS = env_int("DEVICE_COOKIE_DAYS", 365, 1)
        self.RATELIMIT_PASSWORD_RESET = env_str("RATELIMIT_PASSWORD_RESET", "5 per minute;20 per hour")
        self.RATELIMIT_PASSWORD_RESET_PER_EMAIL = env_str("RATELIMIT_PASSWORD_RESET_PER_EMAIL", "3 per hour")
        self.RATELIMIT_VERIFY_EMAIL = env_str("RATELIMIT_VERIFY_EMAIL", "5 per minute;20 per hour")

        # Mail (Flask-Mail) and the links it sends.
        self.MAIL_SERVER = env_str("MAIL_SERVER")
        self.MAIL_PORT = env_int("MAIL_PORT", 587, 1)
        self.MAIL_USE_TLS = env_bool("MAIL_USE_TLS", True)
        self.MAIL_USE_SSL = env_bool("MAIL_USE_SSL", False)
        self.MAIL_USERNAME = env_str("MAIL_USERNAME")
        self.MAIL_PASSWORD = env_str("MAIL_PASSWORD")
        self.MAIL_DEFAULT_SENDER = env_str("MAIL_DEFAULT_SENDER", "trikchi <no-reply@trikchi.uz>")
        # Flask-Mail would silently drop mail under TESTING; the tests use a real SMTP server.
        self.MAIL_SUPPRESS_SEND = False
        self.FRONTEND_URL = (env_str("FRONTEND_URL") or "http://localhost:3000").rstrip("/")
        self.PASSWORD_RESET_MINUTES = env_int("PASSWORD_RESET_MINUTES", 30, 1)
        self.EMAIL_VERIFY_HOURS = env_int("EMAIL_VERIFY_HOURS", 48, 1)

        # Self-service, languages and security notices (SPEC §10).
        self.DEFAULT_LOCALE = env_str("DEFAULT_LOCALE", "en")
        if self.DEFAULT_LOCALE not in {"uz", "ru", "en"}:
            raise ConfigError("DEFAULT_LOCALE must be uz, ru or en")
        self.EMAIL_CHANGE_HOURS = env_int("EMAIL_CHANGE_HOURS", 24, 1)
        self.RATELIMIT_EMAIL_CHANGE = env_str("RATELIMIT_EMAIL_CHANGE", "5 per minute;20 per hour")
        self.NOTIFY_NEW_DEVICE = env_bool("NOTIFY_NEW_DEVICE", True)
        self.NOTIFY_PASSWORD_CHANGED = env_bool("NOTIFY_PASSWORD_CHANGED", True)
        self.NOTIFY_EMAIL_CHANGED = env_bool("NOTIFY_EMAIL_CHANGED", True)
        self.NOTIFY_MFA_CHANGED = env_bool("NOTIFY_MFA_CHANGED", True)

        # Second factors and passkeys (SPEC §8).
        self.MFA_REQUIRED_ROLES = env_roles("MFA_REQUIRED_ROLES", ["admin"])
        self.TOTP_ISSUER = env_str("TOTP_ISSUER", "trikchi.uz")
        self.WEBAUTHN_RP_ID = env_str("WEBAUTHN_RP_ID", urlsplit(self.FRONTEND_URL).hostname or "localhost")
        self.WEBAUTHN_RP_NAME = env_str("WEBAUTHN_RP_NAME", "trikchi.uz")
        self.WEBAUTHN_ORIGINS = env_list("WEBAUTHN_ORIGINS") or self.default_webauthn_origins()
        self.RATELIMIT_MFA = env_str("RATELIMIT_MFA", "30 per minute;300 per hour")
        self.RATELIMIT_MFA_FAILURES_PER_IP = env_str(
            "RATELIMIT_MFA_FAILURES_PER_IP", "10 per minute;100 per hour"
        )
        self.RATELIMIT_MFA_FAILURES_PER_ACCOUNT = env_str(
            "RATELIMIT_MFA_FAILURES_PER_ACCOUNT", "10 per minute;30 per hour"
        )
        self.RATELIMIT_PASSKEY = env_str("RATELIMIT_PASSKEY", "30 per minute;300 per hour")
        # Operations (SPEC §11): Prometheus metrics, webhooks, the outbox and its worker.
        self.METRICS_ENABLED = env_bool("METRICS_ENABLED", True)
        # /metrics answers these addresses or networks (after TRUSTED_PROXY_HOPS); others get 404.
        self.METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS") or ["127.0.0.1", "::1"]
        self.WEBHOOK_URLS = env_list("WEBHOOK_URLS")
        self.WEBHOOK_SECRET = env_str("WEBHOOK_SECRET")
        # Event types announced to WEBHOOK_URLS; empty: every auth event.
        self.WEBHOOK_EVENTS = env_list("WEBHOOK_EVENTS")
        self.OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 8, 1)
        self.WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", self.OUTBOX_MAX_ATTEMPTS, 1)
        # One HTTP request or SMTP conversation may take this long.
        self.OUTBOX_TIMEOUT_SECONDS = env_int("OUTBOX_TIMEOUT_SECONDS", 10, 1)
        # A worker holds the deliveries it claimed this long; a crashed worker's are retried after.
        self.OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 60, 2)
        # Retry n waits about base * 2**(n-1) seconds (with jitter), at most the maximum.
        self.OUTBOX_RETRY_BASE_SECONDS = env_int("OUTBOX_RETRY_BASE_SECONDS", 30, 0)
        self.OUTBOX_RETRY_MAX_SECONDS = env_int("OUTBOX_RETRY_MAX_SECONDS", 3600, 1)
        self.OUTBOX_POLL_SECONDS = env_int("OUTBOX_POLL_SECONDS", 1, 1)

        # Strict-Transport-Security max-age; only sent where TLS is guaranteed (production).
        self.HSTS_SECONDS = env_int("HSTS_SECONDS", 31536000 if self.COOKIE_SECURE else 0)

        # flask-jwt-extended: access tokens only in the Authorization header,
        # refresh tokens only in an HttpOnly cookie with a double-submit CSRF cookie.
        # Access tokens: HS256 under JWT_SECRET_KEY (the seed's), or ES256/EdDSA/RS256 with the
        # current key of the key set (SPEC §7). Refresh tokens are HS256 in every mode.
        self.JWT_ALGORITHM = env_str("JWT_ALGORITHM", "HS256")
        if self.JWT_ALGORITHM not in ACCESS_TOKEN_ALGORITHMS:
            raise ConfigError(f"JWT_ALGORITHM must be one of {', '.join(ACCESS_TOKEN_ALGORITHMS)}")
        self.JWT_DECODE_LEEWAY = 5
        # iss on every token (the public URL of the service when other services verify them).
        self.JWT_ISSUER = env_str("JWT_ISSUER", "trikchi")
        # This service's public base URL, for addresses it publishes (the discovery's jwks_uri) when
        # JWT_ISSUER is no URL. Never taken from the request: its Host header is the client's to write.
        self.PUBLIC_URL = public_url("PUBLIC_URL")
        # aud on every token and required on decode, when set.
        self.JWT_AUDIENCE = env_str("JWT_AUDIENCE")
        self.JWKS_MAX_AGE_SECONDS = env_int("JWKS_MAX_AGE_SECONDS", 600)
        self.KEYS_RELOAD_SECONDS = env_int("KEYS_RELOAD_SECONDS", 30, 1)
        # Encrypts private signing keys at rest; comma-separated: the first encrypts, all decrypt.
        self.SIGNING_KEYS_SECRET = env_list("SIGNING_KEYS_SECRET")
        self.JWT_TOKEN_LOCATION = ["headers", "cookies"]
        self.JWT_HEADER_NAME = "Authorization"
        self.JWT_HEADER_TYPE = "Bearer"
        # ACCESS_TOKEN_SECONDS (for tests and demos of silent renewal) wins over the minutes.
        access_seconds = env_int("ACCESS_TOKEN_SECONDS", 0)
        self.JWT_ACCESS_TOKEN_EXPIRES = (
            timedelta(seconds=access_seconds)
            if access_seconds
            else timedelta(minutes=self.ACCESS_TOKEN_MINUTES)
        )
        self.JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=self.REFRESH_TOKEN_DAYS)
        self.JWT_REFRESH_COOKIE_NAME = "refresh_token"
        self.JWT_REFRESH_COOKIE_PATH = "/"
        self.JWT_REFRESH_CSRF_COOKIE_NAME = "csrf_refresh_token"
        self.JWT_REFRESH_CSRF_COOKIE_PATH = "/"
        self.JWT_REFRESH_CSRF_HEADER_NAME = "X-CSRF-TOKEN"
        self.JWT_COOKIE_CSRF_PROTECT = True
        self.JWT_CSRF_IN_COOKIES = True
        self.JWT_CSRF_CHECK_FORM = False
        self.JWT_SESSION_COOKIE = False  # persistent cookies with Max-Age
        self.JWT_COOKIE_SECURE = self.COOKIE_SECURE
        self.JWT_COOKIE_SAMESITE = self.COOKIE_SAMESITE

        # Moving from the seed's service (SPEC §12): its refresh cookies are exchanged once for a
        # session while SEED_JWT_SECRET (the seed's SECRET_KEY) is set, until SEED_TOKENS_UNTIL.
        self.SEED_JWT_SECRET = env_str("SEED_JWT_SECRET")
        self.SEED_TOKENS_UNTIL = env_datetime("SEED_TOKENS_UNTIL")
        # The seed's ACCESS_TOKEN_EXPIRE_MINUTES. Its access and refresh tokens carry the same
        # claims (sub, exp), so a token that expires sooner than this may be an access token.
        self.SEED_ACCESS_TOKEN_MINUTES = env_int("SEED_ACCESS_TOKEN_MINUTES", 15, 1)
        # Social sign-in (SPEC §9): OpenID Connect providers and Telegram Login.
        self.OAUTH_PROVIDERS = oauth_providers()
        # The public base URL of this service for the callback (redirect URI); default: the request's.
        self.OAUTH_CALLBACK_BASE_URL = (env_str("OAUTH_CALLBACK_BASE_URL") or "").rstrip("/") or None
        self.OAUTH_STATE_SECONDS = env_int("OAUTH_STATE_SECONDS", 600, 60)
        self.OAUTH_HTTP_TIMEOUT_SECONDS = env_int("OAUTH_HTTP_TIMEOUT_SECONDS", 10, 1)
        self.OAUTH_METADATA_MAX_AGE_SECONDS = env_int("OAUTH_METADATA_MAX_AGE_SECONDS", 3600, 0)
        self.TELEGRAM_BOT_TOKEN = env_str("TELEGRAM_BOT_TOKEN")
        self.TELEGRAM_BOT_NAME = env_str("TELEGRAM_BOT_NAME")
        self.TELEGRAM_AUTH_MAX_AGE_SECONDS = env_int("TELEGRAM_AUTH_MAX_AGE_SECONDS", 3600, 10)
        if self.TELEGRAM_AUTH_MAX_AGE_SECONDS > 86400:
            raise ConfigError("TELEGRAM_AUTH_MAX_AGE_SECONDS must be at most 86400 (a day)")
        self.RATELIMIT_SOCIAL = env_str("RATELIMIT_SOCIAL", "20 per minute;200 per hour")
        self.RATELIMIT_IDENTITIES = env_str("RATELIMIT_IDENTITIES", "10 per minute")

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

    @staticmethod
    def default_cookie_secure() -> bool:
        """Whether cookies carry ``Secure`` unless ``COOKIE_SECURE`` says otherwise."""
        return True

    @staticmethod
    def default_log_format() -> str:
        """JSON lines for log collectors unless ``LOG_FORMAT`` says otherwise."""
        return "json"

    def default_webauthn_origins(self) -> list[str]:
        """Pages allowed to use passkeys unless ``WEBAUTHN_ORIGINS`` says otherwise: the frontend."""
        return [self.FRONTEND_URL]

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the variable when a setting is unusable."""
        self.validate_operations()
        if self.JWT_ALGORITHM != "HS256":
            if not self.SIGNING_KEYS_SECRET:
                raise ConfigError(
                    f"SIGNING_KEYS_SECRET must be set when JWT_ALGORITHM is {self.JWT_ALGORITHM}"
                    " (it encrypts the private signing keys stored in the database)"
                )
            if any(len(secret.encode()) < MIN_SECRET_BYTES for secret in self.SIGNING_KEYS_SECRET):
                raise ConfigError(f"SIGNING_KEYS_SECRET must be at least {MIN_SECRET_BYTES} bytes")

    def validate_operations(self) -> None:
        """Metrics networks, webhook receivers and secret, the outbox's timings."""
        import base64
        import binascii
        import ipaddress
        from urllib.parse import urlsplit

        for item in self.METRICS_ALLOWED_IPS:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ConfigError(f"METRICS_ALLOWED_IPS: {item!r} is not an address or network") from None
        for url in self.WEBHOOK_URLS:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ConfigError("WEBHOOK_URLS must be http(s) URLs")
        if self.WEBHOOK_URLS:
            secret = self.WEBHOOK_SECRET or ""
            if not secret.startswith("whsec_"):
                raise ConfigError("WEBHOOK_SECRET must be set to a whsec_... secret when WEBHOOK_URLS is set")
            try:
                key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError("WEBHOOK_SECRET must be whsec_ followed by base64") from None
            if len(key) < 24:
                raise ConfigError("WEBHOOK_SECRET must hold at least 24 random bytes")
        # A delivery starts only if it can time out a second before its lease ends.
        if self.OUTBOX_LEASE_SECONDS < self.OUTBOX_TIMEOUT_SECONDS + 2:
            raise ConfigError("OUTBOX_LEASE_SECONDS must be at least OUTBOX_TIMEOUT_SECONDS + 2")


class DevelopmentConfig(Config):
    """``flask run`` on a laptop: SQLite in ``instance/``, plain-HTTP cookies."""

    NAME = "development"

    def __init__(self) -> None:
        super().__init__()
        # Random keys keep development working out of the box; sessions end on restart.
        self.SECRET_KEY = self.SECRET_KEY or secrets.token_urlsafe(48)
        self.JWT_SECRET_KEY = self.JWT_SECRET_KEY or secrets.token_urlsafe(48)

    @staticmethod
    def default_cookie_secure() -> bool:
        """Development serves plain HTTP on localhost."""
        return False

    @staticmethod
    def default_log_format() -> str:
        """Readable lines on a terminal."""
        return "text"

    def default_webauthn_origins(self) -> list[str]:
        """The frontend, and the reference frontend of ``make web`` (passkeys need localhost, not an IP)."""
        return [self.FRONTEND_URL, "http://localhost:8001", "http://127.0.0.1:8001"]


class TestingConfig(DevelopmentConfig):
    """pytest: cheapest argon2 parameters, debug off so errors take the real path."""

    NAME = "testing"
    DEBUG = False
    TESTING = True

    def __init__(self) -> None:
        super().__init__()
        self.ARGON2_TIME_COST = env_int("ARGON2_TIME_COST", 1, 1)
        self.ARGON2_MEMORY_COST = env_int("ARGON2_MEMORY_COST", 8, 8)
        self.ARGON2_PARALLELISM = env_int("ARGON2_PARALLELISM", 1, 1)
        self.LOG_LEVEL = env_str("LOG_LEVEL", "WARNING")
        # Tests may run asymmetric modes without configuring a key-encryption secret.
        self.SIGNING_KEYS_SECRET = self.SIGNING_KEYS_SECRET or [self.SECRET_KEY]


class ProductionConfig(Config):
    """``gunicorn wsgi:app``: secure cookies, strong secrets required."""

    NAME = "production"
    DEBUG = False

    def validate(self) -> None:
        """Refuse to start without strong signing keys."""
        super().validate()
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value = getattr(self, name)
            if not value:
                raise ConfigError(f"{name} must be set in production")
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"{name} must be at least {MIN_SECRET_BYTES} bytes in production"
                    " (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )


CONFIGS: dict[str, type[Config]] = {
    cls.NAME: cls for cls in (DevelopmentConfig, TestingConfig, ProductionConfig)
}


def load_config(name: str | None = None) -> Config:
    """Build and validate the configuration called ``name`` (default ``TRIKCHI_CONFIG``)."""
    name = name or env_str("TRIKCHI_CONFIG") or "development"
    try:
        cls = CONFIGS[name]
    except KeyError:
        raise ConfigError(f"TRIKCHI_CONFIG must be one of {', '.join(CONFIGS)}, got {name!r}") from None
    config = cls()
    config.validate()
    return config
