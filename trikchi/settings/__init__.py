"""trikchi's settings by concern: each module declares and checks its environment variables.

``config.py`` (at the project's root) puts them together for each environment; see
``trikchi.settings.base`` for how a concern is declared.
"""

from trikchi.settings.base import ConfigError, Derived, Section, Setting, default_text

__all__ = ["ConfigError", "Derived", "Section", "Setting", "default_text"]
