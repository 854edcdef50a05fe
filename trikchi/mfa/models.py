"""Tables of second factors and passkeys; every row belongs to a user and goes with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from trikchi.auth.models import new_id
from trikchi.database import UTCDateTime, utcnow
from trikchi.extensions import db


class TotpCredential(db.Model):
    """A user's TOTP secret (encrypted); on once ``confirmed_at`` is set."""

    __tablename__ = "mfa_totp"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # Fernet ciphertext of the base32 secret (trikchi.mfa.crypto).
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The RFC 6238 time step of the last accepted code: a code is accepted once.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RecoveryCode(db.Model):
    """One single-use recovery code, by its SHA-256 only."""

    __tablename__ = "mfa_recovery_codes"
    __table_args__ = (Index("ix_mfa_recovery_codes_user_id_code_hash", "user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Passkey(db.Model):
    """A WebAuthn credential (discoverable) registered by a user."""

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # base64url of the raw credential id (at most 1023 bytes).
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The signature counter (an unsigned 32-bit number: wider than PostgreSQL's integer).
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # The WebAuthn user handle (base64url of random bytes) this credential was created for.
    user_handle: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    aaguid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    transports: Mapped[list | None] = mapped_column(JSON, nullable=True)
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebAuthnChallenge(db.Model):
    """A WebAuthn challenge handed out with options; single-use, by its SHA-256 only."""

    __tablename__ = "webauthn_challenges"

    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # registration | authentication
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    user_handle: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
