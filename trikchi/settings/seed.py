"""Moving from the seed's service: its refresh cookies exchanged once for a session (SPEC §12)."""

from __future__ import annotations

from trikchi.settings.base import Integer, Moment, Section, Text


class Seed(Section):
    """While ``SEED_JWT_SECRET`` is set, until ``SEED_TOKENS_UNTIL``, a seed refresh cookie is
    exchanged once for a trikchi session."""

    title = "Moving from the seed's service"

    SEED_JWT_SECRET = Text(
        None,
        "the seed's `SECRET_KEY`; while set, seed refresh cookies are exchanged (unset: refused)",
        secret=True,
    )
    SEED_TOKENS_UNTIL = Moment(
        None,
        "ISO date (midnight UTC) or date-time after which seed tokens are refused like any foreign token"
        " (unset: until the secret is removed)",
    )
    # The seed's access and refresh tokens carry the same claims (sub, exp), so a token that
    # expires sooner than this may be an access token.
    SEED_ACCESS_TOKEN_MINUTES = Integer(
        15,
        "the seed's `ACCESS_TOKEN_EXPIRE_MINUTES`; add the seed host's offset west of UTC if its clock"
        " was not UTC (it computed `exp` from a naive `utcnow()`)",
        minimum=1,
    )
