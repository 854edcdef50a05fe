"""Rate limits of the social sign-in endpoints (Flask-Limiter), configured by ``RATELIMIT_*``."""

from __future__ import annotations

from trikchi.auth.limits import setting
from trikchi.extensions import limiter

social_attempts = limiter.limit(setting("RATELIMIT_SOCIAL"), scope="social")
identity_changes = limiter.limit(setting("RATELIMIT_IDENTITIES"), scope="identities")
