"""The seed's own stack, re-created for one endpoint: the reference for ``GET /auth/me``.

The seed (../shared/seed/, a FastAPI service described by its README) lists FastAPI,
SQLAlchemy, PyJWT and Pydantic, a ``database.py`` with a ``Depends_db`` dependency, a
SQLAlchemy ``User`` model, Pydantic schemas including ``UserResponse``, HS256 tokens whose
``sub`` is always a string and whose ``exp`` is a UNIX timestamp, and starts with
``uvicorn backend.app.main:app``. This module is that design, minimal but built the way the
README (and FastAPI's own tutorial for it) puts it together:

- synchronous SQLAlchemy: ``create_engine`` + ``sessionmaker``, one session per request from
  a generator dependency (the README names no async driver);
- ``def`` path operations and dependencies, which FastAPI runs in its thread pool;
- the bearer token through ``OAuth2PasswordBearer``, decoded by PyJWT with HS256 pinned;
- the user loaded by primary key and returned through a Pydantic ``response_model``.

It answers the same user object as trikchi (id, name, email, role, created_at), so both
serialise the same fields. Configured from the environment: ``SEED_DATABASE_URL`` and
``SEED_SECRET_KEY``. ``bench/run.py`` creates the users (``create_users``) and mints the
tokens (``access_token``) and starts it as ``uvicorn bench.seed_stack:app --workers 2``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import jwt
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, Integer, String, create_engine, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

ALGORITHM = "HS256"
ACCESS_TOKEN_SECONDS = 15 * 60

# database.py
DATABASE_URL = os.environ.get("SEED_DATABASE_URL", "sqlite:///./seed.db")
SECRET_KEY = os.environ.get("SEED_SECRET_KEY", "change-me")

engine = create_engine(DATABASE_URL, connect_args={"check_same_thread": False})
SessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)


class Base(DeclarativeBase):
    pass


def get_db():
    """The seed's ``Depends_db``: one session per request, closed afterwards."""
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


# models/users.py
class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="customer")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=lambda: datetime.now(UTC))


# schemas/users_schemas.py
class UserResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str
    role: str
    created_at: datetime


# auth/jwt_handler.py
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login")


def access_token(user_id: int, secret: str = SECRET_KEY) -> str:
    """An access token as the seed makes it: ``sub`` a string, ``exp`` a UNIX timestamp."""
    payload = {"sub": str(user_id), "exp": int(time.time()) + ACCESS_TOKEN_SECONDS}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def get_current_user(token: str = Depends(oauth2_scheme), db: Session = Depends(get_db)) -> User:  # noqa: B008
    unauthorized = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Could not validate credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )
    try:
        payload = jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM])
        user_id = int(payload["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        raise unauthorized from None
    user = db.query(User).filter(User.id == user_id).first()
    if user is None:
        raise unauthorized
    return user


# routers/registeration_router.py (the one endpoint measured) and main.py
app = FastAPI(title="trikchi_uz (seed stack, bench reference)")


@app.get("/auth/me", response_model=UserResponse)
def me(current_user: User = Depends(get_current_user)):  # noqa: B008
    return current_user


def create_users(database_url: str, count: int, hashed_password: str) -> list[int]:
    """Create the ``users`` table and ``count`` customers; return their ids."""
    seed_engine = create_engine(database_url)
    Base.metadata.create_all(seed_engine)
    now = datetime.now(UTC)
    rows = [
        {
            "name": f"Bench {n}",
            "email": f"bench{n}@example.com",
            "hashed_password": hashed_password,
            "role": "customer",
            "created_at": now,
        }
        for n in range(count)
    ]
    with seed_engine.begin() as connection:
        connection.execute(insert(User), rows)
        ids = [row[0] for row in connection.exec_driver_sql("SELECT id FROM users ORDER BY id")]
    seed_engine.dispose()
    return ids
