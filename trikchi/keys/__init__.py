"""Signing keys of access tokens: the key set, its life cycle, the JWKS other services verify with."""
