"""CAPTCHA (SPEC §14): Cloudflare Turnstile or hCaptcha, through the siteverify protocol both speak.

Off unless ``CAPTCHA_PROVIDER`` is set. Then the views of the endpoints that create accounts or
cost money (registration, password-reset requests, SMS codes, guests) call ``require_captcha``
before their service: the token the page's widget produced comes in the body's
``captcha_token`` or the ``X-Captcha-Token`` header, and is checked with a form ``POST`` of
``secret``, ``response`` and ``remoteip`` to ``CAPTCHA_VERIFY_URL``, which answers JSON
``{"success": bool, "error-codes": [...]}``. A missing or refused token is 403
``captcha_failed``; a provider that cannot answer (unreachable, slow, 5xx, or refusing our own
secret) is 503 ``captcha_unavailable`` — the visitor did nothing wrong, and nobody gets through
unchecked.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import httpx
from flask import current_app, request

from trikchi.error_codes import ErrorCode
from trikchi.errors import AppError
from trikchi.i18n import N_

log = logging.getLogger(__name__)

HEADER = "X-Captcha-Token"
# Turnstile's tokens are at most 2048 characters; hCaptcha's are longer, but not this long.
MAX_TOKEN_LENGTH = 8192
# What a token is made of (base64url, dots, dashes): printable ASCII, no space.
TOKEN_PATTERN = r"^[!-~]*$"  # noqa: S105 - a pattern, not a password
# siteverify's answers about our own request, not the visitor's token: a configuration error.
_OUR_MISTAKES = {"missing-input-secret", "invalid-input-secret", "sitekey-secret-mismatch"}
RETRY_AFTER_SECONDS = 5


def captcha_parameters() -> list[dict[str, Any]]:
    """The header, for the API document of every view that calls ``require_captcha``."""
    return [
        {
            "in": "header",
            "name": HEADER,
            "required": False,
            "description": (
                "The CAPTCHA widget's token, when the body has no `captcha_token` (only checked while"
                " the service has a `CAPTCHA_PROVIDER`)."
            ),
            "schema": {"type": "string"},
        }
    ]


class CaptchaFailed(AppError):
    """No token, or one the provider refused: 403 ``captcha_failed``."""

    status = 403
    error = ErrorCode.CAPTCHA_FAILED
    message = N_("Solve the CAPTCHA and try again.")


class CaptchaUnavailable(AppError):
    """The provider could not check the token: 503 ``captcha_unavailable``."""

    status = 503
    error = ErrorCode.CAPTCHA_UNAVAILABLE
    message = N_("The CAPTCHA cannot be checked right now; try again shortly.")

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def require_captcha(body_token: str | None) -> None:
    """Pass when no CAPTCHA is configured or the provider accepts the request's token; raise otherwise.

    ``body_token`` is the body's ``captcha_token``; without one, the ``X-Captcha-Token`` header's.
    """
    config = current_app.config
    if not config.get("CAPTCHA_PROVIDER"):
        return
    token = body_token or request.headers.get(HEADER, "").strip()
    if not token or len(token) > MAX_TOKEN_LENGTH or not re.fullmatch(TOKEN_PATTERN, token):
        raise CaptchaFailed()
    if not _verified(config, token, request.remote_addr):
        raise CaptchaFailed()


def _verified(config: Any, token: str, remote_ip: str | None) -> bool:
    """Ask siteverify; True when it says ``success``, False when it refuses the token."""
    provider = config["CAPTCHA_PROVIDER"]
    form = {"secret": config["CAPTCHA_SECRET"], "response": token}
    if remote_ip:
        form["remoteip"] = remote_ip
    try:
        response = _client().post(
            config["CAPTCHA_VERIFY_URL"], data=form, timeout=config["CAPTCHA_TIMEOUT_SECONDS"]
        )
    except httpx.HTTPError as error:
        log.warning("CAPTCHA: %s siteverify unreachable: %s", provider, type(error).__name__)
        raise CaptchaUnavailable() from None
    if response.status_code != 200:
        log.warning("CAPTCHA: %s siteverify answered HTTP %s", provider, response.status_code)
        raise CaptchaUnavailable()
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        log.warning("CAPTCHA: %s siteverify answered something other than a JSON object", provider)
        raise CaptchaUnavailable()
    if answer.get("success") is True:
        return True
    codes = answer.get("error-codes") or []
    if isinstance(codes, list) and _OUR_MISTAKES.intersection(str(code) for code in codes):
        log.error("CAPTCHA: %s refused CAPTCHA_SECRET (%s): check the secret key", provider, codes)
        raise CaptchaUnavailable()
    return False


_http: httpx.Client | None = None
_http_lock = threading.Lock()


def _client() -> httpx.Client:
    """This process's connection pool to the provider (made on first use, after gunicorn forks)."""
    global _http
    with _http_lock:
        if _http is None:
            _http = httpx.Client(follow_redirects=False)
        return _http
