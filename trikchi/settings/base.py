"""What the concerns' settings are made of: a variable, how it is read, its default, its meaning.

A concern (``core``, ``tokens``, ``limits``, …) is a ``Section`` whose class attributes declare
its environment variables. Building a section reads them, checks each and the rules between
them, and raises ``ConfigError`` naming the variable and what to do when one is unusable.
These declarations are the one table of variables, defaults and meanings: ``config.py`` builds
the app's settings from them and prints docs/configuration.md from them (``python config.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

import click


class ConfigError(click.ClickException):
    """The environment does not describe a configuration the app can run with.

    A ``click.ClickException`` because Flask's CLI builds the app inside click: ``flask …``
    then prints the error as one line and exits with status 1, instead of a traceback.
    ``gunicorn.conf.py`` prints the same line before gunicorn starts.
    """

    def line(self) -> str:
        """The one line an operator sees."""
        return f"trikchi: configuration error: {self.message}"

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``line()`` to stderr (click calls this for ``flask …``)."""
        click.echo(self.line(), file=file, err=file is None)


@dataclass(frozen=True)
class Derived:
    """A default computed when the settings are read, from those read before it; ``text`` says how."""

    text: str
    compute: Callable[[Mapping[str, Any]], Any]


def default_text(default: Any) -> str:
    """How a default is written in docs/configuration.md."""
    if isinstance(default, Derived):
        return default.text
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, int):
        return str(default)
    if not default:
        return "none"
    if isinstance(default, list):
        return "`" + ",".join(default) + "`"
    return f"`{default}`"


def plain(text: str) -> str:
    """Markdown's code marks removed, for a message on a terminal."""
    return text.replace("`", "")


class Setting:
    """One environment variable: how it is parsed, its default and what it means.

    Declared as a class attribute of a ``Section``, which names it. An unset or empty variable
    takes the default; subclasses parse the others and refuse what they cannot use.
    """

    #: What a value must be, completing "NAME must be …".
    expects = "text"

    def __init__(self, default: Any = None, meaning: str = "", *, secret: bool = False) -> None:
        self.default = default
        self.meaning = meaning
        # A secret's value is never repeated in a message.
        self.secret = secret
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def read(self, environ: Mapping[str, str], default: Any, values: Mapping[str, Any]) -> Any:
        """This variable's value in ``environ``, else ``default`` (computed from ``values``)."""
        raw = environ.get(self.name, "").strip()
        if not raw:
            return default.compute(values) if isinstance(default, Derived) else default
        return self.parse(raw, default)

    def parse(self, raw: str, default: Any) -> Any:
        """The value of a set variable; ``refuse`` what cannot be used."""
        return raw

    def refuse(self, raw: str, default: Any, expects: str | None = None) -> ConfigError:
        """The error for an unusable value: what it must be, and how to get the default back."""
        got = "" if self.secret else f", got {raw!r}"
        return ConfigError(
            f"{self.name} must be {expects or self.expects}{got}; "
            f"correct it, or unset it for the default ({plain(default_text(default))})"
        )

    def documented(self) -> Iterator[Setting]:
        """The variables this declaration stands for in the docs (itself; a family more)."""
        yield self


class Text(Setting):
    """A string, one of ``choices`` when given (compared as ``normalize`` leaves it)."""

    def __init__(
        self,
        default: Any = None,
        meaning: str = "",
        *,
        choices: tuple[str, ...] = (),
        normalize: Callable[[str], str] = str,
        secret: bool = False,
    ) -> None:
        super().__init__(default, meaning, secret=secret)
        self.choices = choices
        self.normalize = normalize
        if choices:
            self.expects = "one of " + ", ".join(choices)

    def parse(self, raw: str, default: Any) -> str:
        value = self.normalize(raw)
        if self.choices and value not in self.choices:
            raise self.refuse(raw, default)
        return value


class Flag(Setting):
    """A boolean: ``1/true/yes/on`` or ``0/false/no/off``."""

    expects = "true or false"

    def parse(self, raw: str, default: Any) -> bool:
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise self.refuse(raw, default)


class Integer(Setting):
    """A whole number between ``minimum`` and ``maximum``."""

    def __init__(
        self, default: Any = None, meaning: str = "", *, minimum: int = 0, maximum: int | None = None
    ) -> None:
        super().__init__(default, meaning)
        self.minimum = minimum
        self.maximum = maximum
        if maximum is None:
            self.expects = f"a whole number of at least {minimum}"
        else:
            self.expects = f"a whole number from {minimum} to {maximum}"

    def parse(self, raw: str, default: Any) -> int:
        try:
            number = int(raw)
        except ValueError:
            raise self.refuse(raw, default) from None
        if number < self.minimum or (self.maximum is not None and number > self.maximum):
            raise self.refuse(raw, default)
        return number


class Items(Setting):
    """A comma-separated list. Empty means the default, unless ``empty_means_none``."""

    expects = "a comma-separated list"

    def __init__(
        self,
        default: Any = None,
        meaning: str = "",
        *,
        empty_means_none: bool = False,
        secret: bool = False,
    ) -> None:
        super().__init__([] if default is None else default, meaning, secret=secret)
        self.empty_means_none = empty_means_none

    def read(self, environ: Mapping[str, str], default: Any, values: Mapping[str, Any]) -> Any:
        if self.empty_means_none and self.name in environ and not environ[self.name].strip():
            return []
        value = super().read(environ, default, values)
        return list(value)

    def parse(self, raw: str, default: Any) -> list[str]:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        for item in items:
            self.check_item(item, raw, default)
        return items

    def check_item(self, item: str, raw: str, default: Any) -> None:
        """Refuse an unusable item (any is usable here)."""


class Url(Setting):
    """An http(s) URL without query or fragment; a trailing slash is dropped."""

    expects = "an http(s) URL without query or fragment"

    def parse(self, raw: str, default: Any) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
            raise self.refuse(raw, default)
        return raw.rstrip("/")


class Moment(Setting):
    """An ISO 8601 date (midnight UTC) or date-time (UTC unless it names an offset)."""

    expects = "an ISO date or date-time such as 2027-01-31"

    def parse(self, raw: str, default: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise self.refuse(raw, default) from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class Section:
    """A concern's settings: its variables (class attributes) read from the environment and checked.

    ``defaults`` replaces declared defaults (a configuration class's own, e.g. development's plain
    HTTP cookies); ``values`` are the settings read before this section, which derived defaults
    and rules may use.
    """

    #: The heading of the concern's table in docs/configuration.md.
    title = ""

    def __init__(
        self,
        environ: Mapping[str, str],
        defaults: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        defaults = defaults or {}
        seen = dict(values or {})
        for setting in self.declared():
            value = setting.read(environ, defaults.get(setting.name, setting.default), seen)
            setattr(self, setting.name, value)
            seen[setting.name] = value
        self.check()

    @classmethod
    def declared(cls) -> Iterator[Setting]:
        """The section's variables in the order they are read (and documented)."""
        seen: set[str] = set()
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, Setting) and value.name not in seen:
                    seen.add(value.name)
                    yield value

    def check(self) -> None:
        """Rules between the section's variables; raise ``ConfigError`` naming the variable."""

    def derived(self) -> dict[str, Any]:
        """Settings of the libraries (flask-jwt-extended, Flask-Limiter, …) that follow from these."""
        return {}

    def settings(self) -> dict[str, Any]:
        """Every setting of this concern, as the app's config holds it."""
        values = {setting.name: getattr(self, setting.name) for setting in self.declared()}
        values.update(self.derived())
        return values
