"""CAPTCHA: Cloudflare Turnstile or hCaptcha on the endpoints that cost or create (SPEC §14)."""

from __future__ import annotations

from trikchi.settings.base import ConfigError, Derived, Integer, Section, Text, Url

#: Each provider's siteverify endpoint; both speak the same protocol.
VERIFY_URLS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
}


class Captcha(Section):
    """Off unless `CAPTCHA_PROVIDER` is set: then registration, password-reset requests and SMS codes need a
    `captcha_token` (body field or `X-Captcha-Token` header), checked with the provider's siteverify."""

    title = "CAPTCHA"

    CAPTCHA_PROVIDER = Text(
        None,
        "`turnstile` (Cloudflare) or `hcaptcha`; unset: no CAPTCHA",
        choices=tuple(VERIFY_URLS),
        normalize=str.lower,
    )
    CAPTCHA_SECRET = Text(
        None, "the secret key the provider gave the site (required with a provider)", secret=True
    )
    CAPTCHA_VERIFY_URL = Url(
        Derived(
            "the provider's siteverify (`" + "`, `".join(VERIFY_URLS.values()) + "`)",
            lambda v: VERIFY_URLS.get(v["CAPTCHA_PROVIDER"] or ""),
        ),
        "where tokens are checked (form `secret`, `response`, `remoteip`)",
    )
    CAPTCHA_TIMEOUT_SECONDS = Integer(
        5, "how long a request waits for siteverify before answering 503", minimum=1, maximum=30
    )

    def check(self) -> None:
        if self.CAPTCHA_PROVIDER and not self.CAPTCHA_SECRET:
            raise ConfigError(
                f"CAPTCHA_SECRET must be set when CAPTCHA_PROVIDER is {self.CAPTCHA_PROVIDER}; set the"
                " site's secret key (docs/sms.md#captcha), or unset CAPTCHA_PROVIDER"
            )
