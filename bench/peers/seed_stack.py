"""The seed's own stack, re-created for the three endpoints the bench loads.

The seed (shared/seed/, a FastAPI service described by its README) lists FastAPI,
SQLAlchemy, Passlib (argon2), PyJWT and Pydantic, a ``database.py`` with a ``Depends_db``
dependency, a SQLAlchemy ``User`` model, Pydantic schemas including ``UserResponse``, HS256
tokens whose ``sub`` is always a string and whose ``exp`` is a UNIX timestamp, a 30-day refresh
token in an HttpOnly ``refresh_token`` cookie (path ``/``), and starts with
``uvicorn backend.app.main:app``. This module is that design, minimal but built the way the
README (and FastAPI's own tutorial for it) puts it together:

- synchronous SQLAlchemy: ``create_engine`` + ``sessionmaker``, one session per request from
  a generator dependency (the README names no async driver);
- ``def`` path operations and dependencies, which FastAPI runs in its thread pool;
- passwords hashed by passlib's argon2 with the bench's parameters (bench/peers/common.py);
- SQLite in WAL mode with ``synchronous=NORMAL``, as trikchi runs it (the README says nothing).

Per request:

- ``GET /auth/me``: the bearer token decoded by PyJWT (HS256 pinned), the user read by primary
  key, returned through a Pydantic ``response_model``. No session: a token cannot be revoked
  before its ``exp``.
- ``POST /auth/refresh_token``: the refresh cookie decoded, a new access token signed. No
  database, no rotation (the cookie stays the same for 30 days), no revocation.
- ``POST /auth/login``: the user read by email, argon2 verification, two tokens signed.

It answers the same user object as trikchi (id, name, email, role, created_at).
``python -m bench.peers.seed_stack setup COUNT`` creates the table and the users; bench/run.py
starts it as ``uvicorn bench.peers.seed_stack:app --workers 2`` in bench/.venvs/seed.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import jwt
from fastapi import Cookie, Depends, FastAPI, HTTPException, Response, status
from fastapi.security import OAuth2PasswordBearer
from passlib.context import CryptContext
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, Integer, String, create_engine, event, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from bench.peers.common import argon2_params, database_path, email, secret, setup_args, sqlite_pragmas

ALGORITHM = "HS256"
ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600

# config.py / database.py
SECRET_KEY = secret()
engine = create_engine(f"sqlite:///{database_path()}", connect_args={"check_same_thread": False})
event.listen(engine, "connect", sqlite_pragmas)  # as trikchi runs SQLite (not in the seed's README)
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
class UserLogin(BaseModel):
    email: str
    password: str


class UserResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str
    role: str
    created_at: datetime


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    user_id: int


# auth/utils.py
params = argon2_params()
pwd_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__time_cost=params["time_cost"],
    argon2__memory_cost=params["memory_cost"],
    argon2__parallelism=params["parallelism"],
)


# auth/jwt_handler.py
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login")


def create_token(user_id: int, seconds: int) -> str:
    """A token as the seed makes it: ``sub`` a string, ``exp`` a UNIX timestamp."""
    payload = {"sub": str(user_id), "exp": int(time.time()) + seconds}
    return jwt.encode(payload, SECRET_KEY, algorithm=ALGORITHM)


def unauthorized() -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Could not validate credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )


def token_user_id(token: str) -> int:
    try:
        return int(jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM])["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        raise unauthorized() from None


def get_current_user(token: str = Depends(oauth2_scheme), db: Session = Depends(get_db)) -> User:  # noqa: B008
    user = db.query(User).filter(User.id == token_user_id(token)).first()
    if user is None:
        raise unauthorized()
    return user


# routers/registeration_router.py and main.py
app = FastAPI(title="trikchi_uz (seed stack, bench reference)")


@app.get("/auth/me", response_model=UserResponse)
def me(current_user: User = Depends(get_current_user)):  # noqa: B008
    return current_user


def tokens(response: Response, user_id: int) -> TokenResponse:
    response.set_cookie(
        "refresh_token",
        create_token(user_id, REFRESH_TOKEN_SECONDS),
        max_age=REFRESH_TOKEN_SECONDS,
        httponly=True,
        path="/",
    )
    return TokenResponse(
        access_token=create_token(user_id, ACCESS_TOKEN_SECONDS), token_type="bearer", user_id=user_id
    )


@app.post("/auth/login", response_model=TokenResponse)
def login(body: UserLogin, response: Response, db: Session = Depends(get_db)):  # noqa: B008
    user = db.query(User).filter(User.email == body.email).first()
    if user is None or not pwd_context.verify(body.password, user.hashed_password):
        raise unauthorized()
    return tokens(response, user.id)


@app.post("/auth/refresh_token", response_model=TokenResponse)
def refresh_token(refresh_token: str | None = Cookie(default=None)):  # noqa: B008
    if refresh_token is None:
        raise unauthorized()
    user_id = token_user_id(refresh_token)
    return TokenResponse(
        access_token=create_token(user_id, ACCESS_TOKEN_SECONDS), token_type="bearer", user_id=user_id
    )


def setup(count: int, password: str) -> None:
    """Create the ``users`` table and ``count`` customers (one hash, shared: setup speed only)."""
    Base.metadata.create_all(engine)
    hashed = pwd_context.hash(password)
    now = datetime.now(UTC)
    rows = [
        {
            "name": f"Bench {n}",
            "email": email(n),
            "hashed_password": hashed,
            "role": "customer",
            "created_at": now,
        }
        for n in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(User), rows)


if __name__ == "__main__":
    setup(*setup_args(sys.argv))
