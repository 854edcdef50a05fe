"""Email addresses: the one rule for what an address is and the one form it is stored and compared in,
and whether it is at a throwaway domain.

Two spellings of one mailbox must be one account. ``email-validator`` checks the syntax and
normalises the domain the way mail servers resolve it (IDNA 2008 / UTS #46: fullwidth and
other compatibility characters folded, lower-cased, ``xn--`` labels shown as Unicode); the
local part is lower-cased here (SPEC §3: stored lower-cased). No DNS is asked.

Local parts outside ASCII are refused: delivering to them needs SMTPUTF8 end to end, and
the mail path (Flask-Mail over ``smtplib``, ``trikchi.mail``) does not speak it — such an
address would register, then never receive a link.
"""

from __future__ import annotations

from functools import cache

import idna
from email_validator import EmailNotValidError, validate_email

from trikchi.i18n import N_

INVALID = N_("Not a valid email address.")
NON_ASCII_LOCAL_PART = N_(
    "Write the part before the @ in Latin characters: mail cannot be delivered to other characters."
)


class InvalidEmail(ValueError):
    """Not an address trikchi can store and mail to; ``message`` says why (a catalog message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def canonical_email(value: str) -> str:
    """The stored form of an address typed or received anywhere; ``InvalidEmail`` if it is none."""
    try:
        info = validate_email(
            value.strip(), check_deliverability=False, allow_smtputf8=True, allow_display_name=False
        )
    except EmailNotValidError:
        raise InvalidEmail(INVALID) from None
    if not info.local_part.isascii():
        raise InvalidEmail(NON_ASCII_LOCAL_PART)
    return f"{info.local_part.lower()}@{info.domain}"


def normalize_email(value: str) -> str:
    """The form to look an address up by: canonical, or (an address stored before this rule) trimmed
    and lower-cased, which is what was stored then."""
    try:
        return canonical_email(value)
    except InvalidEmail:
        return value.strip().lower()


def smtp_address(address: str) -> str:
    """``address`` as an SMTP envelope can carry it without SMTPUTF8: the domain in its ASCII (``xn--``)
    form by IDNA 2008 (Flask-Mail would use Python's IDNA 2003 codec, which maps some domains elsewhere)."""
    try:
        info = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return address
    return f"{info.local_part}@{info.ascii_domain}"


@cache
def disposable_domains() -> frozenset[str]:
    """Throwaway mail domains: the disposable-email-domains project's blocklist (its own package)."""
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


def is_disposable(address: str) -> bool:
    """Whether ``address`` is at a throwaway mail domain or a subdomain of one."""
    domain = address.rpartition("@")[2].rstrip(".").lower()
    if not domain.isascii():  # the list holds ASCII (``xn--``) forms
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            return False
    labels = domain.split(".")
    listed = disposable_domains()
    # mail.mailinator.com is mailinator.com's; a bare top-level domain is never listed.
    return any(".".join(labels[start:]) in listed for start in range(len(labels) - 1))
