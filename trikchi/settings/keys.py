"""Signing keys: how access tokens are signed and what other services are told to verify (SPEC §7)."""

from __future__ import annotations

from trikchi.settings.base import ConfigError, Integer, Items, Section, Text, Url

ACCESS_TOKEN_ALGORITHMS = ("HS256", "ES256", "EdDSA", "RS256")
MIN_SECRET_BYTES = 32


class SigningKeys(Section):
    """HS256 under ``JWT_SECRET_KEY`` (the seed's way), or ES256/EdDSA/RS256 with the current key of
    the key set, published as a JWKS. Refresh tokens are HS256 in every mode."""

    title = "Signing keys"

    JWT_ALGORITHM = Text(
        "HS256",
        "how access tokens are signed: `HS256` under `JWT_SECRET_KEY` (only trikchi verifies), or"
        " `ES256`, `EdDSA`, `RS256` with the key set other services verify through the JWKS",
        choices=ACCESS_TOKEN_ALGORITHMS,
    )
    JWT_ISSUER = Text(
        "trikchi",
        "`iss` of every token, checked on decode; the service's public URL (`https://auth.trikchi.uz`)"
        " when other services verify tokens",
    )
    JWT_AUDIENCE = Text(None, "`aud` of every token, required on decode when set")
    # Never taken from the request: its Host header is the client's to write.
    PUBLIC_URL = Url(
        None,
        "this service's public base URL (`https://auth.trikchi.uz`), for the discovery's `jwks_uri`"
        " when `JWT_ISSUER` is no URL",
    )
    JWKS_MAX_AGE_SECONDS = Integer(
        600, "`Cache-Control` max-age of the JWKS; a standby key is published this long before a rotation"
    )
    KEYS_RELOAD_SECONDS = Integer(
        30, "how often each worker re-reads the key set (how fast a rotation reaches every worker)", minimum=1
    )
    SIGNING_KEYS_SECRET = Items(
        None,
        "encrypts the private signing keys in the database (each ≥ 32 bytes; comma-separated: the first"
        " encrypts, all decrypt); required with `ES256`, `EdDSA`, `RS256`",
        secret=True,
    )

    def check(self) -> None:
        if self.JWT_ALGORITHM == "HS256":
            return
        if not self.SIGNING_KEYS_SECRET:
            raise ConfigError(
                f"SIGNING_KEYS_SECRET must be set when JWT_ALGORITHM is {self.JWT_ALGORITHM} (it encrypts"
                " the private signing keys stored in the database); set it, or JWT_ALGORITHM=HS256"
            )
        if any(len(secret.encode()) < MIN_SECRET_BYTES for secret in self.SIGNING_KEYS_SECRET):
            raise ConfigError(
                f"SIGNING_KEYS_SECRET must hold secrets of at least {MIN_SECRET_BYTES} bytes each; generate"
                " one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
