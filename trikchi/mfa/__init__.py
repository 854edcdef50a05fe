"""Second factors and passkeys (SPEC §8): TOTP with recovery codes, the two-step sign-in,
WebAuthn passkeys, and the rule that some roles must have one of them."""
