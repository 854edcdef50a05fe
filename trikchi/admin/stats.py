"""``GET /admin/stats``: sign-ins, registrations and SMS per day from the audit log, and live sessions.

A past UTC day never changes, so its counts are computed once and kept in ``auth_event_days``
(the roll-up): a request reads the rolled-up days in one small query, counts each closed day not
rolled up yet from the index (one range scan of that day, written in its own short transaction),
and counts the open days, today and, for ``CLOSED_AFTER`` after midnight, yesterday, live.
``flask stats rollup`` rolls the closed days up outside requests (a cron job), so that no request
pays for them.

A day's counts, live or rolled up, come from two queries over its range of ``created_at``: the
events of the frequent counted types grouped by type and method, from the index
``ix_auth_events_type_created_at_method`` alone; and the rare ones (refused social sign-ins and
second steps) with the details they need. The live sessions are counted by the one definition of
a live session (``AuthSession.is_live``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, Integer, String, delete, func, select
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


def count_day(day: date, connection: Any = None) -> Counter[tuple[str, str]]:
    """The counts of one UTC day from the audit log, by (kind, method): two index range scans
    (on ``connection``, or the request's session)."""
    database = db.session if connection is None else connection
    in_day = (AuthEvent.created_at >= _start(day), AuthEvent.created_at < _start(day + timedelta(days=1)))
    # The frequent types by the index alone (type, created_at, method): no row is read.
    counted = database.execute(
        select(AuthEvent.type, AuthEvent.method, func.count())
        .where(AuthEvent.type.in_(_BY_INDEX), *in_day)
        .group_by(AuthEvent.type, AuthEvent.method)
    ).all()
    # The rare ones need their details: a social refusal names its provider, and only a second
    # step of a sign-in (not one of turning TOTP on or off) is a refused sign-in.
    provider, step = (AuthEvent.details[key].as_string().label(key) for key in ("provider", "step"))
    detailed = database.execute(
        select(AuthEvent.type, AuthEvent.method, provider, step, func.count())
        .where(AuthEvent.type.in_(_BY_DETAILS), *in_day)
        # By the labels: PostgreSQL matches a grouped expression by its text, and each JSON key
        # is a bound parameter of its own there.
        .group_by(AuthEvent.type, AuthEvent.method, provider, step)
    ).all()
    counts: Counter[tuple[str, str]] = Counter()
    for type_, method, provider_name, step_name, count in [
        (*row[:2], None, None, row[2]) for row in counted
    ] + [tuple(row) for row in detailed]:
        if type_ == Events.LOGIN_SUCCEEDED:
            counts[SUCCEEDED, (method or "password")[:40]] += count
        elif type_ == Events.REGISTERED:
            counts[REGISTRATIONS, ""] += count
        elif type_ == Events.PHONE_CODE_SENT:  # one per SMS code phone sign-in sends
            counts[SMS_SENT, ""] += count
        elif type_ != Events.MFA_CHALLENGE_FAILED or step_name == "login":
            counts[FAILED, _failed_method(type_, method, provider_name)[:40]] += count
    return counts


def _insert() -> Any:
    """INSERT … ON CONFLICT DO NOTHING into the roll-up, in the database's own words."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(AuthEventDay.__table__).on_conflict_do_nothing(
        index_elements=["day", "kind", "method"]
    )


def roll_up_day(day: date, redo: bool = False) -> Counter[tuple[str, str]]:
    """Count a closed day and keep its counts, in a transaction of its own; a day another request
    rolled up meanwhile is left as it is (the same counts: a closed day does not change).
    ``redo`` counts it again and replaces what was kept."""
    # Its own short transaction, on a connection of its own: the request's session writes nothing.
    with db.engine.begin() as connection:
        counts = count_day(day, connection)
        rows = [
            {"day": day, "kind": kind, "method": method, "count": n} for (kind, method), n in counts.items()
        ]
        rows.append({"day": day, "kind": ROLLED_UP, "method": "", "count": sum(counts.values())})
        if redo:
            connection.execute(delete(AuthEventDay).where(AuthEventDay.day == day))
        connection.execute(_insert(), rows)
    return counts


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
    for day in missing:
        roll_up_day(day, redo=redo)
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
    for day_value in per_day:
        if day_value in rolled_up:
            continue
        # A closed day not rolled up yet is rolled up now; an open one is counted live.
        per_day[day_value] = roll_up_day(day_value) if day_value <= last_closed else count_day(day_value)

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
