"""Rate limits of the social sign-in endpoints (Flask-Limiter), configured by ``RATELIMIT_*``."""

from __future__ import annotations

from flask import current_app

from trikchi.extensions import limiter

social_attempts = limiter.limit(lambda: current_app.config["RATELIMIT_SOCIAL"], scope="social")
identity_changes = limiter.limit(lambda: current_app.config["RATELIMIT_IDENTITIES"], scope="identities")
