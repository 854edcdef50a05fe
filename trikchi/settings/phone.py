"""Phone numbers and SMS codes (SPEC §14): which numbers are accepted, the limits that protect the
shop's SMS bill, and the texts of the code messages."""

from __future__ import annotations

from typing import Any

import phonenumbers

from trikchi.settings.base import Flag, Integer, Items, Section, Text
from trikchi.settings.limits import Limit

REGION_EXPECTS = "an ISO 3166 country code phonenumbers knows, such as UZ"


class Region(Text):
    """A region (ISO 3166 country code, upper case) the ``phonenumbers`` library has numbers for."""

    expects = REGION_EXPECTS

    def parse(self, raw: str, default: Any) -> str:
        code = raw.upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise self.refuse(raw, default)
        return code


class Regions(Items):
    """Comma-separated regions, each one ``phonenumbers`` knows (upper-cased)."""

    expects = "comma-separated ISO 3166 country codes phonenumbers knows, such as UZ,KZ"

    def parse(self, raw: str, default: Any) -> list[str]:
        return [item.upper() for item in super().parse(raw, default)]

    def check_item(self, item: str, raw: str, default: Any) -> None:
        if item.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise self.refuse(raw, default)


class SmsTemplate(Text):
    """The text of a code message, with ``{code}`` where the six digits go."""

    expects = "a text with the placeholder {code}"

    def parse(self, raw: str, default: Any) -> str:
        if "{code}" not in raw:
            raise self.refuse(raw, default)
        return raw


class Phone(Section):
    """Sign-in with a phone number and a code by SMS. The SMS themselves leave through the outbox
    (the gateways: docs/sms.md)."""

    title = "Phone numbers and SMS codes"

    PHONE_DEFAULT_REGION = Region("UZ", "the country of a number written without `+` and country code")
    SMS_ALLOWED_REGIONS = Regions(
        ["UZ"], "comma-separated countries whose numbers get codes (others: 422 `invalid_phone`)"
    )
    SMS_DAILY_LIMIT = Integer(
        10000,
        "code messages per day for the whole service (shared through `RATELIMIT_STORAGE_URI`); past it,"
        " 429 `rate_limited`",
        minimum=1,
    )
    RATELIMIT_PHONE_CODE = Limit(
        "10 per minute;100 per hour", "code requests per IP (sign-in and phone change)"
    )
    RATELIMIT_PHONE_CODE_PER_NUMBER = Limit(
        "5 per hour;10 per day", "codes sent to one number, beside the 60-second resend window"
    )
    RATELIMIT_PHONE_VERIFY = Limit("10 per minute;100 per hour", "wrong or expired codes per IP")
    SMS_TEMPLATE_UZ = SmsTemplate(None, "the Uzbek code message, with `{code}` (unset: the built-in text)")
    SMS_TEMPLATE_RU = SmsTemplate(None, "the Russian code message, with `{code}` (unset: the built-in text)")
    SMS_TEMPLATE_EN = SmsTemplate(None, "the English code message, with `{code}` (unset: the built-in text)")
    NOTIFY_PHONE_CHANGED = Flag(True, "mail a notice when the phone number is changed or removed")
