"""trikchi: the authentication service of trikchi.uz."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    # Imported when the app is built: config.py imports trikchi.settings, and so this package.
    from config import Config


def create_app(config: str | Config | Mapping[str, Any] | None = None) -> Flask:
    """Build the app.

    ``config`` is a configuration name (``development``, ``testing``,
    ``production``), a ``Config`` instance, or a mapping of overrides applied on
    top of the configuration named by ``TRIKCHI_CONFIG``.
    """
    app = TrikchiFlask(__name__, static_folder=None)
    register_config(app, config)
    register_logging(app)
    register_security_headers(app)
    register_sessions(app)
    register_request_parsing(app)
    register_proxy_fix(app)
    register_database(app)
    register_extensions(app)
    register_features(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


class TrikchiFlask(Flask):
    """Flask, asking once per function whether it is a coroutine function.

    Flask calls ``ensure_sync`` for every view, hook and handler on every request, and
    flask-smorest and Flask-Limiter once more per decorator layer; each call ran
    ``inspect.iscoroutinefunction`` again (docs/performance.md).
    """

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            is_coroutine = _is_coroutine_function(func)
        except TypeError:  # an unhashable callable: ask every time, as Flask does
            is_coroutine = inspect.iscoroutinefunction(func)
        if is_coroutine:
            return self.async_to_sync(func)
        return func


@lru_cache(maxsize=4096)
def _is_coroutine_function(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func)


def register_config(app: Flask, config: str | Config | Mapping[str, Any] | None) -> None:
    """Load settings from the environment, then apply explicit overrides."""
    from config import Config, load_config

    overrides: Mapping[str, Any] = {}
    if isinstance(config, Config):
        settings = config
    elif isinstance(config, Mapping):
        overrides = config
        settings = load_config(config.get("TRIKCHI_CONFIG"))
    else:
        settings = load_config(config)
    app.config.from_object(settings)
    app.config["TRIKCHI_CONFIG"] = settings.NAME
    app.config.update(overrides)


def register_logging(app: Flask) -> None:
    """Log to stderr at ``LOG_LEVEL`` (JSON lines in production), a line per request."""
    from trikchi.logs import register_logging as configure

    configure(app)


def register_security_headers(app: Flask) -> None:
    """nosniff, no referrer, no framing, a CSP, HSTS in production — on every response."""
    from trikchi.http import register_security_headers as install

    install(app)


def register_sessions(app: Flask) -> None:
    """No Flask cookie sessions: trikchi's state is its tokens and its database."""
    from trikchi.http import NoCookieSessions

    app.session_interface = NoCookieSessions()


def register_request_parsing(app: Flask) -> None:
    """Request bodies: over ``MAX_CONTENT_LENGTH`` 413 however sent; JSON parsed one way (trikchi.http)."""
    from trikchi.http import JSONProvider, Request

    app.request_class = Request
    app.json = JSONProvider(app)


def register_proxy_fix(app: Flask) -> None:
    """Trust ``X-Forwarded-*`` only from the configured number of proxy hops."""
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def register_database(app: Flask) -> None:
    """Apply per-backend engine settings (SQLite pragmas, connect timeouts)."""
    from trikchi.database import configure_engine_options

    configure_engine_options(app)


def register_extensions(app: Flask) -> None:
    """Bind the extension instances to this app."""
    from trikchi import i18n
    from trikchi.auth import guards, screening, tokens
    from trikchi.auth.passwords import passwords
    from trikchi.database import configure_engine
    from trikchi.extensions import cors, db, limiter, migrate
    from trikchi.keys import ring as key_ring
    from trikchi.mail import init_mail
    from trikchi.openapi import api

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(_migrations_dir()), compare_type=True)
    tokens.init_app(app)  # flask-jwt-extended issues and verifies every token
    guards.init_app(app)  # ... and loads the request's user with the guard's query
    key_ring.init_app(app)
    passwords.init_app(app)
    screening.init_app(app)  # breached passwords: where range answers are kept
    init_mail(app)
    i18n.init_app(app)
    limiter.init_app(app)
    if app.config["TRIKCHI_CONFIG"] == "production" and app.config["RATELIMIT_STORAGE_URI"].startswith(
        "memory"
    ):
        app.logger.warning(
            "RATELIMIT_STORAGE_URI is memory://: each worker counts on its own; use redis:// in production"
        )
    if app.config["TRIKCHI_CONFIG"] == "production" and not app.config.get("SMS_PROVIDER"):
        app.logger.warning(
            "SMS_PROVIDER is not set: SMS (phone sign-in codes) wait in the outbox; set eskiz or playmobile"
            " (docs/sms.md)"
        )
    if app.config["CORS_ORIGINS"]:
        cors.init_app(
            app,
            resources={r"/auth/*": {"origins": app.config["CORS_ORIGINS"]}},
            supports_credentials=True,
            allow_headers=[
                "Authorization",
                "Content-Type",
                app.config["JWT_REFRESH_CSRF_HEADER_NAME"],
                "X-Captcha-Token",
            ],
            methods=["GET", "POST", "DELETE", "PATCH"],
            max_age=600,
        )
    api.init_app(app)


def register_features(app: Flask) -> None:
    """Plug the features into the core: what the core asks of them (``auth.seams``: second factors,
    ways to sign in, the seed's cookies, account checks (bans), clean starts) and what they do when
    the core signals (``trikchi.signals``: notices, webhooks, metrics)."""
    from trikchi import metrics, notices
    from trikchi.admin import bans
    from trikchi.auth import seams
    from trikchi.mfa import init_app as init_mfa
    from trikchi.outbox import services as outbox
    from trikchi.phone import services as phone
    from trikchi.seed import exchange as seed
    from trikchi.social import services as social

    seams.init_app(app)
    bans.init_app(app)
    init_mfa(app)
    social.init_app(app)
    phone.init_app(app)
    seed.init_app(app)
    notices.init_app(app)
    outbox.init_app(app)
    metrics.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Mount the feature blueprints on the API (and so in the OpenAPI document)."""
    from trikchi.account.routes import blp as profile_blp
    from trikchi.admin.deliveries import blp as deliveries_blp
    from trikchi.admin.routes import blp as admin_blp
    from trikchi.auth.routes import blp as auth_blp
    from trikchi.console.routes import blp as console_blp
    from trikchi.keys.routes import blp as keys_blp
    from trikchi.mfa.routes import blp as mfa_blp
    from trikchi.openapi import api
    from trikchi.ops.routes import blp as ops_blp
    from trikchi.ops.routes import register_swagger_assets
    from trikchi.phone.routes import blp as phone_blp
    from trikchi.social.routes import blp as social_blp

    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    api.register_blueprint(auth_blp)
    api.register_blueprint(profile_blp)
    api.register_blueprint(mfa_blp)
    api.register_blueprint(social_blp)
    api.register_blueprint(phone_blp)
    api.register_blueprint(admin_blp)
    api.register_blueprint(deliveries_blp)
    api.register_blueprint(keys_blp)
    api.register_blueprint(ops_blp)
    register_swagger_assets(app)
    # The staff console: static files, outside the API document.
    app.register_blueprint(console_blp)


def register_errorhandlers(app: Flask) -> None:
    """Make every error, from any layer, the same JSON shape."""
    from trikchi.errors import register_error_handlers

    register_error_handlers(app)


def register_commands(app: Flask) -> None:
    """Add the ``flask`` CLI commands."""
    from trikchi.cli import register_cli

    register_cli(app)


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
