"""Prometheus metrics: whether they are kept and who may scrape them (SPEC §11)."""

from __future__ import annotations

import ipaddress
from typing import Any

from trikchi.settings.base import Flag, Items, Section


class Networks(Items):
    """IP addresses or networks."""

    def check_item(self, item: str, raw: str, default: Any) -> None:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise self.refuse(
                raw, default, f"comma-separated addresses or networks ({item!r} is neither)"
            ) from None


class Metrics(Section):
    """``/metrics`` in Prometheus's text format, summed over gunicorn's workers."""

    title = "Metrics"

    METRICS_ENABLED = Flag(True, "count requests and serve `/metrics`")
    METRICS_ALLOWED_IPS = Networks(
        ["127.0.0.1", "::1"],
        "comma-separated addresses or networks that may scrape `/metrics` (after `TRUSTED_PROXY_HOPS`);"
        " others get 404",
    )
