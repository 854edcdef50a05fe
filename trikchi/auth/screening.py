"""What a new password or address is screened against (SPEC §16): known breaches, throwaway domains.

**Breached passwords** (``PASSWORD_BREACH_CHECK=hibp``): Have I Been Pwned's range API, by
k-anonymity — only the first 5 hex characters of the password's SHA-1 leave the service, with
``Add-Padding: true`` so that the size of the answer tells an observer nothing either. The answer
lists ``SUFFIX:COUNT`` lines for that prefix; the padding lines have a count of 0 and are no
match. Answers are kept per prefix for ``PASSWORD_BREACH_CACHE_HOURS``: in Redis when the rate
limits are kept there (``RATELIMIT_STORAGE_URI``), else per worker process; a failed query is
never kept. When the API cannot be reached in ``PASSWORD_BREACH_TIMEOUT_SECONDS`` the password is
accepted and a warning logged, or refused with 503 under ``PASSWORD_BREACH_FAIL_CLOSED``.

**Throwaway addresses** (``BLOCK_DISPOSABLE_EMAILS``): ``trikchi.addresses.is_disposable``.
"""

from __future__ import annotations

import hashlib
import logging
import threading

import httpx
import redis
from cachetools import TTLCache
from flask import Flask, current_app

from trikchi.addresses import is_disposable
from trikchi.errors import ErrorCode, ServiceUnavailable, ValidationFailed
from trikchi.i18n import N_

log = logging.getLogger(__name__)

BREACHED = N_("This password has appeared in a data breach elsewhere; choose another one.")
UNCHECKED = N_("The password could not be checked just now; try again shortly.")
DISPOSABLE = N_("Addresses at throwaway mail services are not accepted; use an address you keep.")

PREFIX_LENGTH = 5
# A prefix's answer holds about 800-1,000 suffixes with padding, some 500 without: kept as one
# string of about 18 KB, so the per-process cache stays under 10 MB.
PROCESS_CACHE_PREFIXES = 512
_REDIS_KEY = "trikchi:hibp:"
_REDIS_SCHEMES = {"redis": "redis", "rediss": "rediss", "redis+unix": "unix"}
_KEY = "trikchi.screening"


class _Cache:
    """An app's kept answers: Redis when the rate limits live there, else this process's memory."""

    def __init__(self, app: Flask) -> None:
        self.seconds = app.config["PASSWORD_BREACH_CACHE_HOURS"] * 3600
        self.memory: TTLCache[str, str] = TTLCache(maxsize=PROCESS_CACHE_PREFIXES, ttl=self.seconds)
        self.lock = threading.Lock()  # TTLCache is not thread-safe (gunicorn's threaded workers)
        self.redis: redis.Redis | None = None
        scheme, separator, rest = app.config["RATELIMIT_STORAGE_URI"].partition("://")
        if separator and scheme in _REDIS_SCHEMES:
            self.redis = redis.Redis.from_url(
                f"{_REDIS_SCHEMES[scheme]}://{rest}", socket_timeout=0.5, socket_connect_timeout=0.5
            )

    def get(self, prefix: str) -> str | None:
        if self.redis is not None:
            try:
                value = self.redis.get(_REDIS_KEY + prefix)
            except redis.RedisError as error:
                log.warning("breached-password cache unavailable: %s", type(error).__name__)
                return None
            return value.decode() if isinstance(value, bytes) else None
        with self.lock:
            return self.memory.get(prefix)

    def put(self, prefix: str, suffixes: str) -> None:
        if self.redis is not None:
            try:
                self.redis.set(_REDIS_KEY + prefix, suffixes, ex=self.seconds)
            except redis.RedisError as error:
                log.warning("breached-password cache unavailable: %s", type(error).__name__)
            return
        with self.lock:
            self.memory[prefix] = suffixes


def init_app(app: Flask) -> None:
    """Give the app its cache of range answers (Redis or this process)."""
    app.extensions[_KEY] = _Cache(app)


def refuse_breached_password(password: str, field: str) -> None:
    """422 ``password_breached`` naming ``field`` when the check is on and finds ``password`` in a
    breach; 503 when the check cannot be made and fails closed; else nothing."""
    if current_app.config["PASSWORD_BREACH_CHECK"] != "hibp":  # noqa: S105 - a setting's value
        return
    found = is_breached(password)
    if found is None:
        if current_app.config["PASSWORD_BREACH_FAIL_CLOSED"]:
            raise ServiceUnavailable(UNCHECKED)
        log.warning("breached-password check unavailable: the password was accepted unchecked")
        return
    if found:
        raise ValidationFailed(BREACHED, errors={field: [BREACHED]}, error=ErrorCode.PASSWORD_BREACHED)


def is_breached(password: str) -> bool | None:
    """Whether ``password`` is in the range API's breached passwords; None when it cannot be asked."""
    # SHA-1 is what the range API is keyed by; it protects nothing here (5 characters leave).
    digest = hashlib.sha1(password.encode("utf-8")).hexdigest().upper()  # noqa: S324
    prefix, suffix = digest[:PREFIX_LENGTH], digest[PREFIX_LENGTH:]
    cache: _Cache = current_app.extensions[_KEY]
    suffixes = cache.get(prefix)
    if suffixes is None:
        suffixes = _query(prefix)
        if suffixes is None:
            return None
        cache.put(prefix, suffixes)
    return f"\n{suffix}\n" in suffixes


def _query(prefix: str) -> str | None:
    """The breached suffixes of ``prefix`` (``\\n``-separated, padding left out), or None."""
    config = current_app.config
    try:
        response = httpx.get(
            f"{config['HIBP_RANGE_URL']}/{prefix}",
            headers={"Add-Padding": "true", "User-Agent": "trikchi"},
            timeout=config["PASSWORD_BREACH_TIMEOUT_SECONDS"],
            follow_redirects=False,
        )
    except httpx.HTTPError as error:
        log.warning("breached-password range query failed: %s", type(error).__name__)
        return None
    if response.status_code != 200:
        log.warning("breached-password range query failed: HTTP %s", response.status_code)
        return None
    return _breached_suffixes(response.text)


def _breached_suffixes(body: str) -> str:
    """The suffixes of a range answer with a count above 0 (padding lines have 0), one per line."""
    found: list[str] = []
    for line in body.splitlines():
        suffix, _, count = line.strip().partition(":")
        if count.strip().isdigit() and int(count) > 0:
            found.append(suffix.upper())
    return "\n" + "\n".join(found) + "\n"


def refuse_disposable_email(address: str, field: str) -> None:
    """422 ``disposable_email`` naming ``field`` when ``address`` is at a throwaway domain and
    ``BLOCK_DISPOSABLE_EMAILS`` is on."""
    if current_app.config["BLOCK_DISPOSABLE_EMAILS"] and is_disposable(address):
        raise ValidationFailed(DISPOSABLE, errors={field: [DISPOSABLE]}, error=ErrorCode.DISPOSABLE_EMAIL)
