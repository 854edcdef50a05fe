"""Password hashing: argon2id's cost."""

from __future__ import annotations

from trikchi.settings.base import Integer, Section


class Passwords(Section):
    """argon2id's parameters; a stored hash is upgraded at the next sign-in when they change."""

    title = "Passwords"

    ARGON2_TIME_COST = Integer(3, "argon2id passes (argon2-cffi's default)", minimum=1)
    ARGON2_MEMORY_COST = Integer(65536, "argon2id memory, KiB (argon2-cffi's default)", minimum=8)
    ARGON2_PARALLELISM = Integer(4, "argon2id lanes (argon2-cffi's default)", minimum=1)
