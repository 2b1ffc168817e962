"""The Prometheus collector without a real server: loopback failures, the analytic demo source,
query-count independence from mesh size, corpus payloads, and the quantile arithmetic."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshobs.bundle import Bundle
from meshobs.collect import build_snapshot, collect, normalize_source
from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.collectors.prometheus.fetch import _text
from meshobs.collectors.prometheus.heavy import merge
from meshobs.collectors.promql import (
    HISTORY_QUERIES,
    ISTIO_DURATION_BUCKETS_MS,
    LATENCY_QUERIES,
    QUERIES,
    RANGE_QUERIES,
    control_plane_query,
    histogram_quantile,
)
from meshobs.config import validate
from meshobs.demo.prometheus import openmetrics, prometheus_source
from meshobs.demo.scale import generated_traffic
from meshobs.model import Reporter, SourceState
from meshobs.raw import Payload, RawSource
from tests.support.analytic import Answers
from tests.support.loopback import LoopbackServer, unused_port

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CTX = NormalizeContext(time=T, window_s=300.0)
# Requests per snapshot: the recording-rules check, the instant queries, the control-plane query
# (istiod's metrics) and the range queries; the history queries only when some request fails
# (tests/test_history_fetch.py), narrowed to it.
SENT = 1 + len(QUERIES) + 1 + len(RANGE_QUERIES)


def _fetch(url: str, timeout: str = "2s") -> RawSource:
    config = validate({"sources": {"prometheus": {"url": url, "timeout": timeout}}})
    collector = prom.from_config(config, [])
    assert collector is not None
    return collector.fetch(FetchContext(time=T, window_s=300.0, config=config))[0]


def test_no_prometheus_section_means_no_collector() -> None:
    assert prom.from_config(validate({"sources": {"jaeger": {"url": "http://x"}}}), []) is None


def test_tls_verification_on_by_default_and_configurable() -> None:
    def verify(section: dict) -> object:
        c = prom.from_config(validate({"sources": {"prometheus": section}}), [])
        assert c is not None
        return c.client._session.verify

    assert verify({"url": "https://p"}) is True
    assert verify({"url": "https://p", "verify_tls": False}) is False
    assert verify({"url": "https://p", "ca_file": "/etc/ca.pem"}) == "/etc/ca.pem"


def test_headers_are_sent() -> None:
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body='{"status":"success","data":{"resultType":"vector","result":[]}}')
        config = validate({"sources": {"prometheus": {"url": srv.url,
                                                      "headers": {"Authorization": "Bearer t0k"}}}})
        collector = prom.from_config(config, [])
        assert collector is not None
        collector.fetch(FetchContext(time=T, window_s=300.0, config=config))
    assert len(srv.requests) == SENT
    assert all(h.get("Authorization") == "Bearer t0k" for _m, _p, h in srv.requests)
    assert all("time=1714564800" in p for _m, p, _h in srv.requests if p.startswith("/api/v1/query?"))
    assert all("end=1714564800" in p for _m, p, _h in srv.requests if p.startswith("/api/v1/query_range?"))


# -- failures become a status, never an exception ---------------------------------------------

def _status(raw: RawSource) -> tuple[SourceState, str]:
    part = normalize_source(raw, T, 300.0)
    (status,) = part.sources
    assert status.name == "prometheus" and status.kind == "prometheus"
    return status.state, status.message


def test_unreachable_port() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    raw = _fetch(url)
    state, message = _status(raw)
    assert state is SourceState.ERROR
    assert "refused" in message and url in message
    # One connection attempt: the queries after it are recorded as not sent.
    assert all(p.error for p in raw.payloads) and len(raw.payloads) == SENT
    assert [p.key for p in raw.payloads if not (p.error or "").startswith("not sent")] == ["rules"]


def test_http_500_names_the_status() -> None:
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", status=500, body='{"status":"error","error":"boom"}')
        raw = _fetch(srv.url)
    state, message = _status(raw)
    assert state is SourceState.ERROR and "500" in message
    assert len(srv.requests) == SENT  # no hidden retries
    # Prometheus's own error, not the client library's bytes literal of the whole envelope.
    assert "boom" in message and "b'" not in message and '"status"' not in message


def test_hung_server_times_out_query_by_query_in_parallel() -> None:
    """A server that never answers is not "unreachable": every query runs into its own timeout,
    side by side, and each says so (no query is dropped unsent)."""
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body="{}", delay_s=1.5)
        srv.route("/api/v1/query_range", body="{}", delay_s=1.5)
        config = validate({"sources": {"prometheus": {"url": srv.url, "timeout": "300ms",
                                                      "concurrency": SENT}}})
        collector = prom.from_config(config, [])
        assert collector is not None
        (raw,) = collector.fetch(FetchContext(time=T, window_s=300.0, config=config))
    state, message = _status(raw)
    assert state is SourceState.ERROR and "timed out after 0.3 s" in message
    # The four heavy mesh-wide queries (over the duration histogram) wait for the request rates'
    # answer (collectors/prometheus/heavy.py): the cheap query alone timed out, so they, reading
    # twenty times its series, are not sent at all; each says why. Every other query was sent.
    heavy = {"query:latency_p50", "query:latency_p90", "query:latency_p99", "range:latency_p99"}
    assert len(srv.requests) == SENT - len(heavy)
    assert all(not p.ok and p.meta.get("whole_reason") for p in raw.payloads if p.key in heavy)
    assert all(p.meta.get("timed_out") == 0.3 for p in raw.payloads if p.key not in heavy)
    # The recording-rules check, then one wave of every other query at once.
    assert raw.duration_s < 2.2


def test_hung_server_past_the_runs_deadline_names_the_query_that_hung() -> None:
    """A server that accepts and never answers, with the run's deadline shorter than a query's
    timeout: the recording-rules check runs out of time and the rest are not sent. The status
    names the query that hung (not "not sent"), and the latency queries do not blame missing
    recording rules for a deadline that had passed before anything else was sent."""
    import time as _time

    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body="{}", delay_s=3.0)
        srv.route("/api/v1/query_range", body="{}", delay_s=3.0)
        config = validate({"sources": {"prometheus": {"url": srv.url, "timeout": "10s"}}})
        collector = prom.from_config(config, [])
        assert collector is not None
        ctx = FetchContext(time=T, window_s=300.0, config=config, deadline=_time.monotonic() + 0.5)
        (raw,) = collector.fetch(ctx)
    state, message = _status(raw)
    assert state is SourceState.ERROR
    assert message.startswith("no query answered: query rules timed out")
    assert len(srv.requests) == 1
    heavy = [p for p in raw.payloads if p.meta.get("whole_reason")]
    assert heavy and not any("recording rules" in (p.error or "") for p in heavy)
    assert not any("after 0 s" in (p.error or "") for p in raw.payloads)


@pytest.mark.parametrize("body", ['{"status":"success","data":{"resultType":"vec', "<html>hi</html>"])
def test_truncated_or_non_json_body(body: str) -> None:
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body=body)
        raw = _fetch(srv.url)
    state, _message = _status(raw)
    assert state is SourceState.ERROR


@pytest.mark.parametrize("value", ['"0.25"', "NaN"])
def test_answers_decode_to_the_standard_librarys_values(value: str) -> None:
    """The answers are decoded by msgspec (a response hook); what it refuses, such as a bare NaN
    that some servers write and the standard library reads, is decoded as before."""
    series = ('{"metric":{"destination_service_name":"ledger","destination_service_namespace":"pay",'
              '"reporter":"destination","response_code":"200"},"value":[1714564800.5,' + value + ']}')
    body = '{"status":"success","data":{"resultType":"vector","result":[' + series + ']}}'
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body=body)
        srv.route("/api/v1/query_range", body='{"status":"success","data":{"resultType":"matrix","result":[]}}')
        raw = _fetch(srv.url)
    expected = json.loads(body)["data"]
    for payload in raw.payloads:
        if payload.key.startswith("query:"):
            assert payload.ok
            assert repr(payload.json()) == repr(expected)
            assert repr(json.loads(payload.body or "")) == repr(expected)


def test_partial_failure_keeps_the_other_queries() -> None:
    raw = prometheus_source(generated_traffic(10), T, 300.0)
    latency = raw.get("query:latency_p99")
    assert latency is not None
    latency.body, latency.status, latency.error = None, None, "Prometheus at demo answered HTTP 503"
    part = prom.normalize(raw, CTX)
    (status,) = part.sources
    assert status.state is SourceState.ERROR and "latency_p99" in status.message
    assert "latency_p99" in status.inputs["latency"] and status.inputs["requests"] is None
    assert part.edges and all(e.latency is None for e in part.edges)
    assert any(e.request_rate > 0 for e in part.edges)


def test_failed_prometheus_does_not_stop_the_snapshot() -> None:
    config = validate({"sources": {"prometheus": {"url": f"http://127.0.0.1:{unused_port()}",
                                                  "timeout": "1s"}}})
    bundle = collect(config, at=T)
    healthy = prometheus_source(generated_traffic(10), T, 300.0)
    healthy.name = "prometheus:replica"
    snapshot = build_snapshot(Bundle(time=T, window_s=300.0, sources=[*bundle.sources, healthy]))
    assert snapshot.source("prometheus") is not None
    assert snapshot.source("prometheus").state is SourceState.ERROR  # type: ignore[union-attr]
    assert snapshot.source("prometheus:replica").state is SourceState.OK  # type: ignore[union-attr]
    assert len(snapshot.edges) == len(generated_traffic(10))
    assert snapshot.services and snapshot.workloads


# -- constant query count ----------------------------------------------------------------------

def _serve_analytic(n_services: int) -> int:
    """Fetch through a loopback server answering from the analytic results of a mesh."""
    known = Answers(prometheus_source(generated_traffic(n_services), T, 300.0, history=True),
                    extra={control_plane_query("5m"): {"resultType": "vector", "result": []}})  # no istiod scraped

    def answer(path: str, _headers: dict[str, str]) -> tuple[int, str]:
        return 200, json.dumps({"status": "success", "data": known(path)})

    with LoopbackServer() as srv:
        srv.route("/api/v1/query", handler=answer)
        srv.route("/api/v1/query_range", handler=answer)
        fetched = _fetch(srv.url)
    part = prom.normalize(fetched, CTX)
    assert part.sources[0].state is SourceState.OK
    assert len(part.edges) == len(generated_traffic(n_services))
    return len(srv.requests)


def test_query_count_does_not_grow_with_the_mesh() -> None:
    # Both meshes have failing requests: the history's three queries come on top, narrowed.
    assert _serve_analytic(10) == _serve_analytic(200) == SENT + len(HISTORY_QUERIES) == 15


# -- the analytic demo source ------------------------------------------------------------------

def test_analytic_source_round_trips_to_ground_truth() -> None:
    traffic = generated_traffic(40, seed=7)
    part = prom.normalize(prometheus_source(traffic, T, 300.0), CTX)
    edges = {e.key: e for e in part.edges}
    assert len(edges) == len(traffic)
    for truth in traffic:
        key = next(k for k in edges if k[0].name == truth.source_workload
                   and k[0].namespace == truth.source_namespace
                   and k[1].name == truth.destination_service
                   and k[2] is not None and k[2].name == truth.destination_workload)
        edge = edges[key]
        assert edge.reporter is Reporter.BOTH
        if truth.protocol == "tcp":
            assert edge.tcp_connections_opened_rate == pytest.approx(truth.rps)
            assert edge.tcp_sent_bytes_rate == pytest.approx(truth.tcp_sent_bps)
            continue
        assert edge.request_rate == pytest.approx(truth.rps)
        assert edge.error_ratio == pytest.approx(truth.error_fraction, abs=1e-12)
        buckets = [(float(b), truth.latency.cdf(b)) for b in ISTIO_DURATION_BUCKETS_MS]
        assert edge.latency is not None
        assert edge.latency.p99 == pytest.approx(histogram_quantile(0.99, [*buckets, (math.inf, 1.0)]))
        # Within the bucket that holds the profile's true p99.
        upper = next(b for b in ISTIO_DURATION_BUCKETS_MS if b >= truth.latency.p99_ms)
        assert edge.latency.p99 <= upper


def test_openmetrics_shape() -> None:
    traffic = generated_traffic(3)
    never = replace(traffic[0], destination_workload=None)
    text = openmetrics([*traffic, never], T, 300.0)
    assert text.endswith("# EOF\n")
    lines = text.splitlines()
    dest = [ln for ln in lines if 'reporter="destination"' in ln]
    assert dest and all("connection_security_policy=" in ln for ln in dest)
    assert not any("connection_security_policy=" in ln for ln in lines if 'reporter="source"' in ln)
    assert any('le="+Inf"' in ln for ln in lines) and any('le="1800000"' in ln for ln in lines)
    # The never-reached edge has source series only.
    assert not any('destination_workload="unknown"' in ln for ln in dest)
    assert any('destination_workload="unknown"' in ln for ln in lines)
    # 300 s window + 60 s history at 15 s steps, ending at T.
    stamps = {ln.rsplit(" ", 1)[1] for ln in lines if not ln.startswith("#")}
    assert max(stamps) == str(int(T.timestamp())) and len(stamps) == 25


# -- corpus payloads ---------------------------------------------------------------------------

def _raw_with(body: str, key: str = "query:requests") -> RawSource:
    raw = prometheus_source([], T, 300.0)
    payload = raw.get(key)
    assert payload is not None
    payload.body = body
    return raw


def test_warning_response_is_no_data(corpus: Path) -> None:
    body = (corpus / "prometheus/jaeger/warning_response.json").read_text()
    # A matrix in an instant query is a shape error; the same warning envelope with an empty
    # instant vector is what an idle Prometheus answers.
    warning = json.loads(body)
    warning["data"]["resultType"] = "vector"
    state, message = _status(_raw_with(json.dumps(warning)))
    assert state is SourceState.NO_DATA and "istio_requests_total" in message
    state, _ = _status(_raw_with(body))
    assert state is SourceState.ERROR


def test_range_results_are_rejected(corpus: Path) -> None:
    body = (corpus / "prometheus/prometheus-api-client-python/up__201907281200.json").read_text()
    state, _ = _status(_raw_with(body))
    assert state is SourceState.ERROR
    body = (corpus / "prometheus/jaeger/service_datapoint_response.json").read_text()
    state, _ = _status(_raw_with(body))
    assert state is SourceState.ERROR


def test_prometheus_error_envelope() -> None:
    state, message = _status(_raw_with('{"status":"error","errorType":"bad_data","error":"parse error"}'))
    assert state is SourceState.ERROR and "parse error" in message


def test_empty_mesh_is_no_data() -> None:
    state, _ = _status(prometheus_source([], T, 300.0))
    assert state is SourceState.NO_DATA


# -- histogram_quantile ------------------------------------------------------------------------

@pytest.mark.parametrize(("q", "buckets", "want"), [
    (0.5, [(1.0, 0.0), (2.0, 10.0), (math.inf, 10.0)], 1.5),       # interpolate in (1, 2]
    (0.99, [(1.0, 5.0), (2.0, 5.0), (math.inf, 10.0)], 2.0),       # rank in +Inf: highest bound
    (0.5, [(10.0, 10.0), (math.inf, 10.0)], 5.0),                  # first bucket starts at 0
    (0.5, [(1.0, 3.0), (2.0, 2.0), (math.inf, 4.0)], 1 * (2 / 3)),  # non-monotonic forced up
    (0.5, [(1.0, 0.0), (2.0, 0.0)], math.nan),                     # no +Inf bucket
    (0.5, [(1.0, 0.0), (math.inf, 0.0)], math.nan),                # no observations
])
def test_histogram_quantile(q: float, buckets: list[tuple[float, float]], want: float) -> None:
    got = histogram_quantile(q, buckets)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


def test_payload_records_query_and_time() -> None:
    raw = prometheus_source(generated_traffic(5), T, 120.0)
    assert [p.key for p in raw.payloads] == ["rules", *(f"query:{n}" for n in QUERIES),
                                             *(f"range:{n}" for n in RANGE_QUERIES)]
    p = raw.get("query:requests")
    assert isinstance(p, Payload) and "[2m]" in p.params["query"] and p.params["time"] == T.timestamp()


# -- reporter merge ----------------------------------------------------------------------------

def _drop(raw: RawSource, keys: tuple[str, ...], reporter: str) -> RawSource:
    """Remove one reporter's series from some query results (as if that proxy were absent)."""
    for p in raw.payloads:
        if p.key in keys:
            data = json.loads(p.body or "")
            data["result"] = [s for s in data["result"] if s["metric"].get("reporter") != reporter]
            p.body = json.dumps(data)
    return raw


def test_caller_without_sidecar_falls_back_to_destination_reporter() -> None:
    traffic = [t for t in generated_traffic(10) if t.protocol == "http"][:1]
    raw = _drop(prometheus_source(traffic, T, 300.0), tuple(f"query:{n}" for n in QUERIES), "source")
    (edge,) = prom.normalize(raw, CTX).edges
    assert edge.reporter is Reporter.DESTINATION
    assert edge.request_rate == pytest.approx(traffic[0].rps)
    assert edge.latency is not None


def test_latency_falls_back_to_the_other_reporter() -> None:
    traffic = [t for t in generated_traffic(10) if t.protocol == "http"][:1]
    full = prom.normalize(prometheus_source(traffic, T, 300.0), CTX).edges[0]
    raw = _drop(prometheus_source(traffic, T, 300.0),
                tuple(f"query:{n}" for n in LATENCY_QUERIES), "source")
    (edge,) = prom.normalize(raw, CTX).edges
    assert edge.reporter is Reporter.BOTH
    assert edge.latency == full.latency


# -- bundles recorded with the bucket queries --------------------------------------------------

LEGACY = Path(__file__).parent / "data" / "prometheus-buckets-slow-db.tar.gz"


def test_bundle_recorded_with_bucket_queries_still_replays() -> None:
    """The slow-db demo's Prometheus source as recorded before the server computed quantiles
    (query:latency and range:latency held every bucket series): the same edges, quantiles and
    sparklines as the current queries' answers."""
    from meshobs.bundle import read_bundle
    from meshobs.demo.scenario import builtin_scenario

    (old,) = read_bundle(LEGACY).sources
    assert old.get("query:latency") is not None and old.get("query:latency_p99") is None
    scenario = builtin_scenario("slow-db")
    ctx = NormalizeContext(time=scenario.time, window_s=scenario.window_s)
    before = prom.normalize(old, ctx)
    now = prom.normalize(prometheus_source(scenario.edges, scenario.time, scenario.window_s), ctx)
    # Recorded before the history queries too: never asked for, so no input is called missing
    # (the onset check says it has no history), everything else was delivered.
    assert before.sources[0].state is SourceState.OK
    assert before.history is None
    assert {k: v for k, v in before.sources[0].inputs.items() if v is not None} == {}
    by_key = {e.key: e for e in now.edges}
    assert len(before.edges) == len(now.edges) and any(e.latency for e in before.edges)
    for edge in before.edges:
        other = by_key[edge.key]
        assert edge.request_rate == pytest.approx(other.request_rate)
        if edge.latency is None:
            assert other.latency is None
            continue
        assert other.latency is not None
        for q in ("p50", "p90", "p99"):
            assert getattr(edge.latency, q) == pytest.approx(getattr(other.latency, q), rel=1e-9)
    series = {(s.service, s.metric): s.values for s in now.series}
    assert {(s.service, s.metric) for s in before.series} == set(series)
    for s in before.series:
        assert s.values == pytest.approx(series[(s.service, s.metric)], rel=1e-9)


def test_collector_defaults_match_the_config_model() -> None:
    from meshobs.config_model import Prometheus

    model = Prometheus()
    collector = prom.from_config(validate({"sources": {"prometheus": {}}}), [])
    assert collector is not None
    assert (collector.timeout_s, collector.concurrency, collector.recording_rules) == (
        model.timeout, model.concurrency, model.recording_rules) == (10.0, 4, "auto")


def test_an_answer_decoded_by_the_client_is_read_once_as_is_then_from_its_text() -> None:
    answer = {"resultType": "vector", "result": []}
    payload = Payload(key="query:requests", body=json.dumps(answer), status=200, decoded=answer)
    assert payload.json() is answer
    assert payload.json() == answer and payload.json() is not answer  # parsed from the body now
    raw = RawSource("prometheus", "prometheus", [Payload(key="q", body="[]", decoded=[])])
    raw.drop_bodies()
    assert raw.payloads[0].decoded is None and raw.payloads[0].body is None


def test_an_answers_text_is_written_only_when_read_and_as_it_would_have_been() -> None:
    """A live answer's body is written from the decoded values when something reads it (a
    bundle being written), not as it arrives: a question that writes no bundle never pays for
    it. What is then written is what was written at once before (fetch._text)."""
    series = ('{"metric":{"destination_service_name":"ledger","destination_service_namespace":"pay",'
              '"reporter":"destination","response_code":"200"},"value":[1714564800.5,"0.25"]}')
    body = '{"status":"success","data":{"resultType":"vector","result":[' + series + ']}}'
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body=body)
        srv.route("/api/v1/query_range", body='{"status":"success","data":{"resultType":"matrix","result":[]}}')
        raw = _fetch(srv.url)
    queries = [p for p in raw.payloads if p.key.startswith("query:") and p.ok]
    assert queries
    for payload in queries:
        assert payload.__dict__["_body"] is None and payload.has_body()  # not written yet
        answer = payload.json()
        assert answer == json.loads(body)["data"]
        assert payload.body == _text(answer) == _text(json.loads(body)["data"])  # written now, once
        assert payload.__dict__["_body"] == payload.body
        assert payload.json() == answer  # parsed from the text now
    merged = merge("query:requests", "u", {}, queries[:2], "vector", _text)  # a sharded query's
    assert merged.__dict__["_body"] is None
    answer = merged.json()
    assert len(answer["result"]) == min(2, len(queries)) and merged.body == _text(answer)
    later = Payload(key="q")
    later.text_later({"result": []}, _text)
    later.body = "[]"
    assert later.body == "[]" and later.has_body()  # a body set replaces the one to write
    raw.drop_bodies()
    assert all(p.body is None and p.decoded is None and not p.has_body() for p in raw.payloads)



_LABELS = ('"reporter":"source","source_workload":"web-v1","source_workload_namespace":"shop",'
           '"destination_service_name":"cart","destination_service_namespace":"shop",'
           '"destination_workload":"cart-v1","destination_workload_namespace":"shop",'
           '"request_protocol":"http","response_code":"503","response_flags":"UF"')


TYPED_GRID = [
    '[{"metric":{' + _LABELS + '},"value":[1714564800.5,"2.5"]}]',  # as Prometheus writes it
    '[{"metric":{' + _LABELS + '},"value":[1714564800,"NaN"]},{"metric":{},"value":[1,"+Inf"]}]',
    '[{"metric":{' + _LABELS + '},"value":[1714564800.5,2.5]}]',  # a number, not a string
    '[{"metric":{' + _LABELS + '},"value":["1714564800.5","2.5"]}]',  # a string time
    '[{"metric":{' + _LABELS + '},"value":[1714564800.5," 2.5"],"extra":1}]',
    '[{"metric":{' + _LABELS + '},"value":[1714564800.5,"2.5x"]}]',  # not a number
    '[{"metric":{' + _LABELS + '},"value":[1714564800.5,true]}]',
    '[{"metric":{' + _LABELS + '},"value":[1714564800.5]}]',
    '[{"metric":{"reporter":1},"value":[1714564800.5,"2.5"]}]',
    '[{"value":[1714564800.5,"2.5"]}]',
    '[{"metric":{' + _LABELS + '},"values":[[1714564800.5,"2.5"]]}]',  # a range result
    'null',
    '[{"metric":[],"value":[1714564800.5,"2.5"]}]',
    '[[1714564800.5,"2.5"]]',
    '[{"metric":{' + _LABELS + '},"value":[true,"2.5"]}]',
]
ENVELOPES = ['{"resultType":"vector","result":%s}', '{"result":%s}',
             '{"status":"success","data":{"resultType":"vector","result":%s}}',
             '{"resultType":"matrix","result":%s}', '%s']


@pytest.mark.parametrize("result", TYPED_GRID)
@pytest.mark.parametrize("envelope", ENVELOPES)
def test_typed_answers_read_as_the_generic_path_reads_them(result: str, envelope: str) -> None:
    """Instant answers are decoded straight into the fields read; whatever that decoder accepts
    must read exactly as the generic path (the client's decoded answer) reads it, and whatever
    it refuses goes to the generic path, whose checks name the problem."""
    body = envelope % result
    typed, generic = _raw_with(body), _raw_with(body)
    payload = generic.get("query:requests")
    assert payload is not None
    payload.decoded = json.loads(body)
    if payload.decoded is None:  # "null": nothing was decoded, both read the text
        payload.decoded = None
    got, want = normalize_source(typed, T, 300.0), normalize_source(generic, T, 300.0)
    assert got.edges == want.edges and got.services == want.services and got.workloads == want.workloads
    assert [(s.state, s.message) for s in got.sources] == [(s.state, s.message) for s in want.sources]


@pytest.mark.parametrize("result", TYPED_GRID)
@pytest.mark.parametrize("envelope", ENVELOPES)
def test_decoded_answers_read_in_one_loop_as_the_checked_path_reads_them(result: str, envelope: str) -> None:
    """An answer the client decoded is read in one loop when every series is what the API
    writes; that loop gives the checked path's pairs, and leaves anything else (None) to it."""
    from meshobs.collectors.prometheus.normalize import _checked, _plain_samples

    data = json.loads(envelope % result)
    plain = _plain_samples(data)
    try:
        checked = [(s["metric"], float(s["value"][1])) for s in _checked("query:requests", data)]
    except ValueError:
        assert plain is None
        return
    assert plain is None or repr(plain) == repr(checked)  # repr: NaN is not equal to itself
    if envelope == ENVELOPES[0] and result in TYPED_GRID[:2]:
        assert plain is not None and len(plain) == len(checked) > 0  # as Prometheus writes it: the loop reads it


def test_a_typed_answer_gives_the_edge_it_says() -> None:
    """The typed path is not vacuous: the answer's rate, code and flag reach the edge."""
    body = '{"resultType":"vector","result":[{"metric":{' + _LABELS + '},"value":[1714564800.5,"2.5"]}]}'
    part = normalize_source(_raw_with(body), T, 300.0)
    (edge,) = [e for e in part.edges if e.destination.name == "cart"]
    assert edge.request_rate == 2.5 and [(r.code, r.flags) for r in edge.responses] == [("503", "UF")]


def test_the_grpc_failure_matchers_are_the_models_rules() -> None:
    """The PromQL that selects failed gRPC calls inside another code selects exactly the statuses
    the model calls errors (GRPC_ERRORS) and the ranking walk calls failed (FAILED_GRPC)."""
    import re

    from meshobs.callgraph import failed
    from meshobs.collectors.promql import FAILED_GRPC, GRPC_ERRORS
    from meshobs.model import ResponseStat
    from meshobs.model.traffic import GRPC_HTTP_EQUIVALENT

    def statuses(matchers: str) -> set[str]:
        found = re.search(r'grpc_response_status=~"([^"]+)"', matchers)
        assert found is not None
        return set(found.group(1).split("|"))

    calls = {s: ResponseStat("200", "-", 1.0, s) for s in GRPC_HTTP_EQUIVALENT}
    assert statuses(GRPC_ERRORS) == {s for s, r in calls.items() if r.is_error} == {"2", "4", "12", "13", "14", "15"}
    assert statuses(FAILED_GRPC) == {s for s, r in calls.items() if failed(r)} == {"2", "4", "7", "12", "13", "14",
                                                                                     "15", "16"}


def test_the_callees_rate_limit_refusals_are_named_in_the_callers_view() -> None:
    """A request the callee's sidecar refused by its local rate limit is 429 with flag RL in the
    destination's view; the caller's proxy only relays the 429 (no flag). As many of the caller's
    plain 429s as the callee's proxy refused carry its flag, so they count as errors of the edge
    (ResponseStat.is_error); the rest were the application's own 429s, the caller's business."""
    traffic = [t for t in generated_traffic(10) if t.protocol == "http"][:1]
    raw = prometheus_source(traffic, T, 300.0)
    payload = raw.get("query:requests")
    assert payload is not None
    data = json.loads(payload.body or "")
    added = []
    for s in data["result"]:
        if s["metric"].get("response_code") != "200":
            continue
        side = s["metric"]["reporter"]
        flags, rps = ("-", "10") if side == "source" else ("RL", "4")
        added.append({"metric": {**s["metric"], "response_code": "429", "response_flags": flags},
                      "value": [s["value"][0], rps]})
    assert {a["metric"]["reporter"] for a in added} == {"source", "destination"}
    data["result"] += added
    payload.body = json.dumps(data)
    (edge,) = prom.normalize(raw, CTX).edges
    assert edge.reporter is Reporter.BOTH
    limited = {(r.code, r.flags): r.rate for r in edge.responses if r.code == "429"}
    assert limited == {("429", "RL"): pytest.approx(4.0), ("429", "-"): pytest.approx(6.0)}
    assert edge.error_rate == pytest.approx(4.0 + sum(r.rate for r in edge.responses if r.code.startswith("5")))
    assert edge.destination_error_rate >= 4.0
