"""The Prometheus collector's queries one by one: a slow query costs only its own data, the run
ends by its deadline, the two phases of a scoped question, and the neighbourhood's matchers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from meshobs.assemble import assemble
from meshobs.callgraph import failed
from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.collectors.prometheus import fetch as prom_fetch
from meshobs.collectors.promql import (
    CONTROL_PLANE,
    GRAPH_QUERIES,
    HISTORY_QUERIES,
    LATENCY_QUERIES,
    QUERIES,
    RANGE_QUERIES,
    control_plane_query,
    recorded_names,
    render,
    scope_matchers,
)
from meshobs.config import validate
from meshobs.demo.prometheus import graph_answers, prometheus_source
from meshobs.demo.scale import generated_traffic
from meshobs.engine import diagnose
from meshobs.model import Edge, ServiceRef, SourceState, WorkloadRef
from meshobs.model.traffic import NOT_FAILED
from meshobs.raw import RawSource
from tests.support.analytic import Answers
from tests.support.loopback import LoopbackServer

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = 300.0
CTX = NormalizeContext(time=T, window_s=WINDOW)
TRAFFIC = generated_traffic(12, seed=3)


@contextmanager
def analytic_server(slow: dict[str, float] | None = None, gives_up: tuple[str, ...] = ()) -> Iterator[LoopbackServer]:
    """A loopback Prometheus answering the analytic results of TRAFFIC, query by query;
    ``slow`` delays the queries whose PromQL contains a key by that many seconds; those that
    contain one of ``gives_up`` get, at once, what Prometheus answers a query that outlasts its
    ``timeout`` parameter (a query the server gives up on, with no wall-clock race in the test)."""
    known = Answers(prometheus_source(TRAFFIC, T, WINDOW, history=True),
                    extra={control_plane_query("5m"): {"resultType": "vector", "result": []},  # no istiod scraped
                           **graph_answers(TRAFFIC, T, WINDOW)})

    def answer(path: str, _headers: dict[str, str]) -> tuple[int, str]:
        query = parse_qs(urlsplit(path).query)["query"][0]
        if any(needle in query for needle in gives_up):
            return 503, json.dumps({"status": "error", "errorType": "timeout",
                                    "error": "query timed out in expression evaluation"})
        for needle, delay in (slow or {}).items():
            if needle in query:
                time.sleep(delay)
        data = known(path)
        if data is None:
            return 400, json.dumps({"status": "error", "errorType": "bad_data", "error": "unexpected"})
        return 200, json.dumps({"status": "success", "data": data})

    with LoopbackServer() as srv:
        srv.route("/api/v1/query", handler=answer)
        srv.route("/api/v1/query_range", handler=answer)
        yield srv


def _collector(url: str, **section: object) -> tuple[prom.PrometheusCollector, object]:
    config = validate({"sources": {"prometheus": {"url": url, **section}}})
    collector = prom.from_config(config, [])
    assert collector is not None
    return collector, config


def test_a_timed_out_query_costs_only_the_checks_that_need_it() -> None:
    # Mesh-wide, the heavy queries (three quantiles, the p99 sparkline) share the server: three
    # at a time (one worker kept for the others), each with three per-query timeouts (3 s). The
    # per-query timeout leaves the loopback server's other answers room on a busy CI machine: at
    # 500 ms one of them once ran past it too, and after two silent queries the rest are not sent.
    with analytic_server(slow={"histogram_quantile(0.99, sum by (le, reporter": 8.0}) as srv:
        collector, config = _collector(srv.url, timeout="1s")
        start = time.monotonic()
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config,  # type: ignore[arg-type]
                                              deadline=time.monotonic() + 14.0))
        took = time.monotonic() - start
    p99 = raw.get("query:latency_p99")
    assert p99 is not None and p99.meta["timed_out"] == 3.0
    # Every other query was sent and answered, although one before it had timed out.
    assert all(p.ok for p in raw.payloads if p.key != "query:latency_p99")
    # and the history of the one service whose requests fail, narrowed to it.
    assert len(srv.requests) == 1 + len(QUERIES) + 1 + len(RANGE_QUERIES) + len(HISTORY_QUERIES)
    assert took < 7.0  # the slow query gave up after its 3 s, it did not hold the run for 8 s

    part = prom.normalize(raw, CTX)
    (status,) = part.sources
    assert status.state is SourceState.ERROR
    assert status.inputs["requests"] is None and status.inputs["graph"] is None
    assert status.inputs["control_plane"] is None  # istiod's metrics answered (empty): delivered
    assert "latency_p99" in status.inputs["latency"] and "timed out after 3 s" in status.inputs["latency"]
    assert len(part.edges) == len(TRAFFIC) and all(e.latency is None for e in part.edges)

    snapshot = assemble(part, time=T, window_s=WINDOW)
    target = next(e.destination for e in part.edges if e.protocol == "http")
    report = diagnose(snapshot, target)
    checks = {c.id: c for c in report.checks}
    assert checks["traffic.latency"].status == "skipped"
    assert "latency_p99" in checks["traffic.latency"].reason
    for still_judged in ("traffic.error_rate", "traffic.circuit_breaker"):
        assert checks[still_judged].status != "skipped", checks[still_judged].reason
    assert report.status != "unknown"  # the source answered, in part


def test_the_run_ends_by_its_deadline() -> None:
    with analytic_server(slow={"": 0.4}) as srv:
        collector, config = _collector(srv.url, timeout="5s", concurrency=1)
        start = time.monotonic()
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config,  # type: ignore[arg-type]
                                              deadline=start + 1.0))
        took = time.monotonic() - start
    assert took < 1.5
    not_sent = [p for p in raw.payloads if (p.error or "").startswith("not sent: the run's deadline")]
    answered = [p for p in raw.payloads if p.ok]
    assert answered and not_sent
    assert len(srv.requests) < len(raw.payloads)


def test_refused_connection_stops_sending() -> None:
    from tests.support.loopback import unused_port

    collector, config = _collector(f"http://127.0.0.1:{unused_port()}")
    (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
    first, *rest = raw.payloads
    assert first.meta["unreachable"] and "refused" in (first.error or "")
    assert rest and all((p.error or "").startswith("not sent: ") for p in rest)


def _keys(raw: RawSource) -> list[str]:
    return [p.key for p in raw.payloads]


def _edge_key(e: Edge) -> tuple[object, ...]:
    return (e.source, e.source_service, e.destination, e.destination_workload, e.protocol)


def test_graph_then_scoped_phase_equals_one_collection() -> None:
    with analytic_server() as srv:
        collector, config = _collector(srv.url)
        (graph,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config, phase="graph"))  # type: ignore[arg-type]
        sent_graph = len(srv.requests)
        (scoped,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config, phase="scoped"))  # type: ignore[arg-type]
        sent_scoped = len(srv.requests) - sent_graph
        (whole,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
    # The graph phase reads who calls whom only (the edge keys); the scoped phase never repeats
    # the recording-rules check (the collector remembers it for the evaluation time) and reads
    # every query of a snapshot, the request rates included.
    graph_queries = [f"query:{q.name}" for q in GRAPH_QUERIES.values()]
    assert graph_queries == ["query:edges", "query:tcp_edges", "query:failing", "query:tcp_failing"]
    assert _keys(graph) == ["rules", *graph_queries] and sent_graph == 1 + len(graph_queries)
    assert not set(graph_queries) & set(_keys(scoped)) and "rules" not in _keys(scoped)
    assert {f"query:{n}" for n in QUERIES} <= set(_keys(scoped))
    assert set(graph_queries).isdisjoint(_keys(whole))  # a mesh-wide run reads the full queries
    # With the control-plane query (istiod's metrics, asked in the scoped phase); without a
    # neighbourhood the history has nothing to be narrowed to: not sent, and why.
    assert sent_scoped == len(QUERIES) + 1 + len(RANGE_QUERIES)
    assert scoped.meta["history"]["skipped"] == "no traffic graph to take the service's neighbourhood from"

    # The graph phase's snapshot: the same edges as a whole collection (what the neighbourhood
    # is computed from), their requests counted with the outcome unknown, except that the
    # failed ones (5xx, no response, 401/403) carry their codes, on the same edges as in a
    # whole collection: the rest is known not to have failed.
    only_graph, full = prom.normalize(graph, CTX), prom.normalize(whole, CTX)
    (status,) = only_graph.sources
    assert status.state is SourceState.OK and "not collected" in status.inputs["latency"]
    assert {_edge_key(e) for e in only_graph.edges} == {_edge_key(e) for e in full.edges}
    assert all(e.latency is None for e in only_graph.edges)

    def failures(e: Edge) -> set[str]:
        return {r.code for r in (*e.responses, *e.destination_responses) if failed(r) and r.rate > 0}

    whole_edges = {_edge_key(e): e for e in full.edges}
    assert {_edge_key(e): failures(e) for e in only_graph.edges} == {k: failures(e) for k, e in whole_edges.items()}
    assert any(failures(e) for e in only_graph.edges)
    assert {r.code for e in only_graph.edges for r in e.responses if not failed(r)} == {NOT_FAILED}
    assert all(e.responses for e in only_graph.edges if e.protocol == "tcp")  # known: none refused
    # Without the failed calls' answer the outcome stays unknown (the neighbourhood then reads
    # every caller's proxy whole); without the edges' answer the failed calls alone are no graph.
    for missing, check in (("query:failing", lambda es: {r.code for e in es if e.protocol != "tcp"
                                                          for r in e.responses} == {"unknown"}),
                           ("query:edges", lambda es: all(e.protocol == "tcp" for e in es) and es)):
        part = prom.normalize(RawSource(name=graph.name, kind=graph.kind, meta=dict(graph.meta),
                                        payloads=[p for p in graph.payloads if p.key != missing]), CTX)
        assert check(part.edges), missing

    graph.payloads.extend(scoped.payloads)  # what the orchestrator does, with the meta it lacks
    graph.meta.update({k: v for k, v in scoped.meta.items() if k not in graph.meta})
    merged = prom.normalize(graph, CTX)
    assert sorted(merged.edges, key=repr) == sorted(full.edges, key=repr)
    assert merged.series == full.series and full.sources[0].inputs == {}
    assert {k: v for k, v in merged.sources[0].inputs.items() if v is not None} == {
        "history": "history not read: no traffic graph to take the service's neighbourhood from"}
    # Mesh-wide: the history of the services that fail now.
    assert full.history is not None and full.history.series and len(full.history.signals) == 3
    assert full.history.covers == "the 1 service with failing requests"


def test_scoped_phase_narrows_every_query_to_the_neighbourhood() -> None:
    scope = Scope(target=ServiceRef("shop", "cart"),
                  services=frozenset({ServiceRef("shop", "cart"), ServiceRef("pay.v2", "ledger")}),
                  workloads=frozenset({WorkloadRef("shop", "web-v1")}))
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body='{"status":"success","data":{"resultType":"vector","result":[]}}')
        srv.route("/api/v1/query_range", body='{"status":"success","data":{"resultType":"matrix","result":[]}}')
        collector, config = _collector(srv.url, recording_rules="off")
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config,  # type: ignore[arg-type]
                                              scope=scope, phase="scoped"))
    scoped_queries = [q for q in QUERIES.values() if q.phase == "scoped"]
    # The three latency quantiles are one bucket query in a neighbourhood.
    assert len(srv.requests) == len(raw.payloads) == (len(scoped_queries) - len(LATENCY_QUERIES) + 1 + 1
                                                      + len(RANGE_QUERIES) + len(HISTORY_QUERIES))
    into = 'destination_service_namespace=~"pay\\\\.v2|shop",destination_service_name=~"cart|ledger"'
    source = 'source_workload_namespace=~"shop",source_workload=~"web-v1"'
    histogram = {"query:latency", "range:latency_p99", "history:latency_p99"}
    assert histogram <= set(_keys(raw)) and not {f"query:{n}" for n in LATENCY_QUERIES} & set(_keys(raw))
    for p in raw.payloads:
        query = p.params["query"]
        if p.key == f"query:{CONTROL_PLANE}":
            assert "destination_service" not in query  # istiod's metrics: never narrowed
            continue
        assert into in query
        # The duration histogram: the edges into the neighbourhood only (what its readers judge).
        assert (source in query) is (p.key not in histogram), p.key
        assert p.meta["scope"]["services"] == ["pay.v2/ledger", "shop/cart"]
    assert raw.get("query:latency").params["query"].startswith("sum by (le, reporter,")  # type: ignore[union-attr]


def test_scope_matchers_escape_regex_and_string() -> None:
    matchers = scope_matchers([ServiceRef("a", "x.y"), ServiceRef("a", "z"), ServiceRef("b", "x.y")],
                              [WorkloadRef("a", 'w"1')])
    assert matchers == ('destination_service_namespace=~"a|b",destination_service_name=~"x\\\\.y|z"',
                        'source_workload_namespace=~"a",source_workload=~"w\\"1"')
    rendered = render("requests", "5m", scope=matchers)
    assert rendered.count("rate(istio_requests_total{") == 2 and " or " in rendered
    assert scope_matchers([], []) == ()


def _last_regex(matchers: str) -> re.Pattern[str]:
    """The regex of the last matcher of a set (the names), as the server compiles it from the
    PromQL string (anchored: compare with fullmatch)."""
    body = re.search(r'=~"((?:[^"\\]|\\.)*)"$', matchers)
    assert body is not None, matchers
    return re.compile(re.sub(r"\\(.)", r"\1", body.group(1)))


@pytest.mark.parametrize("names", [
    ["svc-0305-v1", "svc-0305-v2", "svc-0306-v1", "db-0001-v1"],
    ["a", "ab", "abc", "b", ""],  # a name that is another's prefix, the empty one
    ['w"1', "x.y", "x.yz", "x|y", "a(b)*", "a\\b", "ü-v1", "ü-v2"],  # quotes, regex and non-ASCII characters
    [f"checkout-worker-{i:04d}-v{v}" for i in range(0, 3000, 7) for v in (1, 2)],
])
def test_compact_matchers_select_exactly_the_same_names(names: list[str]) -> None:
    plain = scope_matchers([ServiceRef("ns", n) for n in names], [WorkloadRef("ns", n) for n in names])
    compact = scope_matchers([ServiceRef("ns", n) for n in names], [WorkloadRef("ns", n) for n in names],
                             compact=True)
    for p, c in zip(plain, compact, strict=True):
        want, got = _last_regex(p), _last_regex(c)
        probes = set(names) | {n + "x" for n in names} | {n[:-1] for n in names} | {"x" + n for n in names}
        for probe in probes:
            assert bool(got.fullmatch(probe)) == bool(want.fullmatch(probe)) == (probe in names), (probe, c)
    if len(names) > 100:
        assert sum(map(len, compact)) < sum(map(len, plain)) / 2


def test_a_neighbourhood_too_big_for_plain_matchers_is_narrowed_with_compact_ones() -> None:
    """605 workloads (a front end's neighbourhood at 5,000 services) are past one query string as
    plain alternations; the scoped queries are still narrowed (prefix trees), not sent mesh-wide.
    A neighbourhood too big even so is read mesh-wide, as before."""
    def scope(n: int, name: str) -> Scope:
        return Scope(target=ServiceRef("ns-05", "svc-0305"),
                     services=frozenset(ServiceRef(f"ns-{i % 10:02d}", name.format(i)) for i in range(0, n, 5)),
                     workloads=frozenset(WorkloadRef(f"ns-{i % 10:02d}", f"{name.format(i)}-v{v}")
                                         for i in range(n) for v in (1, 2)))
    collector, config = _collector("http://127.0.0.1:9", recording_rules="off")
    for neighbourhood, narrowed in ((scope(300, "svc-{:04d}"), True), (scope(1500, "{:04d}-svc"), False)):
        ctx = FetchContext(time=T, window_s=WINDOW, config=config, scope=neighbourhood, phase="scoped")  # type: ignore[arg-type]
        jobs = {j.key: j for j in collector._jobs(ctx, frozenset())}
        for key in ("query:tcp_received", "query:tcp_opened", "range:requests", "range:errors"):
            assert jobs[key].scoped is narrowed, key
            assert ('source_workload=~"' in jobs[key].promql) is narrowed
        assert all(len(j.promql) <= prom_fetch.MAX_QUERY_CHARS for j in jobs.values())
    plain = scope_matchers(scope(300, "svc-{:04d}").services, scope(300, "svc-{:04d}").workloads)
    assert sum(map(len, plain)) > prom_fetch.MAX_QUERY_CHARS


def test_recorded_series_are_read_when_the_server_has_the_rules() -> None:
    answer = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "workload:istio_requests_total"}, "value": [0, "1"]},
        {"metric": {"__name__": "workload:istio_request_duration_milliseconds_count"}, "value": [0, "1"]}]}}
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body=json.dumps(answer))
        srv.route("/api/v1/query_range", body='{"status":"success","data":{"resultType":"matrix","result":[]}}')
        collector, config = _collector(srv.url)
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
    queries = {p.key: p.params["query"] for p in raw.payloads if p.key != "rules"}
    assert "rate(workload:istio_requests_total[5m])" in queries["query:requests"]
    assert "workload:istio_request_duration_milliseconds_bucket" in queries["query:latency_p99"]
    # The TCP rules are absent on this server: raw metrics for those.
    assert "rate(istio_tcp_sent_bytes_total[5m])" in queries["query:tcp_sent"]
    assert raw.payloads[0].meta["recorded"] == ["istio_request_duration_milliseconds_count",
                                                "istio_requests_total"]


@pytest.mark.parametrize("found", [
    ("edge:meshobs_rules",),
    ("edge:meshobs_rules", "workload:istio_requests_total"),
    ("workload:istio_requests_total",),
    # The edge series without their group's marker: not looked for, not read.
    ("edge:istio_requests_total", "edge:istio_tcp_sent_bytes_total"),
    ()])
def test_graph_phase_reads_the_edge_rules_when_the_server_has_them(found: tuple[str, ...]) -> None:
    """The graph phase's edge queries read meshobs's edge-level series where the server has
    them (else Istio's workload copy, else the raw metrics); the failing queries, which select
    by response code, never do; the status does not change."""
    answer = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": name}, "value": [0, "1"]} for name in found]}}
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body=json.dumps(answer))
        collector, config = _collector(srv.url)
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config, phase="graph"))  # type: ignore[arg-type]
    queries = {p.key: p.params["query"] for p in raw.payloads if p.key != "rules"}
    assert set(queries) == {f"query:{n}" for n in GRAPH_QUERIES}
    edge_rules = "edge:meshobs_rules" in found
    want_edges = ("edge:" if edge_rules else
                  "workload:" if "workload:istio_requests_total" in found else "") + "istio_requests_total"
    assert f"rate({want_edges}[5m])" in queries["query:edges"]
    want_tcp = ("edge:" if edge_rules else "") + "istio_tcp_sent_bytes_total"
    assert f"rate({want_tcp}[5m])" in queries["query:tcp_edges"]
    assert "edge:" not in queries["query:failing"] + queries["query:tcp_failing"]
    assert ("edge:istio_requests_total" in raw.payloads[0].meta["recorded"]) is edge_rules
    # Asked at the window's start (a rule younger than the window would under-count its rate: the
    # raw metrics then), for Istio's families and the edge rules' one marker series only.
    rules = raw.get("rules")
    assert rules is not None and "offset 5m" in rules.params["query"]
    assert all(name in rules.params["query"] for name in recorded_names())
    assert "edge:istio_requests_total" not in rules.params["query"]


@pytest.mark.parametrize("window_s", [20.0, 45.0])
def test_a_window_shorter_than_the_edge_rules_answer_for_reads_the_raw_edges(window_s: float) -> None:
    """The edge rules are evaluated every 15 s: over a window of a few evaluations rate() has one
    sample or none, and the graph would be empty (a silent mesh-wide run). The raw metrics then."""
    answer = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "edge:meshobs_rules"}, "value": [0, "1"]}]}}
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body=json.dumps(answer))
        collector, config = _collector(srv.url)
        (raw,) = collector.fetch(FetchContext(time=T, window_s=window_s, config=config, phase="graph"))  # type: ignore[arg-type]
    edges = raw.get("query:edges")
    assert edges is not None and "edge:" not in edges.params["query"]
    assert "istio_requests_total" in edges.params["query"]


@pytest.mark.parametrize("setting", ["off"])
def test_recording_rules_off_sends_no_check(setting: str) -> None:
    with analytic_server() as srv:
        collector, config = _collector(srv.url, recording_rules=setting)
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
    assert "rules" not in _keys(raw)
    assert len(srv.requests) == len(QUERIES) + 1 + len(RANGE_QUERIES) + len(HISTORY_QUERIES)


def test_latency_not_scraped_is_not_judged() -> None:
    """Empty quantile answers while HTTP edges carry requests: the histograms are not scraped,
    which must not read as "nothing is slow"."""
    raw = prometheus_source(TRAFFIC, T, WINDOW)
    for p in raw.payloads:
        if p.key.startswith("query:latency"):
            p.body = json.dumps({"resultType": "vector", "result": []})
    (status,) = prom.normalize(raw, CTX).sources
    assert status.state is SourceState.OK and "answered no series" in status.inputs["latency"]
    assert status.inputs["requests"] is None


@pytest.mark.parametrize(("status", "body"), [
    (503, '{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}'),
    (422, '{"status":"error","errorType":"execution","error":"expanding series: context deadline exceeded"}'),
])
def test_the_servers_own_timeout_is_a_timeout(status: int, body: str) -> None:
    """Each query carries its timeout as the server's evaluation limit (whole milliseconds:
    Prometheus refuses "9.5s"); the server giving up reads as the query timing out."""
    empty = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})

    def instant(path: str, _headers: dict[str, str]) -> tuple[int, str]:
        # The request rates answer (empty), so the heavy queries are sent (heavy.py); the rest
        # hits the server's limit.
        if parse_qs(urlsplit(path).query)["query"][0] in (render("requests", "5m"),
                                                          render("requests", "5m", recorded=True)):
            return 200, empty
        return status, body

    with LoopbackServer() as srv:
        srv.route("/api/v1/query", handler=instant)
        srv.route("/api/v1/query_range", status=status, body=body)
        collector, config = _collector(srv.url, timeout="10500ms")
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
    # The heavy mesh-wide queries (over the histogram) get three timeouts each (heavy_factor).
    limits = _limits(srv)
    assert {t for q, t in limits.items() if not _heavy(q)} == {"9500ms"}
    assert {t for q, t in limits.items() if _heavy(q)} == {"30500ms"}
    latency = raw.get("query:latency_p50")
    assert latency is not None and latency.meta["timed_out"] == 31.5
    assert latency.error is not None and "timed out after 31.5 s" in latency.error


def test_a_neighbourhoods_latency_query_timing_out_costs_only_latency() -> None:
    """The scoped phase's one bucket query runs past its timeout: latency is "could not check:
    query latency timed out", the other scoped queries answered and are used."""
    scope = Scope(target=ServiceRef("shop", "cart"), services=frozenset({ServiceRef("shop", "cart")}),
                  workloads=frozenset({WorkloadRef("shop", "web-v1")}))
    empty = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})

    def instant(path: str, _headers: dict[str, str]) -> tuple[int, str]:
        if parse_qs(urlsplit(path).query)["query"][0].startswith("sum by (le, "):
            time.sleep(2.0)
        return 200, empty

    with LoopbackServer() as srv:
        srv.route("/api/v1/query", handler=instant)
        srv.route("/api/v1/query_range", body='{"status":"success","data":{"resultType":"matrix","result":[]}}')
        collector, config = _collector(srv.url, timeout="500ms", recording_rules="off")
        start = time.monotonic()
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config,  # type: ignore[arg-type]
                                              scope=scope, phase="scoped"))
        took = time.monotonic() - start
    latency = raw.get("query:latency")
    assert latency is not None and latency.meta["timed_out"] == 0.5 and took < 1.8
    assert all(p.ok for p in raw.payloads if p.key != "query:latency")
    (status,) = prom.normalize(raw, CTX).sources
    assert "query latency timed out after 0.5 s" in str(status.inputs["latency"])
    assert status.inputs.get("control_plane") is None and status.inputs.get("history") is None


def _heavy(promql: str) -> bool:
    """A quantile over the whole mesh's duration histogram (not narrowed, not istiod's)."""
    return promql.startswith("histogram_quantile(") and "istio_request_duration" in promql and '=~"' not in promql


def _limits(srv: LoopbackServer) -> dict[str, str]:
    """The server-side timeout each query was sent with, by PromQL."""
    return {parse_qs(urlsplit(path).query)["query"][0]: parse_qs(urlsplit(path).query)["timeout"][0]
            for _m, path, _h in srv.requests}


@pytest.mark.parametrize(("concurrency", "heavy_ms"), [(4, "5000ms"), (3, "3000ms"), (1, "1000ms")])
def test_mesh_wide_quantiles_share_the_server_and_get_a_timeout_each(concurrency: int, heavy_ms: str) -> None:
    """Issue 9: a live --all at 1,000 services lost its latency to three quantile queries that
    each took ~4 s alone but ~16 s together beside the Envoy fan-out, against 10 s each. The
    heavy mesh-wide queries now get the per-query timeout once per heavy query in flight with
    them (at most the concurrency less one worker kept for the others); the cheap ones and a
    neighbourhood's bucket query keep one.
    Checked by what the server is told (its ``timeout``), not by timing."""
    with analytic_server() as srv:
        collector, config = _collector(srv.url, timeout="2s", concurrency=concurrency, recording_rules="off")
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
        mesh_wide = _limits(srv)
    assert all(p.ok for p in raw.payloads)
    heavy = {q: t for q, t in mesh_wide.items() if _heavy(q)}
    assert len(heavy) == len(LATENCY_QUERIES) + 1  # the quantiles and the p99 sparkline
    # 2 s x heavy_factor (the heavy queries in flight together: concurrency less one worker kept
    # for the others), less the server's grace of 1 s.
    assert set(heavy.values()) == {heavy_ms}
    assert {t for q, t in mesh_wide.items() if q not in heavy} == {"1000ms"}

    scope = Scope(target=ServiceRef("shop", "cart"), services=frozenset({ServiceRef("shop", "cart")}),
                  workloads=frozenset({WorkloadRef("shop", "web-v1")}))
    with analytic_server() as srv:
        collector, config = _collector(srv.url, timeout="2s", concurrency=concurrency, recording_rules="off")
        collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config,  # type: ignore[arg-type]
                                     scope=scope, phase="scoped"))
        narrowed = _limits(srv)
    assert narrowed and set(narrowed.values()) == {"1000ms"}  # narrowed: nothing heavy


@pytest.mark.parametrize("code", ["0", "200", "201", "204", "302", "400", "401", "403", "404", "429",
                                  "499", "500", "502", "503", "504", "599"])
def test_the_failing_query_selects_what_the_ranking_walk_counts_as_failed(code: str) -> None:
    """``promql.FAILED_CODES`` is ``callgraph.failed`` said in PromQL: a code the walk follows
    and the query does not select would leave a failing service's outer callers half-read."""
    import re

    from meshobs.callgraph import failed
    from meshobs.collectors.promql import FAILED_CODES
    from meshobs.model.traffic import ResponseStat

    pattern = re.fullmatch(r'response_code=~"(.*)"', FAILED_CODES)
    assert pattern is not None
    # PromQL anchors a regex matcher at both ends.
    assert bool(re.fullmatch(pattern.group(1), code)) == failed(ResponseStat(code=code, flags="-", rate=1.0))
