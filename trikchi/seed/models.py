"""What trikchi remembers of the seed: which users came from it, which of its tokens were exchanged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trikchi.database import UTCDateTime, utcnow
from trikchi.extensions import db


class SeedUser(db.Model):
    """A user imported from the seed, under the seed's id.

    Only these users' seed tokens are exchanged: an id the import skipped (a different
    trikchi user already had it) must never open a session for that other user.
    """

    __tablename__ = "seed_users"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SeedTokenExchange(db.Model):
    """A seed refresh token that was exchanged for a session, so that it works once.

    Keyed by the SHA-256 of the token's signed part (header and payload): the signature
    is determined by them, and its base64 has spare bits that would otherwise let one
    token be presented under several spellings.
    """

    __tablename__ = "seed_token_exchanges"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # SET NULL, not CASCADE: pruning the session must not make the token usable again.
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True
    )
    exchanged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The seed token's exp: after it the token is refused anyway and the row can go.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
