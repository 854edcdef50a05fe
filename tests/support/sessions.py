"""Helpers of the refresh-token tests: a browser's cookies set by hand, and time moved back."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from trikchi.auth.models import RefreshToken
from trikchi.extensions import db


def age_used_tokens(app, seconds: int) -> None:
    """Pretend every consumed refresh token was consumed ``seconds`` earlier."""
    with app.app_context():
        for token in db.session.scalars(select(RefreshToken).where(RefreshToken.used_at.is_not(None))):
            token.used_at = token.used_at - timedelta(seconds=seconds)
        db.session.commit()


def use_cookie(client, refresh: str, csrf: str) -> None:
    """The browser holds this refresh cookie and its CSRF cookie."""
    client.set_cookie("refresh_token", refresh)
    client.set_cookie("csrf_refresh_token", csrf)
