"""Names shared by fetching and normalising Prometheus answers."""

from __future__ import annotations

KIND = "prometheus"
UNKNOWN = "unknown"  # what Istio puts in a label it could not fill
