"""Identities: an account at a provider (``provider``, ``subject``) that signs in a trikchi user;
the Telegram payloads that already signed someone in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trikchi.auth.models import User
from trikchi.database import NEVER_REUSE_IDS, UTCDateTime, utcnow
from trikchi.extensions import db


class Identity(db.Model):
    """A provider's account (``oidc`` provider name or ``telegram``) linked to one user."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject", name="uq_identities_provider_subject"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(40))
    # The provider's stable id of the account (OpenID Connect ``sub``, Telegram user id).
    subject: Mapped[str] = mapped_column(String(255))
    # The address the provider gave when the identity was linked (shown to the user; never
    # used to sign in).
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()


class UsedTelegramPayload(db.Model):
    """A Telegram Login payload that signed someone in, so that it signs in once.

    Keyed by the SHA-256 of its ``hash`` field in lowercase hex (the schema takes either
    case of one signature). That digest names the signed payload without holding a
    credential (the ``hash`` with the public fields would sign in) or anything about the
    person (a digest of the names and ``auth_date`` could be confirmed by guessing).
    Kept until ``expires_at``, when the payload is too old to be accepted anyway.
    """

    __tablename__ = "used_telegram_payloads"

    hash_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
