"""Second factors and passkeys (SPEC §8): TOTP with recovery codes, the second step of a sign-in,
WebAuthn passkeys. Plugged into the core's sign-in decision through ``auth.seams``."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register TOTP and passkeys with the core: second factors, ways to sign in, a clean start."""
    from trikchi.auth.seams import SecondFactor, of
    from trikchi.mfa import passkeys, signin, totp

    registry = of(app)
    registry.second_factors.append(
        SecondFactor("totp", totp.is_enabled, step_methods=signin.METHODS, verify=totp.verify_code)
    )
    registry.second_factors.append(SecondFactor("passkey", passkeys.has_passkey))
    registry.sign_in_methods.append(passkeys.count)
    registry.credential_resets.extend([totp.remove_all, passkeys.remove_all])
