"""One PromQL instant query sent with ``stats=all`` and timed: what the query-cost benchmarks
(query_cost.py, graph_query_cost.py, edge_rules.py) read of the server's own accounting."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class Measured:
    data: dict[str, Any]  # the answer's "data": result, stats
    eval_s: float  # the server's own evaluation time (NaN when it gives none)
    wall_s: float  # sent to read, as seen from here
    size: int  # bytes of the body

    @property
    def result(self) -> list[dict[str, Any]]:
        return list(self.data.get("result") or [])

    @property
    def samples(self) -> int:
        return int((self.data.get("stats") or {}).get("samples", {}).get("totalQueryableSamples", 0))


def timed_query(url: str, params: dict[str, str]) -> Measured:
    """GET ``url`` (a server's ``/api/v1/query``) with ``params`` and ``stats=all``."""
    began = time.perf_counter()
    answer = requests.get(url, params={**params, "stats": "all"}, timeout=300)
    wall = time.perf_counter() - began
    data = answer.json().get("data") or {}
    stats = data.get("stats") or {}
    return Measured(data, float(stats.get("timings", {}).get("evalTotalTime", float("nan"))), wall, len(answer.content))
