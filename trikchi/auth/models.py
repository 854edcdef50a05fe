"""Users, their server-side sessions and refresh tokens, and pending second steps of a sign-in
(the audit log is ``trikchi.events``)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    case,
    exists,
    false,
    not_,
    or_,
    true,
)
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trikchi.database import NEVER_REUSE_IDS, UTCDateTime, utcnow
from trikchi.extensions import db

CUSTOMER = "customer"
# A visitor's account before it has any credential (SPEC §15): made by ``POST /auth/guest``, it
# becomes a customer keeping its id (``auth.guests``). Not a role anyone is given.
GUEST = "guest"
# The roles an admin or ``flask users`` gives.
ROLES = (CUSTOMER, "admin")
# Integer primary keys are 32-bit on PostgreSQL: larger ids from a URL cannot exist.
MAX_ID = 2**31 - 1


def new_id() -> str:
    """An opaque, unguessable identifier for sessions and token rows."""
    return uuid.uuid4().hex


def new_stamp() -> str:
    """A fresh security stamp (``User.security_stamp``)."""
    return secrets.token_hex(16)


class User(db.Model):
    """A shop customer or staff member."""

    __tablename__ = "users"
    __table_args__ = (
        # Guests by age (``flask users prune-guests``) and counted apart (the admin user list).
        Index("ix_users_role_created_at", "role", "created_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Stored trimmed and lower-cased, so a plain unique index is case-insensitive. None for an
    # account made by a sign-in whose provider gave no usable address (Telegram; SPEC §9).
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    # None for an account made by social sign-in, until a password reset sets one.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(20), default="customer", server_default="customer")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # E.164 (``trikchi.phones``); None until the account proves a number with an SMS code (SPEC §14).
    phone: Mapped[str | None] = mapped_column(String(16), nullable=True, unique=True, index=True)
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The language of mails and error messages (uz, ru, en); None: the browser's Accept-Language.
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The account's security state (``auth.security``): every mailed link and every cookie that
    # grants access or changes the account is bound to it, and dies when it changes (password
    # change or reset, sign-out everywhere, email change, second factors, a claim).
    security_stamp: Mapped[str] = mapped_column(String(32), default=new_stamp)
    # When the stamp last changed; None: not since the account (or the upgrade) began.
    security_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A ban by staff (SPEC §16): banned while ``banned_at`` is set and ``banned_until`` is None
    # (until lifted) or still ahead (``is_banned``), so a timed ban lifts by itself, with no job.
    # ``ban_reason`` is for staff only. Lifting a ban clears all three.
    banned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    banned_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ban_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)

    sessions: Mapped[list[AuthSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_guest(self) -> bool:
        """A guest (SPEC §15): no credential yet, kept by its id until it becomes a customer."""
        return self.role == GUEST

    def __repr__(self) -> str:
        return f"<User {self.id}>"

    # The one definition of a banned account, in Python and in SQL: the sign-in decision's check,
    # the live-session rule (so the guard's one query refuses a banned user's token) and the
    # last-admin rule all ask it.
    @hybrid_method
    def is_banned(self, now: datetime) -> bool:
        """Banned by staff, until lifted or until a time still ahead of ``now``."""
        return self.banned_at is not None and (self.banned_until is None or now < self.banned_until)

    @is_banned.inplace.expression
    @classmethod
    def _is_banned_sql(cls, now: Any) -> ColumnElement[bool]:
        users = cls.__table__.c
        return and_(users.banned_at.is_not(None), or_(users.banned_until.is_(None), users.banned_until > now))


class AuthSession(db.Model):
    """One sign-in on one device; every refresh token of that device belongs to it."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Sliding end: moved forward by each refresh, never past ``absolute_expires_at``.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The last interactive authentication of this session (sign-in or re-authentication) and
    # how it was made (password, totp, passkey, oidc:<provider>, telegram, …): SPEC §8's
    # ``auth_time``. A refresh does not move it.
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    auth_method: Mapped[str] = mapped_column(String(40), default="password", server_default="password")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    # Plain refreshes are recorded here rather than as events (SPEC §4): how many, and the
    # address and user agent of the last one (``ip``/``user_agent`` are the sign-in's).
    rotation_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    last_user_agent: Mapped[str | None] = mapped_column(String(255), nullable=True)

    user: Mapped[User] = relationship(back_populates="sessions")

    # The one definition of a live session (SPEC §4), in Python and, side by side, in SQL: what
    # the guard, the rotation, the session list, pruning and the seed's grace window all ask.
    @hybrid_method
    def is_live(self, now: datetime) -> bool:
        """Not revoked, before both of its ends, and its user active and not banned."""
        return (
            self.revoked_at is None
            and now < self.expires_at
            and now < self.absolute_expires_at
            and self.user.is_active
            and not self.user.is_banned(now)
        )

    @is_live.inplace.expression
    @classmethod
    def _is_live_sql(cls, now: Any) -> ColumnElement[bool]:
        """``is_live`` as an SQL condition on the ``sessions`` row (``now``: a value or a bound
        parameter); Core columns, so that Core statements stay Core."""
        sessions, users = cls.__table__.c, User.__table__.c
        return and_(
            sessions.revoked_at.is_(None),
            sessions.expires_at > now,
            sessions.absolute_expires_at > now,
            # Its own users row even where the query joins users already (the guard).
            exists()
            .where(users.id == sessions.user_id, users.is_active.is_(True), not_(User.is_banned(now)))
            .correlate_except(User.__table__),
        )

    # A refresh moves the sliding end to ``end`` (now plus the refresh lifetime), never past the
    # absolute end: in Python when a session opens, in SQL when a refresh touches it.
    @hybrid_method
    def sliding_end(self, end: datetime) -> datetime:
        """``end``, capped at the absolute end."""
        return min(end, self.absolute_expires_at)

    @sliding_end.inplace.expression
    @classmethod
    def _sliding_end_sql(cls, end: Any) -> ColumnElement[datetime]:
        absolute = cls.__table__.c.absolute_expires_at
        return case((absolute < end, absolute), else_=end)


class RefreshToken(db.Model):
    """A refresh token, by its ``jti`` only; single-use, chained to the one it replaced.

    Keyed by ``(session_id, jti)``: every lookup names the session, and a session's tokens sit
    together, so a refresh's consume and insert write one page of one B-tree. On SQLite the
    table is that B-tree (``WITHOUT ROWID``: no rowid table beside the key, no second index);
    on PostgreSQL ``used_at`` is in no index, so consuming a token is a HOT update.
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = {"sqlite_with_rowid": False}

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    parent_jti: Mapped[str | None] = mapped_column(String(36), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MfaChallenge(db.Model):
    """The pending second step of a sign-in (``auth.signin``): an ``mfa_token``, by its SHA-256 only."""

    __tablename__ = "mfa_challenges"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
