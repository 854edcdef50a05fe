"""SMS: the gateway the outbox worker sends through (Eskiz, Play Mobile, or the log), SPEC §14."""

from __future__ import annotations

from trikchi.settings.base import ConfigError, Integer, Section, Text, Url

#: The gateways (``trikchi.sms``); ``log`` writes the text to the log and sends nothing.
PROVIDERS = ("log", "eskiz", "playmobile")
#: What a gateway needs before it can send, by provider.
CREDENTIALS = {
    "eskiz": ("ESKIZ_EMAIL", "ESKIZ_PASSWORD"),
    "playmobile": ("PLAYMOBILE_LOGIN", "PLAYMOBILE_PASSWORD"),
}


class Sms(Section):
    """Text messages (sign-in codes) leave through the outbox: `SMS_PROVIDER` first, `SMS_FALLBACK_PROVIDER`
    when it fails. `log` writes the text, code included, to the log: it is for development only, and
    production refuses it ([SMS gateways](sms.md))."""

    title = "SMS"

    SMS_PROVIDER = Text(
        "log",
        "the gateway: `eskiz`, `playmobile`, or `log` (development: the text is logged, not sent);"
        " unset in production, SMS wait in the outbox",
        choices=PROVIDERS,
        normalize=str.lower,
    )
    SMS_FALLBACK_PROVIDER = Text(
        None,
        "the gateway tried when `SMS_PROVIDER` fails (network error, timeout, an answer that is not 2xx):"
        " `eskiz` or `playmobile`",
        choices=PROVIDERS[1:],
        normalize=str.lower,
    )
    # The worker's attempts: a sign-in code lives 5 minutes, so retries past that are pointless.
    SMS_MAX_ATTEMPTS = Integer(
        4,
        "attempts before an SMS is dead (with the default back-off, 4 attempts end within 3½ minutes,"
        " while a code still works)",
        minimum=1,
    )
    ESKIZ_EMAIL = Text(None, "the Eskiz account's email (`eskiz`)")
    ESKIZ_PASSWORD = Text(None, "the Eskiz account's password or API key (`eskiz`)", secret=True)
    ESKIZ_FROM = Text("4546", "the sender name or number Eskiz approved for the account")
    ESKIZ_BASE_URL = Url("https://notify.eskiz.uz/api", "Eskiz's API")
    PLAYMOBILE_LOGIN = Text(None, "the Play Mobile (smsxabar.uz) account's login (`playmobile`)")
    PLAYMOBILE_PASSWORD = Text(None, "the Play Mobile account's password (`playmobile`)", secret=True)
    PLAYMOBILE_ORIGINATOR = Text("3700", "the originator (sender) Play Mobile approved for the account")
    PLAYMOBILE_URL = Url("https://send.smsxabar.uz/broker-api/send", "Play Mobile's send endpoint")

    def check(self) -> None:
        provider, fallback = self.SMS_PROVIDER, self.SMS_FALLBACK_PROVIDER
        if fallback and not provider:
            raise ConfigError(
                "SMS_FALLBACK_PROVIDER needs SMS_PROVIDER: set SMS_PROVIDER to eskiz or playmobile,"
                " or unset SMS_FALLBACK_PROVIDER"
            )
        if fallback and fallback == provider:
            raise ConfigError(
                f"SMS_FALLBACK_PROVIDER must differ from SMS_PROVIDER (both {provider}): name the other"
                " gateway, or unset SMS_FALLBACK_PROVIDER"
            )
        for name, variable in ((provider, "SMS_PROVIDER"), (fallback, "SMS_FALLBACK_PROVIDER")):
            for needed in CREDENTIALS.get(name or "", ()):
                if not getattr(self, needed):
                    raise ConfigError(
                        f"{needed} must be set when {variable} is {name}; set it (docs/sms.md), or choose"
                        f" another {variable}"
                    )
