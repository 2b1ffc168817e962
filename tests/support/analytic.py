"""A stand-in for a Prometheus server answering the analytic results of a demo's traffic.

It answers exactly the queries the demo's RawSource recorded (keyed by query text and range
start: the sparkline and the history p99 queries read alike, over different spans), and a
history query narrowed to some services (``diagnose --all`` narrows it to what fails now) with
the demo's unnarrowed history answer: a superset, enough for tests that count or time queries.
The mesh-wide heavy queries' census probe (collectors/prometheus/heavy.py) is answered from the
p50 answer (every quantile series stands for ``BUCKETS`` bucket series, ``census_scale`` times),
and a heavy query split into shards with the whole query's answer filtered by the shard's
matchers, as a real engine would select them.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from meshobs.raw import RawSource

BUCKETS = 20
_CENSUS = "count by (destination_service_namespace, destination_service_name) ("
# A shard's matchers, as heavy.py writes them into the whole query's selector.
_SHARD = re.compile(r',?(destination_service_namespace=~?"(?:[^"\\]|\\.)*"'
                    r'(?:,destination_service_name=~"(?:[^"\\]|\\.)*")?)')
_MATCHER = re.compile(r'(\w+)(=~|=)"((?:[^"\\]|\\.)*)"')


class Answers:
    def __init__(self, raw: RawSource, extra: dict[str, object] | None = None, census_scale: int = 1) -> None:
        """``extra``: answers (data) to instant queries the demo does not record, by query text."""
        self.census_scale = census_scale
        self.exact = {(p.params["query"], _start(p.params.get("start"))): json.loads(p.body or "")
                      for p in raw.payloads}
        self.exact.update({(query, 0.0): data for query, data in (extra or {}).items()})
        self.history = {p.key.split(":", 1)[1]: json.loads(p.body or "")
                        for p in raw.payloads if p.key.startswith("history:")}
        self.span = {_start(p.params.get("end")) - _start(p.params.get("start"))
                     for p in raw.payloads if p.key.startswith("history:")}

    def _census(self) -> object | None:
        p50 = next((v for (q, _), v in self.exact.items() if q.startswith("histogram_quantile(0.5,")), None)
        return None if p50 is None else _census_of(p50, self.census_scale)

    def __call__(self, path: str) -> object | None:
        """The data of the answer to ``path`` (None: a query the demo cannot answer)."""
        params = parse_qs(urlsplit(path).query)
        query, start = params["query"][0], _start(params.get("start", [None])[0])
        if query.startswith(_CENSUS):
            return self._census()
        if (shard := _SHARD.search(query)) is not None and "histogram_quantile" in query:
            whole = query.replace(shard.group(0), "").replace("{}", "")
            data = self.exact.get((whole, start))
            if not isinstance(data, dict):
                return None
            wanted = _MATCHER.findall(shard.group(1))
            return {**data, "result": [s for s in data["result"] if _selects(wanted, s["metric"])]}
        if (query, start) in self.exact:
            return self.exact[(query, start)]
        end = _start(params.get("end", [None])[0])
        if start and end and (end - start) in self.span:
            name = ("latency_p99" if query.startswith("histogram_quantile") else
                    "errors" if "response_code" in query else "requests")
            return self.history.get(name)
        return None


def _census_of(answer: Any, scale: int) -> dict[str, Any]:
    counts: dict[tuple[str, str], int] = {}
    for s in answer["result"]:
        key = (s["metric"].get("destination_service_namespace", ""), s["metric"].get("destination_service_name", ""))
        counts[key] = counts.get(key, 0) + BUCKETS * scale
    return {"resultType": "vector", "result": [
        {"metric": {"destination_service_namespace": ns, "destination_service_name": name}, "value": [0, str(n)]}
        for (ns, name), n in sorted(counts.items())]}


def _start(value: object) -> float:
    return float(value) if value not in (None, "") else 0.0  # type: ignore[arg-type]


def _selects(matchers: list[tuple[str, str, str]], labels: dict[str, str]) -> bool:
    for name, op, text in matchers:
        value = text.replace('\\"', '"').replace("\\\\", "\\")
        have = labels.get(name, "")
        if not (re.fullmatch(value, have) if op == "=~" else have == value):
            return False
    return True
