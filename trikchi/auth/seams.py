"""Where features plug into the core: what the core asks of them, registered when the app is built.

The core (sessions, tokens, guards, events, the sign-in decision) imports no feature. A
feature that the core must consult registers here from its ``init_app`` (``trikchi.features``):

- ``SecondFactor``: a second factor a user can have on (TOTP, passkeys). The sign-in decision
  asks each whether the user has it, and which methods the second step then accepts.
- ``sign_in_methods``: how many independent ways to sign in a feature gives a user (linked
  identities, passkeys), so that removing one never takes away the last.
- ``refresh_fallbacks``: a view-level fallback for ``POST /auth/refresh_token`` when the cookie
  is not one of trikchi's (the seed's cookies, SPEC §12).
- ``account_checks``: a refusal of an account at sign-in and by the per-request guard, beside
  "not active" (bans, SPEC §16, come through here).
- ``credential_resets``: what a feature removes when an account starts clean (a never-verified
  address proven by its owner: whatever a squatter set up before goes).

Subscribers to what the core does (notices, webhooks, metrics) use ``trikchi.signals`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

_KEY = "trikchi.seams"


@dataclass(frozen=True)
class SecondFactor:
    """A second factor offered by a feature.

    ``enrolled(user_id)`` says whether the user has it on. ``step_methods`` are the methods the
    second step of a sign-in accepts for it (``totp``, ``recovery_code``); a factor that is a
    sign-in method of its own (a passkey) has none. ``verify(user_id, code)`` checks a code for
    re-authentication and returns the method it was (``totp`` or ``recovery_code``) or None.
    """

    name: str
    enrolled: Callable[[int], bool]
    step_methods: tuple[str, ...] = ()
    verify: Callable[[int, str], str | None] | None = None


@dataclass
class Seams:
    """Everything the features registered on one app."""

    second_factors: list[SecondFactor] = field(default_factory=list)
    sign_in_methods: list[Callable[[int], int]] = field(default_factory=list)
    refresh_fallbacks: list[Callable[[], Any]] = field(default_factory=list)
    account_checks: list[Callable[[Any], None]] = field(default_factory=list)
    credential_resets: list[Callable[[int], None]] = field(default_factory=list)


def init_app(app: Flask) -> Seams:
    """Give the app its (empty) registry; features fill it next."""
    registry = Seams()
    app.extensions[_KEY] = registry
    return registry


def of(app: Flask) -> Seams:
    """The app's registry, to register into from a feature's ``init_app``."""
    return app.extensions[_KEY]


def seams() -> Seams:
    """The current app's registry."""
    return current_app.extensions[_KEY]
