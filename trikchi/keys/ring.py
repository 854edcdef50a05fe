"""The key set as each worker process sees it: loaded from the database, reloaded on a timer.

Every worker of every host reads the ``signing_keys`` table at most every
``KEYS_RELOAD_SECONDS`` (at the start of a request, before it writes anything), so
a ``flask keys rotate`` run anywhere reaches all of them within that time, with no
restart. Verification uses every published key (standby, current, previous): a
worker that has not reloaded yet still verifies tokens that a faster worker
already signed with the new key, because that key was published as standby first.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request
from jwt import PyJWK
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from trikchi.errors import ServiceUnavailable
from trikchi.keys import material
from trikchi.keys.models import CURRENT, PUBLISHED, SigningKey

log = logging.getLogger(__name__)

# An unknown kid triggers a reload at most this often (a key added on another host).
MISS_RELOAD_SECONDS = 1.0
# While the database is down, a worker holding keys tries to reload them this often.
OUTAGE_RETRY_SECONDS = 5.0
# Requests that never sign or verify a token: probes and the API documentation.
_KEYLESS_BLUEPRINTS = frozenset({"ops", "api-docs", "swagger_ui_assets"})


@dataclass(frozen=True)
class VerificationKey:
    """A published public key and the one algorithm it verifies."""

    kid: str
    alg: str
    key: PyJWK  # bound to ``alg``
    jwk: dict[str, Any]


@dataclass(frozen=True)
class SigningKeyMaterial:
    """The current private key, ready to sign."""

    kid: str
    alg: str
    key: material.PrivateKey


class KeyRing:
    """This process's copy of the published keys and the current private key."""

    def __init__(self, app: Flask) -> None:
        self.reload_seconds = app.config["KEYS_RELOAD_SECONDS"]
        self.secrets = app.config["SIGNING_KEYS_SECRET"]
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._signing: SigningKeyMaterial | None = None
        self._verifying: dict[str, VerificationKey] = {}
        self._private_cache: dict[str, material.PrivateKey] = {}

    def refresh_if_stale(self) -> None:
        """Reload when the last load is older than ``KEYS_RELOAD_SECONDS``.

        If the database does not answer, a worker that has loaded the keys before keeps
        signing and verifying with them (and retries shortly); one that never has cannot.
        """
        if time.monotonic() - self._loaded_at < self.reload_seconds:
            return
        try:
            self.reload()
        except SQLAlchemyError:
            if not self._verifying:
                raise
            log.warning("signing keys not reloaded: the database does not answer; using the loaded ones")
            self._loaded_at = time.monotonic() - self.reload_seconds + OUTAGE_RETRY_SECONDS

    def reload(self) -> None:
        """Read the published keys (creating the first current key if there is none)."""
        from trikchi.keys.services import ensure_current_key

        with self._lock:
            rows = self._published_rows()
            if not any(row.state == CURRENT for row in rows):
                ensure_current_key()
                rows = self._published_rows()
            verifying = {
                row.kid: VerificationKey(
                    row.kid, row.alg, material.load_public(row.public_jwk, row.alg), row.public_jwk
                )
                for row in rows
            }
            current = next((row for row in rows if row.state == CURRENT), None)
            signing = self._signing if self._signing and self._signing.kid in verifying else None
            if current is not None:
                try:
                    signing = self._signing_material(current)
                except material.KeyDecryptionError:
                    # Verification needs only public keys: keep verifying, keep signing with the
                    # key this worker holds (still published) if any, and say loudly why.
                    log.error(
                        "SIGNING_KEYS_SECRET does not decrypt the current signing key; set the"
                        " secret that encrypted it (NEW,OLD) on every worker",
                        extra={"kid": current.kid},
                    )
            if self._signing is not None and signing is not None and signing.kid != self._signing.kid:
                log.info("signing key changed", extra={"kid": signing.kid})
            self._verifying, self._signing = verifying, signing
            self._loaded_at = time.monotonic()

    def _signing_material(self, row: SigningKey) -> SigningKeyMaterial:
        private = self._private_cache.get(row.kid)
        if private is None:
            private = material.decrypt(row.private_key_encrypted, self.secrets)
            self._private_cache = {row.kid: private}
        return SigningKeyMaterial(row.kid, row.alg, private)

    def signing_key(self) -> SigningKeyMaterial:
        """The current key (loaded at the start of this request)."""
        self.refresh_if_stale()
        if self._signing is None:
            raise ServiceUnavailable("No signing key is usable; try again shortly.")
        return self._signing

    def verification_key(self, kid: str) -> VerificationKey | None:
        """The published key called ``kid``; an unknown kid reloads once (rate-limited)."""
        self.refresh_if_stale()
        key = self._verifying.get(kid)
        if key is None and time.monotonic() - self._loaded_at >= MISS_RELOAD_SECONDS:
            self.reload()
            key = self._verifying.get(kid)
        return key

    def jwks(self) -> list[dict[str, Any]]:
        """The public JWKs of the published keys, newest state first."""
        self.refresh_if_stale()
        return [{**key.jwk, "kid": key.kid, "alg": key.alg, "use": "sig"} for key in self._verifying.values()]

    @staticmethod
    def _published_rows() -> list[SigningKey]:
        from trikchi.extensions import db

        # A connection of its own: never part of (or blocked behind) the request's transaction.
        with db.engine.connect() as connection:
            result = connection.execute(
                select(
                    SigningKey.kid,
                    SigningKey.alg,
                    SigningKey.state,
                    SigningKey.public_jwk,
                    SigningKey.private_key_encrypted,
                )
                .where(SigningKey.state.in_(PUBLISHED))
                .order_by(SigningKey.created_at.desc())
            )
            return list(result.all())  # type: ignore[arg-type]


def is_asymmetric(app: Flask | None = None) -> bool:
    """Whether access tokens are signed with the key set (not HS256 under JWT_SECRET_KEY)."""
    return (app or current_app).config["JWT_ALGORITHM"] in material.ASYMMETRIC_ALGORITHMS


def key_ring(app: Flask | None = None) -> KeyRing:
    """The key ring of this app in this process."""
    app = app or current_app
    return app.extensions["trikchi.keys"]


def init_app(app: Flask) -> None:
    """In an asymmetric mode, keep the key ring fresh at the start of each request."""
    if not is_asymmetric(app):
        return
    ring = KeyRing(app)
    app.extensions["trikchi.keys"] = ring

    @app.before_request
    def _fresh_keys() -> None:
        # Before the request writes anything (a first key is created in its own transaction);
        # never for probes, so that /healthz stays independent of the database.
        if request.blueprint not in _KEYLESS_BLUEPRINTS:
            ring.refresh_if_stale()
