"""Pending SMS codes: one per number for a sign-in, one per account for a change of number."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from trikchi.database import UTCDateTime, utcnow
from trikchi.extensions import db

SIGN_IN = "sign_in"
CHANGE = "change"
PURPOSES = (SIGN_IN, CHANGE)


class PhoneCode(db.Model):
    """A code sent by SMS, by its keyed digest only (``phone.services``).

    ``slot`` is what a new code replaces: ``sign_in:<E.164>`` (one pending sign-in per number) or
    ``change:<user id>`` (one pending change of number per account). The primary key makes two
    racing requests for one slot leave one row.
    """

    __tablename__ = "phone_codes"

    slot: Mapped[str] = mapped_column(String(40), primary_key=True)
    phone: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(10))
    # The account a change of number belongs to; None for a sign-in.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
