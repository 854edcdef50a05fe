"""Second factors and passkeys: who must have one, and the site passkeys belong to (SPEC §8)."""

from __future__ import annotations

from urllib.parse import urlsplit

from trikchi.settings.base import Derived, Items, Section, Text


class SecondFactors(Section):
    """TOTP with recovery codes, and passkeys (WebAuthn)."""

    title = "Second factors and passkeys"

    MFA_REQUIRED_ROLES = Items(
        ["admin"],
        "roles that must have TOTP or a passkey before the admin API answers them (set and empty: none)",
        empty_means_none=True,
    )
    TOTP_ISSUER = Text("trikchi.uz", "the issuer shown in authenticator apps")
    WEBAUTHN_RP_ID = Text(
        Derived("the host of `FRONTEND_URL`", lambda v: urlsplit(v["FRONTEND_URL"]).hostname or "localhost"),
        "the passkeys' relying party: the site's domain (never an IP address), e.g. `trikchi.uz`",
    )
    WEBAUTHN_RP_NAME = Text("trikchi.uz", "the name authenticators show")
    WEBAUTHN_ORIGINS = Items(
        Derived("`FRONTEND_URL`", lambda v: [v["FRONTEND_URL"]]),
        "comma-separated origins of the pages that use passkeys (`https://trikchi.uz`)",
    )
