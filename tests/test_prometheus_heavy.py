"""The mesh-wide heavy queries on a mesh too big for them whole (collectors/prometheus/heavy.py):
split into shards they give the same answers; on a server too slow for them, the run gives up
on them early, within its deadline, and only the latency checks say why."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

from meshobs.assemble import assemble
from meshobs.collect import GRACE_S
from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext
from meshobs.collectors.prometheus.heavy import BUCKETS, census
from meshobs.collectors.promql import LATENCY_QUERIES, QUERIES
from meshobs.engine import diagnose
from meshobs.model import SourceState
from tests.support.loopback import LoopbackServer
from tests.test_prometheus_partial import CTX, TRAFFIC, WINDOW, T, _collector, analytic_server

SERVICES = len({(e.destination_namespace, e.destination_service) for e in TRAFFIC})


def _instant_queries(srv: LoopbackServer) -> list[str]:
    """The PromQL of every instant query the server was sent, in order."""
    return [parse_qs(urlsplit(path).query)["query"][0] for _method, path, _headers in srv.requests
            if urlsplit(path).path == "/api/v1/query"]


def _latency(raw: object) -> dict[tuple[str, str, str], object]:
    part = prom.normalize(raw, CTX)  # type: ignore[arg-type]
    return {(str(e.source), str(e.destination), e.protocol): e.latency for e in part.edges}


def test_census_packs_namespaces_and_splits_a_big_one_by_service() -> None:
    # The request rates' answer: one series per edge, code, ...; each stands for 10 bucket series here.
    result = [{"metric": {"destination_service_namespace": ns, "destination_service_name": name,
                          "response_code": str(i)}, "value": [0, "1.5"]}
              for ns, name, n in (("a", "x", 4), ("a", "y", 4), ("b", "z", 3), ("c", "w", 3),
                                  ("big", "p", 6), ("big", "q", 6)) for i in range(n)]
    found = census(result, limit=100, buckets=10)
    assert (found.series, found.services) == (260, 6)
    # "big" (120) is over a shard: one shard per service; a (80), b and c (30 each) packed into two.
    assert sorted(s.series for s in found.shards) == [60, 60, 60, 80]
    assert sum(s.series for s in found.shards) == found.series
    assert sorted(s.matchers for s in found.shards if "big" in s.matchers) == [
        'destination_service_namespace="big",destination_service_name=~"p"',
        'destination_service_namespace="big",destination_service_name=~"q"']
    whole = census(result, limit=260, buckets=10).shards  # small enough: whole, as before
    assert [(s.matchers, s.series) for s in whole] == [("", 260)]


def test_split_heavy_queries_answer_what_the_whole_ones_do() -> None:
    with analytic_server() as srv:
        collector, config = _collector(srv.url)
        (whole,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
        sent_whole = len(srv.requests)
        collector.shard_series = 3 * BUCKETS  # a few services' bucket series per shard
        (split,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
        sent_split = len(srv.requests) - sent_whole
    shards = split.meta["heavy"]["shards"]
    assert shards > 2 and whole.meta["heavy"]["shards"] == 1
    # Each heavy query (three quantiles and the p99 sparkline) became one query per shard (the
    # recording-rules check is not repeated for the same evaluation time).
    assert sent_split == sent_whole - 1 + 4 * (shards - 1)
    assert [p.key for p in split.payloads] == [p.key for p in whole.payloads if p.key != "rules"]
    for name in LATENCY_QUERIES:
        merged, one = split.get(f"query:{name}"), whole.get(f"query:{name}")
        assert merged is not None and one is not None and merged.ok
        assert len(merged.meta["shards"]) == shards
        key = lambda s: json.dumps(s["metric"], sort_keys=True)  # noqa: E731
        assert sorted(json.loads(merged.body or "")["result"], key=key) == \
            sorted(json.loads(one.body or "")["result"], key=key)
    assert _latency(split) == _latency(whole)
    assert all(e is not None for e in _latency(split).values() if e is not None) and any(_latency(split).values())


def test_a_server_too_slow_for_the_quantiles_is_given_up_on_within_the_deadline() -> None:
    # Every quantile shard takes 1 s: after the first wave the pace says the rest needs far more
    # than the 3 s the run has left, so nothing more is sent.
    deadline_s = 4.0
    with analytic_server(slow={"histogram_quantile": 1.0}) as srv:
        collector, config = _collector(srv.url, timeout="5s")
        collector.shard_series = BUCKETS  # one edge's bucket series per shard: many shards
        start = time.monotonic()
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config,  # type: ignore[arg-type]
                                              deadline=start + deadline_s))
        took = time.monotonic() - start
        quantiles_sent = sum(1 for r in srv.requests if "histogram_quantile" in r[1])
    found = raw.meta["heavy"]
    assert found["shards"] >= 5
    # Within the deadline, as the orchestrator holds a collector to it (its grace for the
    # "timed out" payloads to be handed in): ~2 s idle, the shards in flight when it gave up
    # answering; on a loaded machine those are cut at the deadline itself (their timeout is the
    # time left), and a bound at the deadline exactly failed by the bookkeeping after it.
    assert took < deadline_s + GRACE_S, took
    assert quantiles_sent < 3 * found["shards"]  # gave up early: the rest never sent
    for name in LATENCY_QUERIES:
        payload = raw.get(f"query:{name}")
        assert payload is not None and not payload.ok and payload.meta["whole_reason"]
    # Every other query answered and is used.
    heavy = {f"query:{n}" for n in LATENCY_QUERIES} | {"range:latency_p99"}
    assert all(p.ok for p in raw.payloads if p.key not in heavy)

    part = prom.normalize(raw, CTX)
    (status,) = part.sources
    assert status.state is SourceState.ERROR
    assert status.inputs["requests"] is None and status.inputs["graph"] is None
    reason = status.inputs["latency"]
    assert reason is not None
    # Said once, with the numbers: the services and bucket series the quantiles would read.
    assert f"latency for {found['services']} services" in reason and f"over {found['series']} series" in reason
    assert reason.count("latency for") == 1
    assert "config/prometheus-recording-rules.yaml" in reason

    snapshot = assemble(part, time=T, window_s=WINDOW)
    target = next(e.destination for e in part.edges if e.protocol == "http")
    checks = {c.id: c for c in diagnose(snapshot, target).checks}
    assert checks["traffic.latency"].status == "skipped" and checks["traffic.latency"].could_not_check
    assert f"latency for {found['services']} services" in checks["traffic.latency"].reason
    for still_judged in ("traffic.error_rate", "traffic.circuit_breaker"):
        assert checks[still_judged].status != "skipped", checks[still_judged].reason


def test_a_failed_shard_costs_the_whole_latency_and_stops_the_rest() -> None:
    # p99's shards time out (their server limit): a partial quantile would judge some services
    # and skip the others, so no more quantile shards are sent; the cheap queries still answer.
    # The server gives up at once and the collector has its default timeout: a shard that slept
    # past a 0.5 s timeout made the cheap queries race that same 0.5 s, and on a loaded machine
    # one of them lost now and then (the client's own timeout is test_prometheus_partial's).
    # One query at a time: the plan's order, so what was not sent after the failure is exact.
    p99_shard = "histogram_quantile(0.99, sum by (le, reporter"
    with analytic_server(gives_up=(p99_shard,)) as srv:
        collector, config = _collector(srv.url, concurrency=1)
        collector.shard_series = 4 * BUCKETS
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
        quantiles = [q for q in _instant_queries(srv) if q.startswith("histogram_quantile(")]
    # The first p99 shard failed and was the last quantile shard sent: the rest were not.
    assert raw.meta["heavy"]["shards"] > 1
    assert p99_shard in quantiles[-1] and sum(p99_shard in q for q in quantiles) == 1, quantiles
    p99 = raw.get("query:latency_p99")
    assert p99 is not None and not p99.ok and "timed out" in (p99.error or "")
    # Every quantile is lost, those whose first shards had answered too: none judges in part.
    assert not any(p.ok for p in raw.payloads if p.key in {f"query:{n}" for n in LATENCY_QUERIES})
    # (the p99 history is as slow here: it times out on its own)
    heavy = {f"query:{n}" for n in LATENCY_QUERIES} | {"range:latency_p99", "history:latency_p99"}
    assert all(p.ok for p in raw.payloads if p.key not in heavy)
    assert QUERIES["latency_p99"].quantile == 0.99
    (status,) = prom.normalize(raw, CTX).sources
    assert status.inputs["graph"] is None and "timed out" in (status.inputs["latency"] or "")
