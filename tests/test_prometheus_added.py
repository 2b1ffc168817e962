"""A scoped question's second phase continues the graph phase's reading of the Prometheus
answers (normalize_added) instead of reading the mesh-wide series again: same result."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import NormalizeContext
from meshobs.demo.prometheus import prometheus_source
from meshobs.demo.scale import generated_traffic
from meshobs.raw import Payload, RawSource

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CTX = NormalizeContext(time=T, window_s=300.0)


def _phases(n_services: int, narrow: bool = False, hide: bool = False) -> tuple[RawSource, RawSource, int]:
    """The graph phase's source and the merged one (graph payloads first), as collect has them.
    ``narrow``: the scoped instant answers keep the series into half the services only.
    ``hide``: a TCP service only the scoped answers name (its tcp_sent series are left out)."""
    whole = prometheus_source(generated_traffic(n_services), T, 300.0, history=True)
    graph = [p for p in whole.payloads if p.key == "rules" or p.meta.get("phase") == "graph"]
    scoped = [p for p in whole.payloads if p not in graph]
    sent = next(p for p in graph if p.key == "query:tcp_sent")
    assert sent.body is not None
    if hide:
        body = json.loads(sent.body)
        gone = body["result"][0]["metric"]["destination_service_name"]
        body["result"] = [r for r in body["result"] if r["metric"]["destination_service_name"] != gone]
        sent.body = json.dumps(body)
    for p in scoped if narrow else ():
        if p.key.startswith("query:") and p.body is not None:
            body = json.loads(p.body)
            body["result"] = body["result"][: len(body["result"]) // 2]
            p.body = json.dumps(body)
    assert len(graph) == 3 and scoped  # rules, requests, tcp_sent
    return (RawSource("prometheus", "prometheus", list(graph), dict(whole.meta)),
            RawSource("prometheus", "prometheus", graph + scoped, dict(whole.meta)), len(graph))


@pytest.mark.parametrize(("n_services", "narrow", "hide"), [(10, False, False), (60, False, True), (60, True, False)])
def test_the_added_answers_give_what_reading_everything_gives(n_services: int, narrow: bool, hide: bool) -> None:
    graph, merged, known = _phases(n_services, narrow, hide)
    earlier = prom.normalize(graph, CTX)
    added = prom.normalize_added(merged, earlier, known, CTX)
    whole = prom.normalize(merged, CTX)
    assert added is not None
    assert added == whole
    assert any(e.latency is not None for e in added.edges)  # the scoped answers are in it
    assert any(e.tcp_received_bytes_rate for e in added.edges)
    if narrow:  # the edges no added series touched are the graph phase's own objects
        assert {id(e) for e in added.edges} & {id(e) for e in earlier.edges}
    # New edges (and their nodes) only where the scoped answers name a service the graph lacked.
    assert (len(added.edges) > len(earlier.edges)) is hide
    assert (len(added.services) > len(earlier.services)) is hide
    if not hide:  # the same nodes: the graph phase's, not made again
        assert added.services[0] is earlier.services[0] and added.workloads[0] is earlier.workloads[0]
    # Continued once: the same earlier part again reads everything.
    assert prom.normalize_added(merged, earlier, known, CTX) is None


def test_a_failed_added_query_is_reported_as_reading_everything_reports_it() -> None:
    graph, merged, known = _phases(10)
    failed = merged.get("query:latency_p90")
    assert failed is not None
    failed.body, failed.status, failed.error = None, None, "query latency_p90 timed out after 10 s"
    added = prom.normalize_added(merged, prom.normalize(graph, CTX), known, CTX)
    assert added is not None and added == prom.normalize(merged, CTX)
    assert "latency_p90" in added.sources[0].message


def test_a_latency_series_naming_a_tcp_edge_reads_everything_again() -> None:
    """Read after tcp_sent, such a series could find its edge made by tcp_sent instead of
    making it: the order matters, so normalize_added declines."""
    graph, merged, known = _phases(10)
    p50 = merged.get("query:latency_p50")
    assert p50 is not None and p50.body is not None
    body = json.loads(p50.body)
    body["result"][0]["metric"]["request_protocol"] = "tcp"
    p50.body = json.dumps(body)
    assert prom.normalize_added(merged, prom.normalize(graph, CTX), known, CTX) is None


def test_only_a_graph_phase_reading_is_continued() -> None:
    """A replay or a mesh-wide run reads both phases' answers at once: nothing is kept for later."""
    _graph, merged, known = _phases(10)
    assert prom.normalize_added(merged, prom.normalize(merged, CTX), known, CTX) is None
    more = RawSource("prometheus", "prometheus", [*merged.payloads, Payload(key="query:extra", body="[]")])
    assert prom.normalize_added(more, prom.normalize(merged, CTX), len(merged.payloads), CTX) is None


def test_an_answer_decoded_by_the_client_is_read_once_as_is_then_from_its_text() -> None:
    answer = {"resultType": "vector", "result": []}
    payload = Payload(key="query:requests", body=json.dumps(answer), status=200, decoded=answer)
    assert payload.json() is answer
    assert payload.json() == answer and payload.json() is not answer  # parsed from the body now
    raw = RawSource("prometheus", "prometheus", [Payload(key="q", body="[]", decoded=[])])
    raw.drop_bodies()
    assert raw.payloads[0].decoded is None and raw.payloads[0].body is None


def test_a_scoped_bucket_answer_is_continued_with_what_reading_everything_gives() -> None:
    """A scoped question's latency is one bucket answer (LATENCY_BUCKETS, key "query:latency"),
    which normalize reads last: continuing the graph phase's reading gives the same part."""
    from meshobs.collectors.promql import LATENCY_BUCKETS
    from meshobs.demo.prometheus import _evaluate, _metrics, _value

    graph, merged, known = _phases(10)
    flat: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family, _kind, labels, samples in _metrics(generated_traffic(10)):
        for suffix, extra, rate in samples:
            flat.setdefault(family + suffix, []).append(({**labels, **extra}, rate))
    ts = int(T.timestamp())
    buckets = [{"metric": m, "value": [ts, _value(v)]} for m, v in _evaluate(LATENCY_BUCKETS, flat)]
    quantiles = {f"query:{n}" for n in ("latency_p50", "latency_p90", "latency_p99")}
    payloads = [p for p in merged.payloads if p.key not in quantiles]
    payloads.append(Payload(key="query:latency", status=200, url="demo/api/v1/query", meta={"phase": "scoped"},
                            body=json.dumps({"resultType": "vector", "result": buckets})))
    scoped = RawSource("prometheus", "prometheus", payloads, dict(merged.meta))
    added = prom.normalize_added(scoped, prom.normalize(graph, CTX), known, CTX)
    assert added is not None
    assert added == prom.normalize(scoped, CTX)
    assert any(e.latency is not None for e in added.edges)
