"""How long ``GET /admin/stats`` takes on a database of 1 million audit events (docs/console.md).

    .venv/bin/python scripts/measure_stats.py [sqlite|postgresql ...]

For each backend: an empty database migrated to head (``flask db upgrade``), then by bulk INSERTs
10,000 users, 100,000 sessions (half of them live) and 1,000,000 events of a shop's mix (sign-ins,
refusals, registrations, SMS codes, logouts, …), spread over the last 365 days ("year") and, the
worst case, all within the last 30 ("month"). It times the service behind the endpoint
(``admin.stats.sign_in_stats``): the first request of 30 and of 90 days on an empty roll-up
("cold": it rolls up every closed day it shows), then requests on a warm roll-up for 30 and 90
days, a few runs each (median and slowest); ``roll_up(90)`` alone (``flask stats rollup``, from
empty), and the count of live sessions alone (part of every request). PostgreSQL is a throwaway
cluster (tests/support/postgres.py).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import make_app, migrate_to_head  # noqa: E402
from tests.support.postgres import ThrowawayPostgres, find_bindir  # noqa: E402
from trikchi.admin.stats import AuthEventDay, roll_up, sign_in_stats  # noqa: E402
from trikchi.auth.models import AuthSession  # noqa: E402
from trikchi.database import utcnow  # noqa: E402
from trikchi.extensions import db  # noqa: E402

EVENTS = 1_000_000
USERS = 10_000
SESSIONS = 100_000
RUNS = 7

# (type, details) by i % 20: 45% sign-ins, 10% refused passwords, 5% other refusals, 5%
# registrations, 10% SMS codes, 25% events the stats do not count.
MIX = [
    *[("login_succeeded", '{"method": "password"}')] * 5,
    *[("login_succeeded", '{"method": "phone"}')] * 2,
    ("login_succeeded", '{"method": "totp"}'),
    ("login_succeeded", '{"method": "oidc:google"}'),
    *[("login_failed", '{"reason": "bad_credentials"}')] * 2,
    ("mfa_challenge_failed", '{"step": "login", "method": "totp", "reason": "wrong_code"}'),
    ("registered", "null"),
    *[("phone_code_sent", "null")] * 2,
    ("logout", "null"),
    ("session_revoked", "null"),
    ("profile_updated", "null"),
    ("password_changed", "null"),
    ("email_verified", "null"),
]
if len(MIX) != 20:
    raise SystemExit("MIX must have 20 entries (i % 20)")


def _case(column: int) -> str:
    """A CASE on i % 20: the type (0), the details (1) or the method column (2) of MIX."""
    if column == 2:
        methods = [json.loads(details).get("method") if details != "null" else None for _, details in MIX]
        values = " ".join(f"WHEN {n} THEN '{methods[n]}'" for n in range(20) if methods[n])
        return f"CASE i % 20 {values} ELSE NULL END"
    values = " ".join(f"WHEN {n} THEN '{MIX[n][column]}'" for n in range(20))
    return f"CASE i % 20 {values} END"


def fill_sqlite(connection, span_days: int) -> None:
    seconds = span_days * 86400
    connection.execute(
        text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :users) "
            "INSERT INTO users (name, email, role, is_active, email_verified, created_at, updated_at, "
            "security_stamp) SELECT 'u' || i, 'u' || i || '@example.com', 'customer', 1, 0, "
            "datetime('now'), datetime('now'), 's' FROM n"
        ),
        {"users": USERS},
    )
    connection.execute(
        text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :sessions) "
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, absolute_expires_at, "
            "auth_time, auth_method, rotation_count) SELECT printf('%032d', i), 1 + i % :users, "
            "datetime('now'), datetime('now'), datetime('now', CASE i % 2 WHEN 0 THEN '+10 days' "
            "ELSE '-1 days' END), datetime('now', '+90 days'), datetime('now'), 'password', 0 FROM n"
        ),
        {"sessions": SESSIONS, "users": USERS},
    )
    connection.execute(
        text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :events) "  # noqa: S608
            "INSERT INTO auth_events (created_at, type, user_id, details, method) SELECT "
            "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ((i * 7919) % :seconds) || ' seconds'), "
            f"{_case(0)}, 1 + i % :users, {_case(1)}, {_case(2)} FROM n"
        ),
        {"events": EVENTS, "seconds": seconds, "users": USERS},
    )
    connection.execute(text("ANALYZE"))


def fill_postgresql(connection, span_days: int) -> None:
    seconds = span_days * 86400
    connection.execute(
        text(
            "INSERT INTO users (name, email, role, is_active, email_verified, created_at, updated_at, "
            "security_stamp) SELECT 'u' || i, 'u' || i || '@example.com', 'customer', true, false, "
            "now(), now(), 's' FROM generate_series(1, :users) i"
        ),
        {"users": USERS},
    )
    connection.execute(
        text(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, absolute_expires_at, "
            "auth_time, auth_method, rotation_count) SELECT lpad(i::text, 32, '0'), 1 + i % :users, now(), "
            "now(), now() + CASE i % 2 WHEN 0 THEN interval '10 days' ELSE interval '-1 day' END, "
            "now() + interval '90 days', now(), 'password', 0 FROM generate_series(1, :sessions) i"
        ),
        {"sessions": SESSIONS, "users": USERS},
    )
    connection.execute(
        text(
            "INSERT INTO auth_events (created_at, type, user_id, details, method) SELECT "  # noqa: S608
            "now() - make_interval(secs => (i::bigint * 7919) % :seconds), "
            f"{_case(0)}, 1 + i % :users, ({_case(1)})::json, {_case(2)} FROM generate_series(1, :events) i"
        ),
        {"events": EVENTS, "seconds": seconds, "users": USERS},
    )
    connection.execute(text("ANALYZE"))


def timed(call):
    """How long ``call`` took, in ms, and what it returned (with the session put back)."""
    started = time.perf_counter()
    result = call()
    took = (time.perf_counter() - started) * 1000
    db.session.remove()
    return took, result


def empty_rollup() -> None:
    with db.engine.begin() as connection:
        connection.execute(delete(AuthEventDay))


def summary(result: dict) -> str:
    counted = sum(n["succeeded"] + n["failed"] for day in result["days"] for n in day["sign_ins"].values())
    return f"sign-ins counted {counted:,}, live sessions {result['active_sessions']:,}"


def measure(url: str, backend: str, span: str, span_days: int) -> None:
    migrate_to_head(url)
    app = make_app(url)
    with app.app_context():
        with db.engine.begin() as connection:
            started = time.perf_counter()
            (fill_sqlite if backend == "sqlite" else fill_postgresql)(connection, span_days)
            filled = time.perf_counter() - started
        if backend == "postgresql":
            # What autovacuum does soon after: the visibility map lets an index-only scan skip rows.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE auth_events"))
        print(f"{backend:10} {span:5} filled in {filled:.0f} s", flush=True)
        for days in (30, 90):  # the first request on an empty roll-up
            empty_rollup()
            took, result = timed(lambda days=days: sign_in_stats(days))
            print(f"{backend:10} {span:5} days={days:2} cold: {took:7.1f} ms ({summary(result)})", flush=True)
        for days in (30, 90):  # the next ones
            timings = []
            for _ in range(RUNS):
                took, result = timed(lambda days=days: sign_in_stats(days))
                timings.append(took)
            print(
                f"{backend:10} {span:5} days={days:2} warm: median {statistics.median(timings):6.1f} ms, "
                f"slowest {max(timings):6.1f} ms ({summary(result)})",
                flush=True,
            )
        empty_rollup()
        took, count = timed(lambda: roll_up(90))
        print(f"{backend:10} {span:5} flask stats rollup (90 days, from empty): {took:7.1f} ms, {count} days")
        timings = []
        for _ in range(RUNS):
            took, _count = timed(
                lambda: db.session.scalar(
                    select(func.count()).select_from(AuthSession).where(AuthSession.is_live(utcnow()))
                )
            )
            timings.append(took)
        print(
            f"{backend:10} {span:5} live sessions alone: median {statistics.median(timings):6.1f} ms, "
            f"slowest {max(timings):6.1f} ms",
            flush=True,
        )
        db.engine.dispose()


def main(backends: list[str]) -> None:
    for backend in backends:
        for span, span_days in (("year", 365), ("month", 30)):
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as directory:
                    measure(f"sqlite:///{directory}/stats.db", backend, span, span_days)
            else:
                server = ThrowawayPostgres(find_bindir()).start()
                try:
                    measure(server.create_database("stats"), backend, span, span_days)
                finally:
                    server.stop()


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
