"""Social sign-in (SPEC §9): OpenID Connect providers, Telegram Login, linked identities."""
