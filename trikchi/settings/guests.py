"""Guests: visitors with a cart before an account (SPEC §15)."""

from __future__ import annotations

from trikchi.settings.base import Integer, Section


class Guests(Section):
    """A guest becomes a customer keeping its id; one left idle is removed by ``flask users prune-guests``."""

    title = "Guests"

    GUEST_TTL_DAYS = Integer(
        30,
        "a guest whose sessions were neither opened nor refreshed for this many days is removed by"
        " `flask users prune-guests`",
        minimum=1,
    )
