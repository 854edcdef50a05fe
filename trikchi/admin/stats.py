"""``GET /admin/stats``: sign-ins, registrations and SMS per day from the audit log, and live sessions.

Three queries. The events of the frequent counted types over the days asked for, grouped by UTC
day, type and method, from the index ``ix_auth_events_type_created_at_method`` alone; the rare
ones (refused social sign-ins and second steps) with the details they need; and the live
sessions, by the one definition of a live session (``AuthSession.is_live``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, cast, func, select

from trikchi.auth.models import AuthSession
from trikchi.database import utcnow
from trikchi.events import AuthEvent, Events
from trikchi.extensions import db

# The counted types: the frequent ones from the index alone; the rare refusals with their details
# (a social refusal's provider, which step a second-step refusal was). A refused sign-in counts
# for the method it tried (``_failed_method``).
_BY_INDEX = (
    Events.LOGIN_SUCCEEDED,
    Events.REGISTERED,
    Events.PHONE_CODE_SENT,
    Events.LOGIN_FAILED,
    Events.PASSKEY_LOGIN_FAILED,
)
_BY_DETAILS = (Events.SOCIAL_LOGIN_FAILED, Events.MFA_CHALLENGE_FAILED)


def _utc_day(column: Any) -> ColumnElement[Any]:
    """The UTC date of a timestamp column, as the backend computes it."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    # SQLite stores naive UTC text ("2026-12-07 22:30:00.123456"): its first ten characters.
    return func.substr(column, 1, 10)


def _failed_method(type_: str, method: str | None, provider: str | None) -> str:
    """The method a refused sign-in tried, named as its successful sign-in's ``method`` is."""
    if method:
        return method
    if type_ == Events.PASSKEY_LOGIN_FAILED:
        return "passkey"
    if type_ == Events.SOCIAL_LOGIN_FAILED:
        return "telegram" if provider == "telegram" else f"oidc:{provider}"
    if type_ == Events.MFA_CHALLENGE_FAILED:
        return "totp"  # a second step whose token was unknown or dead: no code was tried
    return "password"  # a password sign-in's failures record only their reason


def sign_in_stats(days: int, now: datetime | None = None) -> dict[str, Any]:
    """Per UTC day, the last ``days`` days up to today: sign-ins by method and result,
    registrations and SMS codes sent; and how many sessions are live now."""
    now = now or utcnow()
    first = now.date() - timedelta(days=days - 1)
    since = AuthEvent.created_at >= datetime.combine(first, time(0), tzinfo=UTC)
    day = _utc_day(AuthEvent.created_at).label("day")
    # The frequent types by the index alone (type, created_at, method): no row is read.
    counted = db.session.execute(
        select(day, AuthEvent.type, AuthEvent.method, func.count())
        .where(AuthEvent.type.in_(_BY_INDEX), since)
        .group_by(day, AuthEvent.type, AuthEvent.method)
    ).all()
    # The rare ones need their details: a social refusal names its provider, and only a second
    # step of a sign-in (not one of turning TOTP on or off) is a refused sign-in.
    provider, step = (AuthEvent.details[key].as_string().label(key) for key in ("provider", "step"))
    detailed = db.session.execute(
        select(day, AuthEvent.type, AuthEvent.method, provider, step, func.count())
        .where(AuthEvent.type.in_(_BY_DETAILS), since)
        # By the labels: PostgreSQL matches a grouped expression by its text, and each JSON key
        # is a bound parameter of its own there.
        .group_by(day, AuthEvent.type, AuthEvent.method, provider, step)
    ).all()

    per_day: dict[date, dict[str, Any]] = {
        first + timedelta(days=n): {
            "sign_ins": defaultdict(lambda: {"succeeded": 0, "failed": 0}),
            "registrations": 0,
            "sms_sent": 0,
        }
        for n in range(days)
    }
    rows = [(*row[:3], None, None, row[3]) for row in counted] + list(detailed)
    for day_value, type_, method, provider_name, step_name, count in rows:
        entry = per_day.get(day_value if isinstance(day_value, date) else date.fromisoformat(day_value))
        if entry is None:  # an event stamped after ``now`` (another request, meanwhile)
            continue
        if type_ == Events.LOGIN_SUCCEEDED:
            entry["sign_ins"][method or "password"]["succeeded"] += count
        elif type_ == Events.REGISTERED:
            entry["registrations"] += count
        elif type_ == Events.PHONE_CODE_SENT:  # one per SMS code phone sign-in sends
            entry["sms_sent"] += count
        elif type_ != Events.MFA_CHALLENGE_FAILED or step_name == "login":
            entry["sign_ins"][_failed_method(type_, method, provider_name)]["failed"] += count

    active = db.session.scalar(select(func.count()).select_from(AuthSession).where(AuthSession.is_live(now)))
    return {
        "days": [
            {"date": day_date, **entry, "sign_ins": dict(sorted(entry["sign_ins"].items()))}
            for day_date, entry in per_day.items()
        ],
        "active_sessions": active,
    }
