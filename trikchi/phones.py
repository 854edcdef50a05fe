"""Phone numbers: the one rule for what a number is and the one form (E.164) it is stored in.

People write a number as they are used to (``90 123 45 67``, ``+998 (90) 123-45-67``,
``998901234567``); Google's libphonenumber (the ``phonenumbers`` port) reads it against
``PHONE_DEFAULT_REGION`` and knows, country by country, which numbers exist. trikchi keeps no
rule of its own about digits or prefixes: a number is accepted when ``phonenumbers`` finds it
valid, it belongs to one of ``SMS_ALLOWED_REGIONS`` (the countries the shop sends SMS to), and it
was written without letters or an extension (the library would read ``1-800-FLOWERS`` as digits;
nobody types a vanity number to get a code).
"""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers
from flask import current_app

from trikchi.i18n import N_

INVALID = N_("Not a phone number a code can be sent to.")


class InvalidPhone(ValueError):
    """Not a number trikchi accepts; ``message`` says why (a catalog message)."""

    def __init__(self, message: str = INVALID) -> None:
        super().__init__(message)
        self.message = message


def known_region(code: str) -> bool:
    """Whether ``code`` is a region (ISO 3166 country code) ``phonenumbers`` has numbers for."""
    return code in phonenumbers.SUPPORTED_REGIONS


def canonical_phone(value: str, default_region: str, allowed_regions: Iterable[str]) -> str:
    """The E.164 form of a number as written; ``InvalidPhone`` unless it is a valid number of
    ``allowed_regions``."""
    if not isinstance(value, str) or any(char.isalpha() for char in value):
        raise InvalidPhone()
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone() from None
    if number.extension or not phonenumbers.is_valid_number(number):
        raise InvalidPhone()
    if phonenumbers.region_code_for_number(number) not in set(allowed_regions):
        raise InvalidPhone()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(value: str) -> str:
    """``canonical_phone`` with the app's ``PHONE_DEFAULT_REGION`` and ``SMS_ALLOWED_REGIONS``."""
    config = current_app.config
    return canonical_phone(value, config["PHONE_DEFAULT_REGION"], config["SMS_ALLOWED_REGIONS"])


def search_forms(query: str) -> tuple[str | None, str | None]:
    """What a search text means as a phone number: its E.164 form if it is one, and its digits
    (for a partial match) if it is written like a part of one (no letters, some digits)."""
    try:
        exact = normalize_phone(query)
    except InvalidPhone:
        exact = None
    digits = None
    if not any(char.isalpha() for char in query):
        digits = phonenumbers.normalize_digits_only(query) or None
    return exact, digits


def mask_phone(e164: str | None) -> str | None:
    """A stored number as events and logs show it: the country code and the last two digits
    (``+998*******67``), enough to tell numbers apart, not to call one."""
    if not e164:
        return None
    try:
        country = str(phonenumbers.parse(e164).country_code)
    except phonenumbers.NumberParseException:
        country = ""
    rest = e164[1 + len(country) :]
    return "+" + country + "*" * max(len(rest) - 2, 0) + rest[-2:]
