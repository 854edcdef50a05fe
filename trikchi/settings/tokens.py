"""Sessions and their tokens: lifetimes, rotation, freshness, where tokens travel (SPEC §2, §8)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from trikchi.settings.base import Integer, Section, Text


class Tokens(Section):
    """Access tokens in the Authorization header, refresh tokens in an HttpOnly cookie with a
    double-submit CSRF cookie (flask-jwt-extended's cookie transport)."""

    title = "Sessions and tokens"

    JWT_SECRET_KEY = Text(
        None,
        "signs refresh tokens (and HS256 access tokens); production refuses to start without one of"
        " at least 32 bytes",
        secret=True,
    )
    ACCESS_TOKEN_MINUTES = Integer(15, "access token lifetime, minutes", minimum=1)
    ACCESS_TOKEN_SECONDS = Integer(
        None, "access token lifetime in seconds; wins over the minutes (tests, demos of silent renewal)"
    )
    REFRESH_TOKEN_DAYS = Integer(30, "refresh token (and cookie) lifetime, days", minimum=1)
    SESSION_MAX_DAYS = Integer(90, "absolute session lifetime, days", minimum=1)
    REFRESH_REUSE_GRACE_SECONDS = Integer(10, "window in which a just-rotated refresh token still works")
    # SPEC §8: sensitive operations need an interactive authentication this recent.
    FRESH_SIGNIN_SECONDS = Integer(
        600, "how recent the last interactive sign-in must be for sensitive operations", minimum=1
    )

    def derived(self) -> dict[str, Any]:
        access = (
            timedelta(seconds=self.ACCESS_TOKEN_SECONDS)
            if self.ACCESS_TOKEN_SECONDS
            else timedelta(minutes=self.ACCESS_TOKEN_MINUTES)
        )
        return {
            "JWT_ACCESS_TOKEN_EXPIRES": access,
            "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=self.REFRESH_TOKEN_DAYS),
            "JWT_TOKEN_LOCATION": ["headers", "cookies"],
            "JWT_HEADER_NAME": "Authorization",
            "JWT_HEADER_TYPE": "Bearer",
            "JWT_DECODE_LEEWAY": 5,
            "JWT_REFRESH_COOKIE_NAME": "refresh_token",
            "JWT_REFRESH_COOKIE_PATH": "/",
            "JWT_REFRESH_CSRF_COOKIE_NAME": "csrf_refresh_token",
            "JWT_REFRESH_CSRF_COOKIE_PATH": "/",
            "JWT_REFRESH_CSRF_HEADER_NAME": "X-CSRF-TOKEN",
            "JWT_COOKIE_CSRF_PROTECT": True,
            "JWT_CSRF_IN_COOKIES": True,
            "JWT_CSRF_CHECK_FORM": False,
            "JWT_SESSION_COOKIE": False,  # persistent cookies with Max-Age
        }
