"""Links from a trace id to the UI that shows the whole trace (Jaeger, X-Ray), when known.

Pure: the base URL and region come from the configuration (live) or a bundle's recorded,
credential-free configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# X-Ray ids: "1-" + 8 hex digits of epoch seconds + "-" + 24 hex digits.
XRAY_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")


@dataclass(frozen=True)
class TraceLinks:
    """``jaeger``: the Jaeger query base URL; ``xray_region``: the AWS region of X-Ray."""

    jaeger: str | None = None
    xray_region: str | None = None

    @classmethod
    def of(cls, config: dict[str, Any]) -> TraceLinks:
        sources = config.get("sources") if isinstance(config, dict) else None
        sources = sources if isinstance(sources, dict) else {}
        jaeger = (sources.get("jaeger") or {}).get("url")
        xray = sources.get("xray") or {}
        # A URL carrying user:password must never be printed; such a link is not offered.
        if isinstance(jaeger, str) and "@" in (urlsplit(jaeger).netloc or ""):
            jaeger = None
        return cls(jaeger.rstrip("/") if isinstance(jaeger, str) and jaeger else None,
                   xray.get("region") if isinstance(xray.get("region"), str) else None)

    def url(self, trace_id: str) -> str | None:
        """The trace in its UI, or None when the source's address is not known."""
        if XRAY_ID.match(trace_id):
            if not self.xray_region:
                return None
            r = self.xray_region
            return f"https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}#xray:traces/{trace_id}"
        if not self.jaeger:
            return None
        parts = urlsplit(self.jaeger)
        # The UI serves /trace/ID under the same base path as the query API (/jaeger/...).
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + f"/trace/{trace_id}", "", ""))
