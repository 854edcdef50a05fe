"""TOTP (RFC 6238: 30-second steps, 6 digits, SHA-1, one step of clock drift either way) and
recovery codes: setup, confirmation, turning it off, new recovery codes, and checking a code.

Each code is accepted once: the time step of the last accepted code is stored and
moved forward by one conditional UPDATE, so of two requests racing with the same
code exactly one succeeds. Recovery codes are consumed the same way.
"""

from __future__ import annotations

import base64
import hmac
import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, func, insert, select, update

from trikchi.auth import security
from trikchi.auth.digests import sha256_hex
from trikchi.auth.models import User
from trikchi.database import utcnow
from trikchi.errors import Conflict, ErrorCode, ValidationFailed
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_
from trikchi.mfa.crypto import decrypt_secret, encrypt_secret
from trikchi.mfa.limits import check_code_budget, spend_code_attempt
from trikchi.mfa.models import Passkey, RecoveryCode, TotpCredential

RECOVERY_CODE_COUNT = 10
# A pending setup must be confirmed within this time (the secret was shown on a screen).
SETUP_SECONDS = 900
VALID_WINDOW = 1  # steps of clock drift accepted either way
WRONG_CODE = N_("The code is wrong or was already used.")


@dataclass(frozen=True)
class TotpSetup:
    """What the user's authenticator app needs: the secret, as text, URI and QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def _enabled_row(user_id: int) -> TotpCredential | None:
    row = db.session.get(TotpCredential, user_id)
    return row if row is not None and row.confirmed_at is not None else None


def is_enabled(user_id: int) -> bool:
    """Whether the user has TOTP on (set up and confirmed)."""
    return (
        db.session.scalar(
            select(TotpCredential.user_id).where(
                TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
            )
        )
        is not None
    )


def status(user_id: int) -> dict[str, object]:
    """``{"totp", "recovery_codes_left", "passkeys"}`` of SPEC §8."""
    enabled = is_enabled(user_id)
    left = db.session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    passkeys = db.session.scalar(select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id))
    return {"totp": enabled, "recovery_codes_left": left if enabled else 0, "passkeys": passkeys}


def begin_setup(user: User) -> TotpSetup:
    """A new secret, pending until confirmed with a code; replaces an unconfirmed one."""
    if _enabled_row(user.id) is not None:
        raise Conflict("TOTP is already on.", error=ErrorCode.TOTP_ALREADY_ENABLED)
    secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
    db.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
    db.session.add(
        TotpCredential(user_id=user.id, secret_encrypted=encrypt_secret(secret), created_at=utcnow())
    )
    db.session.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=user.email or user.name, issuer_name=current_app.config["TOTP_ISSUER"]
    )
    # A standalone SVG document (with its namespace): usable inline and as an <img> data: URI.
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", xmldecl=False, nl=False, scale=4, light="#fff")
    qr_svg = buffer.getvalue().decode()
    return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=qr_svg)


def confirm_setup(user: User, code: str, client: ClientInfo, session_id: str | None) -> list[str]:
    """Turn TOTP on with a first code from the app; returns the 10 recovery codes (shown once)."""
    row = db.session.get(TotpCredential, user.id)
    if row is not None and row.confirmed_at is not None:
        raise Conflict("TOTP is already on.", error=ErrorCode.TOTP_ALREADY_ENABLED)
    now = utcnow()
    if row is None or now - row.created_at > timedelta(seconds=SETUP_SECONDS):
        raise Conflict("Set TOTP up first (or again).", error=ErrorCode.TOTP_SETUP_REQUIRED)
    check_code_budget(user.id)
    if not _use_totp(row, code, now):
        _wrong_code(user.id, client, session_id, "confirm", "totp")
        raise ValidationFailed(WRONG_CODE, errors={"code": [WRONG_CODE]}, error=ErrorCode.INVALID_MFA_CODE)
    row.confirmed_at = now
    codes = _new_recovery_codes(user.id, now)
    security.bump_by_id(user.id, now)
    record_event(Events.MFA_TOTP_ENABLED, client, user_id=user.id, session_id=session_id)
    db.session.commit()
    return codes


def disable(user: User, code: str, client: ClientInfo, session_id: str | None) -> None:
    """Turn TOTP off after a TOTP or recovery code; the secret and the recovery codes are deleted."""
    if _enabled_row(user.id) is None:
        raise Conflict("TOTP is not on.", error=ErrorCode.TOTP_NOT_ENABLED)
    check_code_budget(user.id)
    method = verify_code(user.id, code)
    if method is None:
        _wrong_code(user.id, client, session_id, "disable", code_method(code))
        raise ValidationFailed(WRONG_CODE, errors={"code": [WRONG_CODE]}, error=ErrorCode.INVALID_MFA_CODE)
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
    security.bump_by_id(user.id)
    record_event(
        Events.MFA_TOTP_DISABLED, client, user_id=user.id, session_id=session_id, details={"method": method}
    )
    db.session.commit()


def remove_all(user_id: int) -> None:
    """Delete the user's TOTP secret and recovery codes (an account starting clean; the caller commits)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    db.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))


def regenerate_recovery_codes(user: User, client: ClientInfo, session_id: str | None) -> list[str]:
    """A new set of 10 recovery codes; the old set stops working."""
    if _enabled_row(user.id) is None:
        raise Conflict("TOTP is not on.", error=ErrorCode.TOTP_NOT_ENABLED)
    codes = _new_recovery_codes(user.id, utcnow())
    security.bump_by_id(user.id)
    record_event(Events.MFA_RECOVERY_CODES_REGENERATED, client, user_id=user.id, session_id=session_id)
    db.session.commit()
    return codes


def code_method(code: str) -> str:
    """``totp`` for six digits, ``recovery_code`` for anything else."""
    compact = code.strip().replace(" ", "")
    return "totp" if len(compact) == 6 and compact.isdigit() else "recovery_code"


def verify_code(user_id: int, code: str) -> str | None:
    """Spend a TOTP code (six digits) or a recovery code of the user; the method, or ``None``.

    The caller commits (which makes the code used) or rolls back.
    """
    if code_method(code) == "totp":
        row = _enabled_row(user_id)
        return "totp" if row is not None and _use_totp(row, code, utcnow()) else None
    return "recovery_code" if use_recovery_code(user_id, code) else None


def verify_totp(user_id: int, code: str) -> bool:
    """Spend a TOTP code of a user with TOTP on (the caller commits)."""
    row = _enabled_row(user_id)
    return row is not None and _use_totp(row, code, utcnow())


def use_recovery_code(user_id: int, code: str) -> bool:
    """Spend one unused recovery code of a user with TOTP on (the caller commits)."""
    if _enabled_row(user_id) is None:
        return False
    normalized = normalize_recovery_code(code)
    if not normalized:
        return False
    consumed = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == sha256_hex(normalized),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    return consumed == 1


def normalize_recovery_code(code: str) -> str:
    """Recovery codes are compared lower-case, without spaces or dashes."""
    return "".join(char for char in code.lower() if char not in " -")


def _use_totp(row: TotpCredential, code: str, now: datetime) -> bool:
    """Accept ``code`` if it is the code of a step within the window newer than the last one used."""
    code = code.strip().replace(" ", "")
    secret = decrypt_secret(row.secret_encrypted)
    if secret is None or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    matched = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # Every candidate is compared (no early exit): the time taken does not say which matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    if matched is None:
        return False
    accepted = db.session.execute(
        update(TotpCredential)
        .where(
            TotpCredential.user_id == row.user_id,
            (TotpCredential.last_used_step.is_(None)) | (TotpCredential.last_used_step < matched),
        )
        .values(last_used_step=matched)
        .execution_options(synchronize_session=False)
    ).rowcount
    return accepted == 1


def _new_recovery_codes(user_id: int, now: datetime) -> list[str]:
    """Replace the user's recovery codes with 10 new ones (80 random bits each)."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    db.session.execute(
        insert(RecoveryCode),
        [
            {"user_id": user_id, "code_hash": sha256_hex(normalize_recovery_code(code)), "created_at": now}
            for code in codes
        ],
    )
    return codes


def _wrong_code(user_id: int, client: ClientInfo, session_id: str | None, step: str, method: str) -> None:
    """A wrong or replayed code: counted against the account, an event, committed."""
    db.session.rollback()
    spend_code_attempt(user_id)
    record_event(
        Events.MFA_CHALLENGE_FAILED,
        client,
        user_id=user_id,
        session_id=session_id,
        details={"step": step, "method": method},
    )
    db.session.commit()
