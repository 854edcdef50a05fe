"""Social sign-in: OpenID Connect providers and Telegram Login (SPEC §9)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from trikchi.settings.base import ConfigError, Derived, Integer, Items, Section, Setting, Text, Url

GOOGLE_DISCOVERY_URL = "https://accounts.google.com/.well-known/openid-configuration"
PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


class Providers(Items):
    """``OAUTH_PROVIDERS``, read with each provider's ``OAUTH_<NAME>_*`` variables into
    ``{name: {"discovery_url", "client_id", "client_secret", "scopes"}}``."""

    expects = "comma-separated lower-case names of letters, digits and _ (at most 20 each, not 'telegram')"

    def __init__(self, meaning: str, **family: Setting) -> None:
        super().__init__(meaning=meaning)
        self.default = {}
        self.family = family
        for key, setting in family.items():
            setting.name = f"OAUTH_<NAME>_{key.upper()}"

    def documented(self) -> Iterator[Setting]:
        yield self
        yield from self.family.values()

    def check_item(self, item: str, raw: str, default: Any) -> None:
        name = item.lower()
        if not PROVIDER_NAME.match(name) or name == "telegram":
            raise self.refuse(raw, default)

    def read(self, environ: Mapping[str, str], default: Any, values: Mapping[str, Any]) -> Any:
        providers: dict[str, dict[str, Any]] = {}
        for item in super().read(environ, default, values):
            name = item.lower()
            provider = {}
            for key, template in self.family.items():
                setting = copy.copy(template)
                setting.name = f"OAUTH_{name.upper()}_{key.upper()}"
                value = setting.read(environ, setting.default, {**values, "provider": name})
                if value is None and key in {"discovery_url", "client_id"}:
                    raise ConfigError(
                        f"{setting.name} must be set for the provider {name!r}; set it, or take {name}"
                        " out of OAUTH_PROVIDERS"
                    )
                provider[key] = value
            providers[name] = provider
        return providers


class Social(Section):
    """Sign-in through an OpenID Connect provider (code flow with PKCE) or the Telegram widget."""

    title = "Social sign-in"

    OAUTH_PROVIDERS = Providers(
        "comma-separated OpenID Connect provider names (lower case)",
        discovery_url=Url(
            Derived(
                "Google's for `google`, else required",
                lambda v: GOOGLE_DISCOVERY_URL if v["provider"] == "google" else None,
            ),
            "the provider's `/.well-known/openid-configuration`",
        ),
        client_id=Text(Derived("required", lambda v: None), "the client registered at the provider"),
        client_secret=Text(
            None, "the client's secret (without one: a public client, PKCE only)", secret=True
        ),
        scopes=Text("openid email profile", "scopes asked for"),
    )
    # The public base URL of this service for the redirect URI; default: the request's.
    OAUTH_CALLBACK_BASE_URL = Url(
        Derived("the request's host", lambda v: None), "public base URL of the API for the redirect URI"
    )
    OAUTH_STATE_SECONDS = Integer(600, "how long a started sign-in may take", minimum=60)
    OAUTH_HTTP_TIMEOUT_SECONDS = Integer(10, "timeout of each call to a provider, seconds", minimum=1)
    OAUTH_METADATA_MAX_AGE_SECONDS = Integer(
        3600,
        "how long a provider's discovery document and JWKS are cached (an unknown `kid` refetches the JWKS)",
    )
    TELEGRAM_BOT_TOKEN = Text(None, "the bot's token (Telegram sign-in is off without it)", secret=True)
    TELEGRAM_BOT_NAME = Text(None, "the bot's username, for the widget")
    TELEGRAM_AUTH_MAX_AGE_SECONDS = Integer(
        3600, "how old a widget's `auth_date` may be (at most a day)", minimum=10, maximum=86400
    )
