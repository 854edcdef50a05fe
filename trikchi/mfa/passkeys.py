"""Passkeys (WebAuthn, py_webauthn): registration, discoverable sign-in, list, rename, delete.

Challenges are random, stored as their SHA-256 only, expire in 5 minutes and are
consumed by one conditional DELETE before the response is checked, so each works
once. A verify request names its challenge through its own ``clientDataJSON``.
User verification is required; the signature counter must grow (unless the
authenticator keeps it at 0, as synced passkeys do): a counter that does not grow
means a cloned credential — refused, and a ``passkey_counter_regressed`` event.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import webauthn
from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from trikchi.auth import security, signin
from trikchi.auth.digests import sha256_hex
from trikchi.auth.methods import refuse_removing_the_last
from trikchi.auth.models import User
from trikchi.auth.tokens import TokenPair
from trikchi.database import lock_for_writing, utcnow
from trikchi.errors import ErrorCode, NotFound, Unauthorized, ValidationFailed
from trikchi.events import Events, record_event
from trikchi.extensions import db
from trikchi.http import ClientInfo
from trikchi.i18n import N_
from trikchi.mfa.models import Passkey, WebAuthnChallenge

CHALLENGE_SECONDS = 300
REGISTRATION = "registration"
AUTHENTICATION = "authentication"
DEFAULT_NAME = "Passkey"
REFUSED = N_("The passkey could not be verified.")


class _Refused(Exception):
    """A passkey response that is not accepted; ``reason`` goes to the audit log, ``account`` is the
    sign-in decision's refusal of a valid passkey's account (whose answer, a ban's, is given)."""

    def __init__(self, reason: str, account: signin.AccountRefused | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.account = account


def _config() -> tuple[str, str, list[str]]:
    config = current_app.config
    return config["WEBAUTHN_RP_ID"], config["WEBAUTHN_RP_NAME"], list(config["WEBAUTHN_ORIGINS"])


def _store_challenge(challenge: bytes, purpose: str, user_id: int | None, user_handle: str | None) -> None:
    now = utcnow()
    db.session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now))
    db.session.add(
        WebAuthnChallenge(
            challenge_hash=sha256_hex(bytes_to_base64url(challenge)),
            purpose=purpose,
            user_id=user_id,
            user_handle=user_handle,
            created_at=now,
            expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
        )
    )
    db.session.commit()


def _challenge_of(credential: dict[str, Any]) -> str:
    """The challenge (base64url) that the browser signed, read from ``clientDataJSON``."""
    try:
        client_data = parse_client_data_json(base64url_to_bytes(credential["response"]["clientDataJSON"]))
    except Exception:  # noqa: BLE001 - any malformed input is a refusal, never a 500
        raise _Refused("malformed") from None
    return bytes_to_base64url(client_data.challenge)


def _consume_challenge(challenge: str, purpose: str) -> WebAuthnChallenge:
    """Take the challenge out of the table (once, and only before it expires); commit."""
    now = utcnow()
    challenge_hash = sha256_hex(challenge)
    row = db.session.scalar(
        select(WebAuthnChallenge).where(WebAuthnChallenge.challenge_hash == challenge_hash)
    )
    if row is None or row.purpose != purpose:
        raise _Refused("unknown_challenge")
    db.session.expunge(row)
    consumed = db.session.execute(
        delete(WebAuthnChallenge).where(
            WebAuthnChallenge.challenge_hash == challenge_hash, WebAuthnChallenge.expires_at > now
        )
    ).rowcount
    db.session.commit()
    if consumed != 1:
        raise _Refused("expired_challenge")
    return row


def _user_handle(user: User) -> str:
    """The WebAuthn user handle of ``user``: random, kept by their first passkey."""
    existing = db.session.scalar(select(Passkey.user_handle).where(Passkey.user_id == user.id).limit(1))
    return existing or bytes_to_base64url(secrets.token_bytes(32))


def registration_options(user: User) -> dict[str, Any]:
    """Creation options (standard JSON form) for a new discoverable credential of ``user``."""
    rp_id, rp_name, _origins = _config()
    handle = _user_handle(user)
    challenge = secrets.token_bytes(32)
    existing = db.session.execute(
        select(Passkey.credential_id, Passkey.transports).where(Passkey.user_id == user.id)
    )
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=base64url_to_bytes(handle),
        user_name=user.email or user.name,
        user_display_name=user.name,
        challenge=challenge,
        timeout=CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(
                id=base64url_to_bytes(row.credential_id), transports=_transports(row.transports)
            )
            for row in existing
        ],
    )
    _store_challenge(challenge, REGISTRATION, user.id, handle)
    return json.loads(webauthn.options_to_json(options))


def register(
    user: User, credential: dict[str, Any], name: str | None, client: ClientInfo, session_id: str | None
) -> Passkey:
    """Check a new credential against its challenge and store it; ``ValidationFailed`` otherwise."""
    rp_id, _rp_name, origins = _config()
    try:
        challenge = _challenge_of(credential)
        row = _consume_challenge(challenge, REGISTRATION)
        if row.user_id != user.id or not row.user_handle:
            raise _Refused("unknown_challenge")
        try:
            verified = webauthn.verify_registration_response(
                credential=credential,
                expected_challenge=base64url_to_bytes(challenge),
                expected_rp_id=rp_id,
                expected_origin=origins,
                require_user_verification=True,
            )
        except Exception:  # noqa: BLE001 - py_webauthn raises many types for bad input: all are refusals
            raise _Refused("verification_failed") from None
    except _Refused as refused:
        raise ValidationFailed(
            REFUSED, errors={"credential": [REFUSED]}, error=ErrorCode.PASSKEY_INVALID
        ) from refused
    now = utcnow()
    response = credential.get("response") or {}
    transports = response.get("transports") if isinstance(response, dict) else None
    passkey = Passkey(
        user_id=user.id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        user_handle=row.user_handle,
        name=name or DEFAULT_NAME,
        aaguid=verified.aaguid,
        transports=[t for t in transports if isinstance(t, str)][:10]
        if isinstance(transports, list)
        else None,
        backed_up=verified.credential_backed_up,
        created_at=now,
    )
    db.session.add(passkey)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ValidationFailed(
            "This passkey is already registered.",
            errors={"credential": ["This passkey is already registered."]},
            error=ErrorCode.PASSKEY_INVALID,
        ) from None
    security.bump_by_id(user.id)
    record_event(
        Events.PASSKEY_ADDED,
        client,
        user_id=user.id,
        session_id=session_id,
        details={"passkey_id": passkey.id},
    )
    db.session.commit()
    return passkey


def authentication_options() -> dict[str, Any]:
    """Request options (standard JSON form) for a discoverable sign-in: no account named."""
    rp_id, _rp_name, _origins = _config()
    challenge = secrets.token_bytes(32)
    options = webauthn.generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        timeout=CHALLENGE_SECONDS * 1000,
        allow_credentials=[],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    _store_challenge(challenge, AUTHENTICATION, None, None)
    return json.loads(webauthn.options_to_json(options))


def authenticate(credential: dict[str, Any], client: ClientInfo) -> tuple[User, TokenPair]:
    """Sign in with a passkey: check the assertion, the counter, the user; open a session."""
    rp_id, _rp_name, origins = _config()
    passkey: Passkey | None = None
    try:
        challenge = _challenge_of(credential)
        _consume_challenge(challenge, AUTHENTICATION)
        credential_id = credential.get("rawId") or credential.get("id")
        if not isinstance(credential_id, str) or not credential_id:
            raise _Refused("malformed")
        passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == credential_id.rstrip("=")))
        if passkey is None:
            raise _Refused("unknown_credential")
        try:
            verified = webauthn.verify_authentication_response(
                credential=credential,
                expected_challenge=base64url_to_bytes(challenge),
                expected_rp_id=rp_id,
                expected_origin=origins,
                credential_public_key=passkey.public_key,
                # The counter is checked below, so that a clone gets its own event.
                credential_current_sign_count=0,
                require_user_verification=True,
            )
        except Exception:  # noqa: BLE001 - py_webauthn raises many types for bad input: all are refusals
            raise _Refused("verification_failed") from None
        handle = (credential.get("response") or {}).get("userHandle")
        if handle and handle.rstrip("=") != passkey.user_handle:
            raise _Refused("user_handle_mismatch")
        user = db.session.get(User, passkey.user_id)
        if user is None:
            raise _Refused("inactive")
        try:
            signin.check_account(user)
        except signin.AccountRefused as refused:
            raise _Refused(refused.reason, refused) from None
        stored, presented = passkey.sign_count, verified.new_sign_count
        if (presented > 0 or stored > 0) and presented <= stored:
            _counter_regressed(passkey, stored, presented, client)
        # Conditional: of two racing sign-ins with one counter value, one wins.
        grown = db.session.execute(
            update(Passkey)
            .where(
                Passkey.id == passkey.id,
                (Passkey.sign_count < presented) | ((Passkey.sign_count == 0) & (presented == 0)),
            )
            .values(sign_count=presented, last_used_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if grown != 1:
            db.session.rollback()
            _counter_regressed(passkey, stored, presented, client)
    except _Refused as refused:
        db.session.rollback()
        record_event(
            Events.PASSKEY_LOGIN_FAILED,
            client,
            user_id=passkey.user_id if passkey is not None else None,
            details={"reason": refused.reason, **({"passkey_id": passkey.id} if passkey is not None else {})},
        )
        db.session.commit()
        if refused.account is not None:
            refused.account.raise_answer()  # a ban: 403 account_banned, after a valid passkey only
        raise Unauthorized(REFUSED, error=ErrorCode.PASSKEY_INVALID) from None
    # A passkey with user verification is two factors in one: it completes the sign-in alone.
    result = signin.decide(user, client, "passkey", multi_factor=True)
    assert isinstance(result, TokenPair)  # noqa: S101 - a multi-factor method never gets a second step
    return user, result


def _counter_regressed(passkey: Passkey, stored: int, presented: int, client: ClientInfo) -> None:
    record_event(
        Events.PASSKEY_COUNTER_REGRESSED,
        client,
        user_id=passkey.user_id,
        details={"passkey_id": passkey.id, "stored_count": stored, "presented_count": presented},
    )
    db.session.commit()
    raise _Refused("counter_regressed")


def count(user_id: int) -> int:
    """How many passkeys the user has: each is a way to sign in."""
    return db.session.scalar(select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)) or 0


def has_passkey(user_id: int) -> bool:
    """Whether the user has a passkey (a second factor of its own, ``MFA_REQUIRED_ROLES``)."""
    return db.session.scalar(select(Passkey.id).where(Passkey.user_id == user_id).limit(1)) is not None


def remove_all(user_id: int) -> None:
    """Delete the user's passkeys (an account starting clean; the caller commits)."""
    db.session.execute(delete(Passkey).where(Passkey.user_id == user_id))
    db.session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.user_id == user_id))


def list_passkeys(user_id: int) -> Sequence[Passkey]:
    """The user's passkeys, oldest first."""
    return db.session.scalars(
        select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at, Passkey.id)
    ).all()


def _own(user_id: int, passkey_id: str) -> Passkey:
    passkey = db.session.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != user_id:
        raise NotFound("No such passkey.")
    return passkey


def rename(user_id: int, passkey_id: str, name: str, client: ClientInfo, session_id: str | None) -> Passkey:
    """Give one of the user's passkeys a new name."""
    passkey = _own(user_id, passkey_id)
    passkey.name = name
    record_event(
        Events.PASSKEY_RENAMED,
        client,
        user_id=user_id,
        session_id=session_id,
        details={"passkey_id": passkey.id},
    )
    db.session.commit()
    return passkey


def remove(user_id: int, passkey_id: str, client: ClientInfo, session_id: str | None) -> None:
    """Delete one of the user's passkeys; it cannot sign in any more. 409 when it is the account's
    last way to sign in (no password, no identity, no other passkey); the count and the delete
    are one serialized step, like unlinking an identity."""
    lock_for_writing(db.session)
    user = db.session.get(User, user_id, with_for_update=True)
    passkey = _own(user_id, passkey_id)
    if user is not None:
        refuse_removing_the_last(user)
    db.session.delete(passkey)
    security.bump_by_id(user_id)
    record_event(
        Events.PASSKEY_REMOVED,
        client,
        user_id=user_id,
        session_id=session_id,
        details={"passkey_id": passkey_id},
    )
    db.session.commit()


def _transports(values: list | None) -> list[AuthenticatorTransport] | None:
    if not values:
        return None
    known = {transport.value for transport in AuthenticatorTransport}
    return [AuthenticatorTransport(value) for value in values if value in known] or None
