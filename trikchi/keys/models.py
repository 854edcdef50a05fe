"""The signing keys table: one row per key, from standby to retired."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from trikchi.database import UTCDateTime, utcnow
from trikchi.extensions import db

STANDBY = "standby"  # published in the JWKS, not signing yet
CURRENT = "current"  # signs every new access token (exactly one)
PREVIOUS = "previous"  # published so that its tokens keep verifying until they expire
RETIRED = "retired"  # gone from the JWKS; its tokens are refused
PUBLISHED = (STANDBY, CURRENT, PREVIOUS)


def _at_most_one(state: str) -> Index:
    """A partial unique index: at most one key in ``state``."""
    where = text(f"state = '{state}'")
    return Index(
        f"uq_signing_keys_one_{state}", "state", unique=True, sqlite_where=where, postgresql_where=where
    )


class SigningKey(db.Model):
    """An asymmetric access-token signing key; the private half is stored encrypted."""

    __tablename__ = "signing_keys"
    # At most one current key, enforced by the database (two workers racing at first start),
    # and at most one standby key (two operators adding at once).
    __table_args__ = (_at_most_one(CURRENT), _at_most_one(STANDBY))

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10), index=True)
    # The public JWK (kty, crv/x/y or n/e); never any private parameter.
    public_jwk: Mapped[dict] = mapped_column(JSON)
    # PKCS#8 PEM of the private key, encrypted with Fernet under SIGNING_KEYS_SECRET.
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"<SigningKey {self.kid} {self.alg} {self.state}>"
