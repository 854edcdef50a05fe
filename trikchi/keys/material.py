"""Key material: generating keys, their public JWK and kid, and encrypting the private half.

Private keys are serialised as PKCS#8 and encrypted with Fernet (AES-128-CBC +
HMAC-SHA256) under keys derived from ``SIGNING_KEYS_SECRET``. Several
comma-separated secrets may be given: the first encrypts, all decrypt, so the
secret itself can be rotated (``flask keys reencrypt``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ASYMMETRIC_ALGORITHMS = ("ES256", "EdDSA", "RS256")
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

# The members of each key type that RFC 7638 hashes into the thumbprint (our kid).
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
_JWK = {"ES256": ECAlgorithm, "EdDSA": OKPAlgorithm, "RS256": RSAAlgorithm}


class KeyDecryptionError(RuntimeError):
    """No secret in ``SIGNING_KEYS_SECRET`` decrypts a stored private key."""


def generate(alg: str) -> PrivateKey:
    """A new private key for ``alg``: P-256, Ed25519 or RSA-3072."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def public_jwk(private_key: PrivateKey, alg: str) -> dict[str, Any]:
    """The public JWK of a key: key type and public parameters only."""
    jwk = _JWK[alg].to_jwk(private_key.public_key(), as_dict=True)
    return {name: value for name, value in jwk.items() if name in {"kty", "crv", "x", "y", "n", "e"}}


def thumbprint(jwk: dict[str, Any]) -> str:
    """A kid that names the key itself: the RFC 7638 SHA-256 thumbprint, first 128 bits in hex.

    Hex rather than base64url, so that a kid never starts with ``-`` and can be given to
    ``flask keys retire`` as it is.
    """
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    return hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).hexdigest()[
        :32
    ]


def load_public(jwk: dict[str, Any], alg: str) -> PyJWK:
    """The public key of a stored public JWK, bound to its one algorithm: PyJWT verifies a token
    with it only when the token's ``alg`` is that algorithm."""
    return PyJWK(jwk, alg)


def derived_fernet(secret: str, purpose: bytes) -> Fernet:
    """A Fernet key derived (HKDF-SHA256) from ``secret`` for one ``purpose``: secrets at rest."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet(secrets: list[str]) -> MultiFernet:
    return MultiFernet([derived_fernet(secret, b"trikchi signing keys") for secret in secrets])


def encrypt(private_key: PrivateKey, secrets: list[str]) -> str:
    """The private key as PKCS#8 PEM, encrypted under the first secret."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _fernet(secrets).encrypt(pem).decode()


def decrypt(ciphertext: str, secrets: list[str]) -> PrivateKey:
    """The private key object of a stored ciphertext; ``KeyDecryptionError`` if no secret fits."""
    try:
        pem = _fernet(secrets).decrypt(ciphertext.encode())
    except InvalidToken:
        raise KeyDecryptionError("SIGNING_KEYS_SECRET does not decrypt a stored signing key") from None
    return serialization.load_pem_private_key(pem, password=None)  # type: ignore[return-value]


def reencrypt(ciphertext: str, secrets: list[str]) -> str:
    """The same private key, encrypted under the first secret (after a secret rotation)."""
    try:
        return _fernet(secrets).rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise KeyDecryptionError("SIGNING_KEYS_SECRET does not decrypt a stored signing key") from None
