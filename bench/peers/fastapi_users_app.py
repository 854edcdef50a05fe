"""fastapi-users, set up as its documentation does (the "Full example" with SQLAlchemy and
aiosqlite), with the database token strategy instead of JWT: of its strategies it is the one
that does trikchi's work — a token that logout ends at once. SQLite in WAL mode with
``synchronous=NORMAL``, as trikchi runs it.

Per request:

- ``GET /users/me`` (the users router's own): the bearer token looked up in the
  ``accesstoken`` table (younger than the lifetime), then the user read by id, answered through
  the ``UserRead`` schema. Revocable per token (logout deletes the row).
- ``POST /auth/db/login`` (the auth router's own, an OAuth2 password form): the user read by
  email, argon2 verification (pwdlib's ``Argon2Hasher`` with the bench's parameters), a token
  row written.
- Refresh: fastapi-users has no refresh flow; a client signs in again when its token expires.

``python -m bench.peers.fastapi_users_app setup COUNT`` creates the tables and the users;
bench/run.py starts it as ``uvicorn bench.peers.fastapi_users_app:app --workers 2`` in
bench/.venvs/fastapi-users.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, IntegerIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport
from fastapi_users.authentication.strategy.db import AccessTokenDatabase, DatabaseStrategy
from fastapi_users.db import SQLAlchemyBaseUserTable, SQLAlchemyUserDatabase
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy.access_token import (
    SQLAlchemyAccessTokenDatabase,
    SQLAlchemyBaseAccessTokenTable,
)
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import ForeignKey, Integer, event, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from bench.peers.common import argon2_params, database_path, email, secret, setup_args, sqlite_pragmas

TOKEN_SECONDS = 3600

# db.py
engine = create_async_engine(f"sqlite+aiosqlite:///{database_path()}")
event.listen(engine.sync_engine, "connect", sqlite_pragmas)  # SQLite as trikchi runs it
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTable[int], Base):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class AccessToken(SQLAlchemyBaseAccessTokenTable[int], Base):
    @declared_attr
    def user_id(cls) -> Mapped[int]:
        return mapped_column(Integer, ForeignKey("user.id", ondelete="cascade"), nullable=False)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(session: AsyncSession = Depends(get_async_session)):  # noqa: B008
    yield SQLAlchemyUserDatabase(session, User)


async def get_access_token_db(session: AsyncSession = Depends(get_async_session)):  # noqa: B008
    yield SQLAlchemyAccessTokenDatabase(session, AccessToken)


# schemas.py
class UserRead(schemas.BaseUser[int]):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


# users.py
password_helper = PasswordHelper(PasswordHash((Argon2Hasher(**argon2_params()),)))


class UserManager(IntegerIDMixin, BaseUserManager[User, int]):
    reset_password_token_secret = secret()
    verification_token_secret = secret()


async def get_user_manager(user_db: SQLAlchemyUserDatabase = Depends(get_user_db)):  # noqa: B008
    yield UserManager(user_db, password_helper)


def get_database_strategy(
    access_token_db: AccessTokenDatabase[AccessToken] = Depends(get_access_token_db),  # noqa: B008
) -> DatabaseStrategy:
    return DatabaseStrategy(access_token_db, lifetime_seconds=TOKEN_SECONDS)


auth_backend = AuthenticationBackend(
    name="db", transport=BearerTransport(tokenUrl="auth/db/login"), get_strategy=get_database_strategy
)
fastapi_users = FastAPIUsers[User, int](get_user_manager, [auth_backend])

# app.py
app = FastAPI()
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/db", tags=["auth"])
app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users", tags=["users"])


async def setup(count: int, password: str) -> None:
    """Create the tables and ``count`` active users (one hash, shared: setup speed only)."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        hashed = password_helper.hash(password)
        rows = [
            {
                "email": email(n),
                "hashed_password": hashed,
                "is_active": True,
                "is_superuser": False,
                "is_verified": True,
            }
            for n in range(count)
        ]
        await connection.execute(insert(User), rows)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(setup(*setup_args(sys.argv)))
