"""The key life cycle: standby → current → previous → retired (SPEC §7).

Every operation is an auth event naming the kid and algorithm, never key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from trikchi.database import utcnow
from trikchi.events import AuthEvent, record_event
from trikchi.extensions import db
from trikchi.keys import material
from trikchi.keys.models import CURRENT, PREVIOUS, RETIRED, STANDBY, SigningKey


class Events:
    """Names of the key events in the audit log."""

    KEY_ADDED = "signing_key_added"
    KEY_ROTATED = "signing_key_rotated"
    KEY_RETIRED = "signing_key_retired"
    KEYS_REENCRYPTED = "signing_keys_reencrypted"


class KeyOperationRefused(Exception):
    """A key operation that would break verification for someone; ``--force`` overrides it."""


def _record(type_: str, details: dict) -> None:
    """An audit event of a key operation (an operator's, from the shell: no user, no client)."""
    record_event(type_, None, details=details)


def _new_key(alg: str, state: str, now: datetime) -> SigningKey:
    private = material.generate(alg)
    jwk = material.public_jwk(private, alg)
    return SigningKey(
        kid=material.thumbprint(jwk),
        alg=alg,
        state=state,
        public_jwk=jwk,
        private_key_encrypted=material.encrypt(private, current_app.config["SIGNING_KEYS_SECRET"]),
        created_at=now,
        activated_at=now if state == CURRENT else None,
    )


def list_keys() -> list[SigningKey]:
    """Every key, newest first."""
    return list(db.session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))


def add_key(alg: str | None = None) -> SigningKey:
    """Create a standby key: published at once, signing only after ``rotate``."""
    alg = alg or current_app.config["JWT_ALGORITHM"]
    if alg not in material.ASYMMETRIC_ALGORITHMS:
        raise KeyOperationRefused(f"keys are {', '.join(material.ASYMMETRIC_ALGORITHMS)}, not {alg}")
    if db.session.scalar(select(SigningKey.kid).where(SigningKey.state == STANDBY)) is not None:
        raise KeyOperationRefused("there is a standby key already: rotate to it or retire it first")
    key = _new_key(alg, STANDBY, utcnow())
    db.session.add(key)
    _record(Events.KEY_ADDED, {"kid": key.kid, "alg": alg, "state": STANDBY})
    try:
        db.session.commit()
    except IntegrityError:  # another `keys add` won the race (the one-standby index)
        db.session.rollback()
        raise KeyOperationRefused("there is a standby key already: rotate to it or retire it first") from None
    return key


def rotate(force: bool = False, now: datetime | None = None) -> tuple[SigningKey, SigningKey | None]:
    """Standby → current, current → previous; returns (new current, new previous).

    Refused while the standby has been published for less than the JWKS cache
    lifetime (and the workers' reload interval): a verifier holding a cached JWKS
    would not know the new key yet.
    """
    now = now or utcnow()
    standby = db.session.scalar(select(SigningKey).where(SigningKey.state == STANDBY).with_for_update())
    if standby is None:
        raise KeyOperationRefused("no standby key: run `flask keys add` first")
    wait = publication_wait()
    ready_at = standby.created_at + wait
    if now < ready_at and not force:
        seconds = int((ready_at - now).total_seconds()) + 1
        raise KeyOperationRefused(
            f"standby key {standby.kid} is not published long enough: verifiers may cache the JWKS"
            f" for {int(wait.total_seconds())} s; wait {seconds} s (or --force)"
        )
    current = db.session.scalar(select(SigningKey).where(SigningKey.state == CURRENT).with_for_update())
    if current is not None:
        current.state, current.deactivated_at = PREVIOUS, now
        db.session.flush()  # free the one-current slot before taking it
    standby.state, standby.activated_at = CURRENT, now
    _record(
        Events.KEY_ROTATED,
        {"kid": standby.kid, "alg": standby.alg, "previous_kid": current.kid if current else None},
    )
    db.session.commit()
    return standby, current


def retire(kid: str, force: bool = False, now: datetime | None = None) -> SigningKey:
    """Previous (or standby) → retired: gone from the JWKS, its tokens refused.

    A previous key is refused while an access token it signed can still be
    unexpired: its deactivation + the access token lifetime + leeway + the
    workers' reload interval (a slow worker may have signed with it that late).
    """
    now = now or utcnow()
    key = db.session.get(SigningKey, kid, with_for_update=True)
    if key is None:
        raise KeyOperationRefused(f"no key {kid}")
    if key.state == CURRENT:
        raise KeyOperationRefused("the current key signs every token: rotate to a new key first")
    if key.state == RETIRED:
        raise KeyOperationRefused(f"key {kid} is retired already")
    if key.state == PREVIOUS and not force:
        safe_at = (key.deactivated_at or now) + last_token_lifetime()
        if now < safe_at:
            raise KeyOperationRefused(
                f"tokens signed by {kid} can be valid until {safe_at.isoformat(timespec='seconds')}"
                f" ({int((safe_at - now).total_seconds()) + 1} s from now): wait (or --force)"
            )
    before = key.state
    key.state, key.retired_at = RETIRED, now
    _record(Events.KEY_RETIRED, {"kid": key.kid, "alg": key.alg, "from": before, "forced": force})
    db.session.commit()
    return key


def ensure_current_key() -> None:
    """Create the first current key of an asymmetric deployment (safe under racing workers)."""
    now = utcnow()
    key = _new_key(current_app.config["JWT_ALGORITHM"], CURRENT, now)
    # Its own transaction (and so its own event INSERT, not record_event's): this runs at the
    # start of a request or a command, outside whatever the session is doing.
    try:
        with db.engine.begin() as connection:
            if connection.scalar(select(SigningKey.kid).where(SigningKey.state == CURRENT)) is not None:
                return
            connection.execute(insert(SigningKey).values(**_columns(key)))
            connection.execute(
                insert(AuthEvent).values(
                    type=Events.KEY_ADDED,
                    created_at=now,
                    details={"kid": key.kid, "alg": key.alg, "state": CURRENT, "automatic": True},
                )
            )
    except IntegrityError:
        return  # another worker created it first (the one-current index refused ours)


def _columns(key: SigningKey) -> dict:
    return {column.key: getattr(key, column.key) for column in SigningKey.__table__.columns}


def publication_wait() -> timedelta:
    """How long a standby key must be published before it may sign.

    A worker shows the new key in its JWKS up to ``KEYS_RELOAD_SECONDS`` after it was
    added, and a verifier that fetched the JWKS just before keeps that copy for
    ``JWKS_MAX_AGE_SECONDS``: the sum.
    """
    config = current_app.config
    return timedelta(seconds=config["JWKS_MAX_AGE_SECONDS"] + config["KEYS_RELOAD_SECONDS"])


def last_token_lifetime() -> timedelta:
    """How long after a key stops signing its last token can still verify."""
    config = current_app.config
    return config["JWT_ACCESS_TOKEN_EXPIRES"] + timedelta(
        seconds=config["JWT_DECODE_LEEWAY"] + config["KEYS_RELOAD_SECONDS"]
    )


@dataclass(frozen=True)
class KeySummary:
    """What ``flask keys list`` shows of a key (no key material)."""

    kid: str
    alg: str
    state: str
    created_at: datetime
    activated_at: datetime | None
    deactivated_at: datetime | None
    retired_at: datetime | None


def summaries() -> list[KeySummary]:
    """Every key, newest first, without key material."""
    return [
        KeySummary(k.kid, k.alg, k.state, k.created_at, k.activated_at, k.deactivated_at, k.retired_at)
        for k in list_keys()
    ]


def reencrypt_all() -> int:
    """Re-encrypt every stored private key under the first SIGNING_KEYS_SECRET; returns how many."""
    secrets = current_app.config["SIGNING_KEYS_SECRET"]
    keys = list_keys()
    for key in keys:
        db.session.execute(
            update(SigningKey)
            .where(SigningKey.kid == key.kid)
            .values(private_key_encrypted=material.reencrypt(key.private_key_encrypted, secrets))
        )
    _record(Events.KEYS_REENCRYPTED, {"count": len(keys)})
    db.session.commit()
    return len(keys)
