"""Registration, sign-in, tokens and sessions."""
