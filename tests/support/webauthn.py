"""A WebAuthn authenticator in software (P-256, CBOR, the WebAuthn byte formats) and the two
passkey ceremonies against trikchi, for tests that need a passkey without a browser."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ORIGIN = "http://localhost:3000"  # the default FRONTEND_URL, so a default WebAuthn origin
RP_ID = "localhost"
UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """A platform authenticator in software: one discoverable P-256 credential per registration."""

    def __init__(self, origin: str = ORIGIN, user_verified: bool = True) -> None:
        self.origin = origin
        self.user_verified = user_verified
        self.credentials: dict[bytes, dict] = {}

    def _client_data(self, type_: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": type_, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def _flags(self) -> int:
        return UP | (UV if self.user_verified else 0)

    def create(self, options: dict) -> dict:
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        credential_id = os.urandom(16)
        self.credentials[credential_id] = {"key": key, "count": 0, "user_handle": options["user"]["id"]}
        cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )
        auth_data = (
            hashlib.sha256(options["rp"]["id"].encode()).digest()
            + bytes([self._flags() | AT])
            + (0).to_bytes(4, "big")
            + bytes(16)
            + len(credential_id).to_bytes(2, "big")
            + credential_id
            + cose
        )
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"])),
                "attestationObject": b64url(
                    cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
                ),
                "transports": ["internal"],
            },
        }

    def get(self, options: dict, credential_id: bytes | None = None, count: int | None = None) -> dict:
        credential_id = credential_id or next(iter(self.credentials))
        credential = self.credentials[credential_id]
        if count is None:
            credential["count"] += 1
            count = credential["count"]
        client_data = self._client_data("webauthn.get", options["challenge"])
        auth_data = (
            hashlib.sha256(options["rpId"].encode()).digest()
            + bytes([self._flags()])
            + count.to_bytes(4, "big")
        )
        signature = credential["key"].sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": credential["user_handle"],
            },
        }


def add_passkey(auth, authenticator: SoftAuthenticator, name: str | None = "Laptop"):
    options = auth.client.post("/auth/passkeys/registration/options", headers=auth.headers())
    assert options.status_code == 200, options.json
    body = authenticator.create(options.json)
    if name is not None:
        body["name"] = name
    return auth.client.post("/auth/passkeys/registration/verify", json=body, headers=auth.headers())


def passkey_sign_in(client, authenticator: SoftAuthenticator, **kwargs):
    options = client.post("/auth/passkeys/authentication/options")
    assert options.status_code == 200, options.json
    return client.post("/auth/passkeys/authentication/verify", json=authenticator.get(options.json, **kwargs))
