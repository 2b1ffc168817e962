"""A stand-in for a Prometheus server answering the analytic results of a demo's traffic.

It answers exactly the queries the demo's RawSource recorded (keyed by query text and range
start: the sparkline and the history p99 queries read alike, over different spans), and a
history query narrowed to some services (``diagnose --all`` narrows it to what fails now) with
the demo's unnarrowed history answer: a superset, enough for tests that count or time queries.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from meshobs.raw import RawSource


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
