"""``GET /admin/stats``: sign-ins, registrations and SMS per day from the audit log, and live sessions.

A past UTC day never changes, so its counts are computed once and kept in ``auth_event_days``
(the roll-up): a request reads the rolled-up days in one small query, counts the closed days not
rolled up yet from the index (one range scan from the first to the last of them; each day then
written in its own short transaction), and counts the open days, today and, for
``CLOSED_AFTER`` after midnight, yesterday, live.
``flask stats rollup`` rolls the closed days up outside requests (a cron job), so that no request
pays for them.

Days are counted, live or to be rolled up, by two queries over their range of ``created_at``:
the events of the frequent counted types grouped by UTC day, type and method, from the index
``ix_auth_events_type_created_at_method`` alone; and the rare ones (refused social sign-ins and
second steps) with the details they need. The live sessions are counted by the one definition of
a live session (``AuthSession.is_live``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, Integer, String, cast, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from trikchi.auth.models import AuthSession
from trikchi.database import utcnow
from trikchi.events import AuthEvent, Events
from trikchi.extensions import db

# A day is closed, and may be rolled up, this long after its end: an event is stamped when its
# request writes it and seen when the request commits, and a server's clock may run a little
# behind; an event of a day seen later than this is not counted once the day is rolled up.
CLOSED_AFTER = timedelta(minutes=10)

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

# What a day's counts are kept as: (kind, method) → count. The kinds of a sign-in count by its
# method; the others have the method "". ``ROLLED_UP`` marks a day as rolled up (its count: the
# day's counted events), so that a day without events is not counted again.
SUCCEEDED, FAILED, REGISTRATIONS, SMS_SENT, ROLLED_UP = (
    "succeeded",
    "failed",
    "registrations",
    "sms_sent",
    "day",
)


class AuthEventDay(db.Model):
    """One count of a rolled-up UTC day: sign-ins of a method by result, registrations, SMS sent."""

    __tablename__ = "auth_event_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    method: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


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


def _start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _utc_day(column: Any) -> ColumnElement[Any]:
    """The UTC date of a timestamp column, as the backend computes it."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    # SQLite stores naive UTC text ("2026-12-07 22:30:00.123456"): its first ten characters.
    return func.substr(column, 1, 10)


def count_days(first: date, last: date) -> dict[date, Counter[tuple[str, str]]]:
    """The counts of the UTC days ``first`` to ``last`` from the audit log, by day and (kind,
    method): two range scans of the index, grouped by day."""
    in_range = (
        AuthEvent.created_at >= _start(first),
        AuthEvent.created_at < _start(last + timedelta(days=1)),
    )
    day = _utc_day(AuthEvent.created_at).label("day")
    # The frequent types by the index alone (type, created_at, method): no row is read.
    counted = db.session.execute(
        select(day, AuthEvent.type, AuthEvent.method, func.count())
        .where(AuthEvent.type.in_(_BY_INDEX), *in_range)
        .group_by(day, AuthEvent.type, AuthEvent.method)
    ).all()
    # The rare ones need their details: a social refusal names its provider, and only a second
    # step of a sign-in (not one of turning TOTP on or off) is a refused sign-in.
    provider, step = (AuthEvent.details[key].as_string().label(key) for key in ("provider", "step"))
    detailed = db.session.execute(
        select(day, AuthEvent.type, AuthEvent.method, provider, step, func.count())
        .where(AuthEvent.type.in_(_BY_DETAILS), *in_range)
        # By the labels: PostgreSQL matches a grouped expression by its text, and each JSON key
        # is a bound parameter of its own there.
        .group_by(day, AuthEvent.type, AuthEvent.method, provider, step)
    ).all()
    days: dict[date, Counter[tuple[str, str]]] = {
        first + timedelta(days=n): Counter() for n in range((last - first).days + 1)
    }
    rows = [(*row[:3], None, None, row[3]) for row in counted] + [tuple(row) for row in detailed]
    for day_value, type_, method, provider_name, step_name, count in rows:
        counts = days[day_value if isinstance(day_value, date) else date.fromisoformat(day_value)]
        if type_ == Events.LOGIN_SUCCEEDED:
            counts[SUCCEEDED, (method or "password")[:40]] += count
        elif type_ == Events.REGISTERED:
            counts[REGISTRATIONS, ""] += count
        elif type_ == Events.PHONE_CODE_SENT:  # one per SMS code phone sign-in sends
            counts[SMS_SENT, ""] += count
        elif type_ != Events.MFA_CHALLENGE_FAILED or step_name == "login":
            counts[FAILED, _failed_method(type_, method, provider_name)[:40]] += count
    return days


def _insert() -> Any:
    """INSERT … ON CONFLICT DO NOTHING into the roll-up, in the database's own words."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(AuthEventDay.__table__).on_conflict_do_nothing(
        index_elements=["day", "kind", "method"]
    )


def keep(days: dict[date, Counter[tuple[str, str]]], redo: bool = False) -> None:
    """Keep the counts of closed days, each day in a short transaction of its own (on a connection
    of its own: the request's session writes nothing). A day another request kept meanwhile is
    left as it is: the same counts, a closed day does not change. ``redo`` replaces what was kept."""
    for day, counts in days.items():
        rows = [
            {"day": day, "kind": kind, "method": method, "count": n} for (kind, method), n in counts.items()
        ]
        rows.append({"day": day, "kind": ROLLED_UP, "method": "", "count": sum(counts.values())})
        with db.engine.begin() as connection:
            if redo:
                connection.execute(delete(AuthEventDay).where(AuthEventDay.day == day))
            connection.execute(_insert(), rows)


def _roll_up(missing: list[date], redo: bool = False) -> dict[date, Counter[tuple[str, str]]]:
    """Count the closed days ``missing`` (one scan from the first to the last) and keep them."""
    if not missing:
        return {}
    counted = count_days(min(missing), max(missing))
    days = {day: counted[day] for day in missing}
    keep(days, redo=redo)
    return days


def closed_days(now: datetime) -> date:
    """The last closed UTC day at ``now`` (see ``CLOSED_AFTER``)."""
    return (now - CLOSED_AFTER).date() - timedelta(days=1)


def roll_up(days: int, now: datetime | None = None, redo: bool = False) -> int:
    """Roll up the closed days among the last ``days`` not rolled up yet (all of them with
    ``redo``); how many were."""
    now = now or utcnow()
    last = closed_days(now)
    first = now.date() - timedelta(days=days - 1)
    wanted = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    done = set() if redo else _rolled_up(first, last)
    missing = [day for day in wanted if day not in done]
    _roll_up(missing, redo=redo)
    return len(missing)


def _rolled_up(first: date, last: date) -> set[date]:
    return set(
        db.session.scalars(
            select(AuthEventDay.day).where(
                AuthEventDay.kind == ROLLED_UP, AuthEventDay.day >= first, AuthEventDay.day <= last
            )
        )
    )


def sign_in_stats(days: int, now: datetime | None = None) -> dict[str, Any]:
    """Per UTC day, the last ``days`` days up to today: sign-ins by method and result,
    registrations and SMS codes sent; and how many sessions are live now."""
    now = now or utcnow()
    first = now.date() - timedelta(days=days - 1)
    last_closed = closed_days(now)
    per_day: dict[date, Counter[tuple[str, str]]] = {
        first + timedelta(days=n): Counter() for n in range(days)
    }
    rolled_up: set[date] = set()
    for day_value, kind, method, count in db.session.execute(
        select(AuthEventDay.day, AuthEventDay.kind, AuthEventDay.method, AuthEventDay.count).where(
            AuthEventDay.day >= first, AuthEventDay.day <= last_closed
        )
    ):
        if kind == ROLLED_UP:
            rolled_up.add(day_value)
        else:
            per_day[day_value][kind, method] = count
    # The closed days not rolled up yet are rolled up now; the open ones are counted live.
    per_day.update(_roll_up([day for day in per_day if day <= last_closed and day not in rolled_up]))
    open_from = max(first, last_closed + timedelta(days=1))
    per_day.update(count_days(open_from, now.date()))

    active = db.session.scalar(select(func.count()).select_from(AuthSession).where(AuthSession.is_live(now)))
    return {
        "days": [_day(day_value, counts) for day_value, counts in per_day.items()],
        "active_sessions": active,
    }


def _day(day_value: date, counts: Counter[tuple[str, str]]) -> dict[str, Any]:
    sign_ins: dict[str, dict[str, int]] = {}
    for (kind, method), count in sorted(counts.items()):
        if kind in (SUCCEEDED, FAILED):
            sign_ins.setdefault(method, {SUCCEEDED: 0, FAILED: 0})[kind] = count
    return {
        "date": day_value,
        "sign_ins": dict(sorted(sign_ins.items())),
        "registrations": counts[REGISTRATIONS, ""],
        "sms_sent": counts[SMS_SENT, ""],
    }
