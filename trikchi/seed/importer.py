"""``flask users import-seed``: the seed's ``users`` table into trikchi, with the same ids (SPEC §12).

The seed's table (FastAPI + SQLAlchemy, SQLite or PostgreSQL) has ``id``, ``name``,
``email``, ``password_hash`` (``password`` in older versions; an argon2 PHC string as
passlib writes it, empty for Google sign-ins), ``role`` and ``is_superuser``. Rows are
read in id order, a batch at a time, and each batch is written in one transaction.
Hashes are kept as they are: argon2-cffi verifies passlib's, and ``authenticate``
rehashes them with trikchi's parameters at the user's next sign-in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError
from sqlalchemy import Engine, column, create_engine, func, insert, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from trikchi.addresses import InvalidEmail, canonical_email
from trikchi.auth.models import MAX_ID, ROLES, User
from trikchi.auth.schemas import EMAIL_MAX, NAME_MAX
from trikchi.database import utcnow
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.seed.models import SeedUser

DEFAULT_ROLE_MAP = {"customer": "customer", "admin": "admin"}
# passlib's argon2 hashes: $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash> (unpadded base64).
_PHC = re.compile(
    r"\$argon2(?:id|i|d)\$(?:v=\d{1,3}\$)?m=\d{1,10},t=\d{1,10},p=\d{1,3}\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{6,}"
)
_TRUE = {True, "1", "t", "true", "y", "yes"}

# Why a row was skipped, as the report prints it.
REASONS = {
    "invalid_id": "the id is not a whole number between 1 and 2147483647",
    "invalid_email": "the email is missing or not a valid address",
    "no_password": "no password hash (a Google sign-in account): nothing to sign in with yet",
    "malformed_hash": "the password hash is not an argon2 hash",
    "unknown_role": "the role is not one trikchi knows (map it with --map-role)",
    "id_taken": "trikchi already has a different user with this id",
    "email_taken": "the email already belongs to another trikchi user",
    "duplicate_email": "another seed row of the same batch has this email",
    "conflict": "a trikchi user with this id or email was created during the import",
}


class SeedSourceError(Exception):
    """The source database is not the seed's (no users table, no id/email/password column)."""


@dataclass(frozen=True)
class Skipped:
    """A seed row that was not imported, and why (never its hash)."""

    seed_id: Any
    reason: str
    detail: str = ""


@dataclass
class ImportReport:
    """What an import did."""

    total: int = 0
    imported: int = 0
    already_present: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    sequence_next: int | None = None


@dataclass(frozen=True)
class _Row:
    id: int
    name: str
    email: str
    password_hash: str | None
    role: str
    created_at: datetime


def source_engine(url: str) -> Engine:
    """An engine on the seed's database (``postgres://`` URLs use psycopg 3, like ours)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        from pathlib import Path

        if not parsed.database or parsed.database == ":memory:" or not Path(parsed.database).is_file():
            raise SeedSourceError(f"No SQLite database at {parsed.database!r}.")
    return create_engine(parsed)


def import_seed_users(
    source: Engine,
    *,
    batch_size: int = 1000,
    role_map: Mapping[str, str] | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import every row of the seed's users table; each batch commits (or, dry, rolls back) alone."""
    roles = {**DEFAULT_ROLE_MAP, **(role_map or {})}
    report = ImportReport()
    users, columns = _seed_table(source)
    with source.connect() as connection:
        report.total = connection.scalar(select(func.count()).select_from(users)) or 0
        if not dry_run:
            # Before the first row: a sign-up during the import must not take a seed id either.
            _continue_id_sequence(_highest_seed_id(connection, users))
            db.session.commit()
        done = 0
        for rows in _batches(connection, users, batch_size):
            _import_batch([_parse(row, columns, roles) for row in rows], report, dry_run)
            done += len(rows)
            if progress is not None:
                progress(done, report.total)
        if not dry_run:
            report.sequence_next = _continue_id_sequence(_highest_seed_id(connection, users))
    if not dry_run:
        record_event(
            Events.SEED_USER_IMPORTED,
            None,
            details={
                "imported": report.imported,
                "already_present": report.already_present,
                "skipped": len(report.skipped),
            },
        )
        db.session.commit()
    return report


def _seed_table(source: Engine) -> tuple[Any, dict[str, str]]:
    """The seed's users table (untyped columns: values as the driver returns them) and its column names."""
    inspector = inspect(source)
    if not inspector.has_table("users"):
        raise SeedSourceError("The source database has no users table.")
    names = {c["name"] for c in inspector.get_columns("users")}
    password = "password_hash" if "password_hash" in names else "password"
    missing = {"id", "email", password} - names
    if missing:
        raise SeedSourceError(f"The seed's users table lacks {', '.join(sorted(missing))}.")
    columns = {"password": password}
    for name in ("name", "role", "is_superuser", "created_at"):
        if name in names:
            columns[name] = name
    selected = {"id", "email", *columns.values()}
    return table("users", *(column(name) for name in sorted(selected))), columns


def _batches(connection: Any, users: Any, size: int) -> Iterator[Sequence[Any]]:
    """The rows in id order, ``size`` at a time (keyset: each query starts after the last id)."""
    last = None
    while True:
        query = select(users).order_by(users.c.id).limit(size)
        if last is not None:
            query = query.where(users.c.id > last)
        rows = connection.execute(query).mappings().all()
        if not rows:
            return
        yield rows
        if rows[-1]["id"] == last:  # cannot happen with a primary key; never loop on it
            return
        last = rows[-1]["id"]


def _highest_seed_id(connection: Any, users: Any) -> int | None:
    """The largest id of the seed's table that a trikchi user could have (the rows it skips too)."""
    return connection.scalar(select(func.max(users.c.id)).where(users.c.id >= 1, users.c.id <= MAX_ID))


def _parse(row: Mapping[str, Any], columns: Mapping[str, str], roles: Mapping[str, str]) -> _Row | Skipped:
    """A seed row as trikchi will store it, or why it cannot be imported."""
    seed_id = row["id"]
    if type(seed_id) is not int or not 1 <= seed_id <= MAX_ID:
        return Skipped(seed_id, "invalid_id")
    raw_email = row["email"]
    try:
        email = canonical_email(raw_email) if isinstance(raw_email, str) else ""
    except InvalidEmail:
        email = ""
    if not email or len(email) > EMAIL_MAX:
        return Skipped(seed_id, "invalid_email")
    password_hash = row[columns["password"]]
    if password_hash is None or password_hash == "":
        if not User.__table__.c.password_hash.nullable:
            return Skipped(seed_id, "no_password")
        password_hash = None  # accounts without a password exist once social sign-in does
    elif not _is_argon2(password_hash):
        return Skipped(seed_id, "malformed_hash")
    role = _role(row, columns, roles)
    if role not in ROLES:
        return Skipped(seed_id, "unknown_role", _printable(str(row.get(columns.get("role", ""), "")))[:20])
    return _Row(
        id=seed_id,
        name=_name(row.get(columns.get("name", "")), email),
        email=email,
        password_hash=password_hash,
        role=role,
        created_at=_timestamp(row.get(columns.get("created_at", ""))),
    )


def _is_argon2(value: Any) -> bool:
    """A well-formed argon2 PHC string that fits the column."""
    if not isinstance(value, str) or len(value) > 255 or _PHC.fullmatch(value) is None:
        return False
    try:
        extract_parameters(value)
    except (InvalidHashError, ValueError):
        return False
    return True


def _role(row: Mapping[str, Any], columns: Mapping[str, str], roles: Mapping[str, str]) -> str:
    """The seed's superusers are admins; its role strings map through ``roles``; none is a customer."""
    superuser = row.get(columns.get("is_superuser", ""))
    if isinstance(superuser, str):
        superuser = superuser.strip().lower()
    if superuser in _TRUE:
        return "admin"
    value = row.get(columns.get("role", ""))
    if value is None or (isinstance(value, str) and not value.strip()):
        return "customer"  # the seed's column default
    if not isinstance(value, str):
        return ""
    return roles.get(value.strip().lower(), "")


def _name(value: Any, email: str) -> str:
    """The name without control characters, at most 100 characters; the email's local part if none."""
    name = _printable(value).strip() if isinstance(value, str) else ""
    return (name or email.split("@", 1)[0])[:NAME_MAX]


def _printable(value: str) -> str:
    return "".join(" " if unicodedata.category(char)[0] == "C" else char for char in value)


def _timestamp(value: Any) -> datetime:
    """The seed's created_at (naive UTC, from ``datetime.utcnow``), or now."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        return utcnow()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _import_batch(parsed: list[_Row | Skipped], report: ImportReport, dry_run: bool) -> None:
    """Write one batch in one transaction; if a concurrent write conflicts, row by row."""
    outcome = ImportReport()
    try:
        _write(parsed, outcome)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    except IntegrityError:
        # A user created meanwhile (sign-ups were not frozen): nothing of the batch was
        # written; each row again in its own transaction, its conflict reported.
        db.session.rollback()
        if len(parsed) > 1:
            for row in parsed:
                _import_batch([row], report, dry_run)
            return
        outcome = ImportReport(skipped=[Skipped(getattr(parsed[0], "id", None), "conflict")])
    report.imported += outcome.imported
    report.already_present += outcome.already_present
    report.skipped.extend(outcome.skipped)


def _write(parsed: list[_Row | Skipped], outcome: ImportReport) -> None:
    """Check the batch against trikchi's users and insert the new ones (the caller commits)."""
    rows = [row for row in parsed if isinstance(row, _Row)]
    outcome.skipped.extend(row for row in parsed if isinstance(row, Skipped))
    ids = [row.id for row in rows]
    by_id = {
        r.id: r
        for r in db.session.execute(
            select(User.id, User.email, User.password_hash).where(User.id.in_(ids))
        ).all()
    }
    by_email = dict(
        db.session.execute(
            select(User.email, User.id).where(User.email.in_([row.email for row in rows]))
        ).all()
    )
    imported = set(db.session.scalars(select(SeedUser.user_id).where(SeedUser.user_id.in_(ids))))
    now = utcnow()
    new_users: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    batch_emails: set[str] = set()
    for row in rows:
        existing = by_id.get(row.id)
        if existing is not None:
            same = existing.email == row.email and existing.password_hash == row.password_hash
            if row.id in imported or same:
                # Imported before (the user may have changed their email or password since).
                outcome.already_present += 1
                if row.id not in imported:
                    markers.append({"user_id": row.id, "imported_at": now})
            else:
                outcome.skipped.append(Skipped(row.id, "id_taken"))
            continue
        owner = by_email.get(row.email)
        if owner is not None:
            outcome.skipped.append(Skipped(row.id, "email_taken", f"user {owner}"))
            continue
        if row.email in batch_emails:
            outcome.skipped.append(Skipped(row.id, "duplicate_email"))
            continue
        batch_emails.add(row.email)
        new_users.append(
            {
                "id": row.id,
                "name": row.name,
                "email": row.email,
                "password_hash": row.password_hash,
                "role": row.role,
                "is_active": True,
                "email_verified": False,
                "created_at": row.created_at,
                "updated_at": now,
            }
        )
        markers.append({"user_id": row.id, "imported_at": now})
    if new_users:
        db.session.execute(insert(User.__table__), new_users)
    if markers:
        db.session.execute(insert(SeedUser.__table__), markers)
    outcome.imported += len(new_users)


def _continue_id_sequence(highest_seed_id: int | None) -> int | None:
    """Move the users id sequence past the seed's ids and trikchi's own (never back); the next id.

    Past every id of the seed's table, the skipped rows' included: other services hold orders
    under those ids, and a new account must never inherit them. PostgreSQL: the column's
    sequence (``setval``). SQLite: the table's ``sqlite_sequence`` row (``users`` is
    AUTOINCREMENT: a new id is larger than the one recorded there).
    """
    known = [i for i in (highest_seed_id, db.session.scalar(select(func.max(User.id)))) if i is not None]
    if not known:
        return None
    highest = max(known)
    if db.engine.dialect.name == "sqlite":
        recorded = db.session.scalar(text("SELECT seq FROM sqlite_sequence WHERE name = 'users'"))
        if recorded is None:
            db.session.execute(
                text("INSERT INTO sqlite_sequence (name, seq) VALUES ('users', :seq)"), {"seq": highest}
            )
        elif recorded < highest:
            db.session.execute(
                text("UPDATE sqlite_sequence SET seq = :seq WHERE name = 'users'"), {"seq": highest}
            )
        return max(recorded or 0, highest) + 1
    sequence = db.session.scalar(text("SELECT pg_get_serial_sequence('users', 'id')"))
    if sequence is None:
        return None
    last = text("SELECT COALESCE(pg_sequence_last_value(CAST(:sequence AS regclass)), 0)")
    if highest > db.session.scalar(last, {"sequence": sequence}):
        db.session.execute(
            text("SELECT setval(CAST(:sequence AS regclass), :highest)"),
            {"sequence": sequence, "highest": highest},
        )
    return db.session.scalar(last, {"sequence": sequence}) + 1
