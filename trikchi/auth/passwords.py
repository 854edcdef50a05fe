"""The one argon2 ``PasswordHasher`` of the app, and the password policy."""

from __future__ import annotations

import secrets
import sys
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import Flask

from trikchi.i18n import N_

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_PASSWORDS_COUNT = 10_000


@cache
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords, lower-cased, from zxcvbn's ranked list."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    ranked = FREQUENCY_LISTS["passwords"][:COMMON_PASSWORDS_COUNT]
    result = frozenset(password.lower() for password in ranked)
    # The module also holds large English dictionaries we never use: let them go.
    sys.modules.pop("zxcvbn.frequency_lists", None)
    return result


def password_problems(password: str, email: str | None = None) -> list[str]:
    """Return why ``password`` is refused (empty when acceptable); no composition rules."""
    problems = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(f"Password must be between {MIN_LENGTH} and {MAX_LENGTH} characters.")
    elif password.lower() in common_passwords():
        problems.append(N_("This password is too common; choose a less predictable one."))
    elif email and password.strip().lower() == email.strip().lower():
        problems.append(N_("Password must not be the same as the email address."))
    return problems


class PasswordManager:
    """Hashes and verifies passwords with parameters from the ``ARGON2_*`` settings."""

    def __init__(self) -> None:
        self._hasher: PasswordHasher | None = None
        self._dummy_hash: str | None = None

    def init_app(self, app: Flask) -> None:
        """Build the hasher (and a dummy hash for unknown users) from the app's config."""
        self._hasher = PasswordHasher(
            time_cost=app.config["ARGON2_TIME_COST"],
            memory_cost=app.config["ARGON2_MEMORY_COST"],
            parallelism=app.config["ARGON2_PARALLELISM"],
        )
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))
        app.extensions["trikchi_passwords"] = self
        common_passwords()  # load once at start, not on the first request

    @property
    def hasher(self) -> PasswordHasher:
        """The configured hasher; fails loudly if ``init_app`` was not called."""
        if self._hasher is None:
            raise RuntimeError("PasswordManager.init_app() was not called")
        return self._hasher

    def hash(self, password: str) -> str:
        """Hash a password for storage."""
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password in constant time; with no hash, spend the same time and fail."""
        if password_hash is None:
            try:
                self.hasher.verify(self._dummy_hash or "", password)
            except (VerificationError, InvalidHashError):
                pass
            return False
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a stored hash was made with other parameters than the current ones."""
        return self.hasher.check_needs_rehash(password_hash)


#: The one password hasher; ``create_app`` binds it to the app's ``ARGON2_*`` settings.
passwords = PasswordManager()
