"""A stand-in for a Prometheus server answering the analytic results of a demo's traffic.

It answers exactly the queries the demo's RawSource recorded (keyed by query text and range
start: the sparkline and the history p99 queries read alike, over different spans), and a
history query narrowed to some services (``diagnose --all`` narrows it to what fails now) with
the demo's unnarrowed history answer: a superset, enough for tests that count or time queries.
A mesh-wide heavy query split into shards (collectors/prometheus/heavy.py) is answered with the
whole query's answer filtered by the shard's matchers, as a real engine would select them.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from meshobs.raw import RawSource

# A shard's matchers, as heavy.py writes them into the whole query's selector.
_SHARD = re.compile(r',?(destination_service_namespace=~?"(?:[^"\\]|\\.)*"'
                    r'(?:,destination_service_name=~"(?:[^"\\]|\\.)*")?)')
_MATCHER = re.compile(r'(\w+)(=~|=)"((?:[^"\\]|\\.)*)"')


class Answers:
    def __init__(self, raw: RawSource, extra: dict[str, object] | None = None) -> None:
        """``extra``: answers (data) to instant queries the demo does not record, by query text."""
        self.exact = {(p.params["query"], _start(p.params.get("start"))): json.loads(p.body or "")
                      for p in raw.payloads}
        self.exact.update({(query, 0.0): data for query, data in (extra or {}).items()})
        self.history = {p.key.split(":", 1)[1]: json.loads(p.body or "")
                        for p in raw.payloads if p.key.startswith("history:")}
        self.span = {_start(p.params.get("end")) - _start(p.params.get("start"))
                     for p in raw.payloads if p.key.startswith("history:")}

    def __call__(self, path: str) -> object | None:
        """The data of the answer to ``path`` (None: a query the demo cannot answer)."""
        params = parse_qs(urlsplit(path).query)
        query, start = params["query"][0], _start(params.get("start", [None])[0])
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


def _start(value: object) -> float:
    return float(value) if value not in (None, "") else 0.0  # type: ignore[arg-type]


def _selects(matchers: list[tuple[str, str, str]], labels: dict[str, str]) -> bool:
    for name, op, text in matchers:
        value = text.replace('\\"', '"').replace("\\\\", "\\")
        have = labels.get(name, "")
        if not (re.fullmatch(value, have) if op == "=~" else have == value):
            return False
    return True
