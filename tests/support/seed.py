"""The seed's service as far as the migration needs it: its users table, its hashes, its tokens.

Transcribed from the seed (FastAPI): ``backend/app/models/users.py`` (the table),
``backend/app/auth/utils.py`` (passlib's CryptContext, argon2) and
``backend/app/auth/jwt_handler.py`` (PyJWT HS256 ``{"sub": str(user_id), "exp": int}``
for both access and refresh tokens, under the same SECRET_KEY).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from functools import cache

import jwt
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, create_engine

SEED_SECRET = "the seed's SECRET_KEY: long enough for HS256 and HS512 in the tests (64 bytes+)"
ACCESS_TOKEN_EXPIRE_MINUTES = 15
REFRESH_TOKEN_EXPIRE_DAYS = 30


def _utcnow() -> datetime:
    """The seed's ``datetime.utcnow`` default: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


metadata = MetaData()
# The seed's User model, column for column (its social_accounts relationship aside).
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, index=True),
    Column("name", String(100), index=True),
    Column("email", String(150), unique=True, index=True),
    Column("phone", String(13), unique=True, index=True),
    Column("password_hash", String(225), nullable=False),
    Column("role", String(20), default="customer", index=True),
    Column("avatar_url", Text),
    Column("is_superuser", Boolean, default=False),
    Column("created_at", DateTime, default=_utcnow),
    Column("updated_at", DateTime, default=_utcnow),
)


@cache
def _context():
    # passlib 1.7.4 (the seed's pin, unmaintained) imports the deprecated crypt module and
    # reads argon2.__version__, both DeprecationWarnings that pytest turns into errors.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'crypt' is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", "Accessing argon2.__version__", DeprecationWarning)
        from passlib.context import CryptContext

        context = CryptContext(schemes=["argon2"], deprecated="auto")
        context.hash("load the backend")
    return context


def hash_password(password: str) -> str:
    """The seed's ``hash_password``: passlib's argon2 with its default parameters."""
    return _context().hash(password)


def create_seed_database(url: str, rows: list[dict]) -> None:
    """The seed's schema (``Base.metadata.create_all``) with ``rows`` in its users table."""
    engine = create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            if rows:
                connection.execute(users.insert(), rows)
    finally:
        engine.dispose()


def _expires(delta: timedelta) -> int:
    # The seed writes int((datetime.utcnow() + delta).timestamp()): on its UTC host, this.
    return int((datetime.now(UTC) + delta).timestamp())


def create_access_token(user_id: int, secret: str = SEED_SECRET) -> str:
    """The seed's ``create_access_token``."""
    payload = {"sub": str(user_id), "exp": _expires(timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES))}
    return jwt.encode(payload, secret, algorithm="HS256")


def create_refresh_token(user_id: int, secret: str = SEED_SECRET, delta: timedelta | None = None) -> str:
    """The seed's ``create_refresh_token`` (``delta`` moves its expiry, for expired tokens)."""
    payload = {"sub": str(user_id), "exp": _expires(delta or timedelta(days=REFRESH_TOKEN_EXPIRE_DAYS))}
    return jwt.encode(payload, secret, algorithm="HS256")


def import_one_customer(server, directory, user_id: int, email: str, password: str) -> None:
    """A seed table holding one customer, imported into the live ``server`` with
    ``flask users import-seed`` (its own process, the server's database and settings)."""
    source = f"sqlite:///{directory / 'seed.db'}"
    created = datetime(2025, 11, 27, 8, 35, 8)
    row = {
        "id": user_id,
        "name": "Seed customer",
        "email": email,
        "password_hash": hash_password(password),
        "role": "customer",
        "is_superuser": False,
        "created_at": created,
        "updated_at": created,
    }
    create_seed_database(source, [row])
    imported = server.flask("users", "import-seed", source)
    output = imported.stdout + imported.stderr
    assert "Imported 1 user(s)" in output, output
