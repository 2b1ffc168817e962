"""No data is not health: Prometheus stopped scraping before the window."""

from __future__ import annotations

from ..author import Mesh
from ..expect import Expectation
from ..scenario import Scenario


def empty_window() -> Scenario:
    """Weather forecasts: Prometheus lost its targets 25 minutes ago, so the 5-minute window holds
    no sample at all; the proxies and the API server answer."""
    m = Mesh("empty-window",
             "No data: Prometheus has no sample in the window (scrapes stopped 25 min ago)",
             "no known fault, and no way to know: Prometheus stopped scraping 25 minutes before the "
             "scenario time, so every query over the 5-minute window returns nothing; the traffic checks "
             "cannot judge and must say so (could not check), never 'healthy'")
    m.namespace("forecast")
    api = m.workload("forecast", "forecast-api", "v4", replicas=2)
    radar = m.workload("forecast", "radar-tiles", "v2")
    m.call(api, radar, 22.0, 30.0, 140.0)
    m.metrics_end_s_ago = 1500.0
    return m.build(Expectation("no-data", target="forecast/forecast-api",
                               unchecked=("traffic.error_rate", "traffic.latency")))
