"""The ways an account can sign in on its own: a password, and whatever the features count
(linked identities, passkeys: ``auth.seams.sign_in_methods``).

One place counts them, so that removing any of them (unlinking an identity, deleting a
passkey) refuses to take away the last one — an account with none could never sign in again.
"""

from __future__ import annotations

from trikchi.auth.models import User
from trikchi.auth.seams import seams
from trikchi.errors import Conflict, ErrorCode
from trikchi.extensions import db
from trikchi.i18n import N_

LAST_METHOD = N_(
    "This is your last way to sign in: set a password (reset), link another account or add a passkey first."
)


def sign_in_methods_left(user: User) -> int:
    """How many independent ways ``user`` has to sign in."""
    own = 1 if user.password_hash is not None else 0
    return own + sum(count(user.id) for count in seams().sign_in_methods)


def refuse_removing_the_last(user: User) -> None:
    """409 ``last_sign_in_method`` (after rolling back) when ``user`` has one way left to sign in."""
    if sign_in_methods_left(user) <= 1:
        db.session.rollback()
        raise Conflict(LAST_METHOD, error=ErrorCode.LAST_SIGN_IN_METHOD)
