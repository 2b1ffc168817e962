"""Jaeger: every corpus file normalises; fetch against a loopback server (v3, v1 fallback, failures)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from meshobs.collectors import jaeger
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.collectors.otlp import norm_id, parse_traces
from meshobs.config import validate
from meshobs.model import UNKNOWN_WORKLOAD, ServiceRef, SourceState, Trace, WorkloadRef
from meshobs.raw import Payload, RawSource
from tests.conftest import CORPUS
from tests.support.loopback import LoopbackServer, unused_port

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CTX = NormalizeContext(T, 300)
JAEGER_DIR = CORPUS / "jaeger-traces"
# A missing corpus must fail loudly, not collect zero cases: the placeholder makes the fixture fail.
FILES = sorted(p.relative_to(JAEGER_DIR).as_posix() for p in JAEGER_DIR.rglob("*") if p.is_file()) or ["<missing>"]


def _raw(*payloads: Payload, api: str = "v1") -> RawSource:
    services = Payload("services", body=json.dumps({"data": ["svc"]}), status=200, meta={"api": api})
    return RawSource("jaeger", "jaeger", payloads=[services, *payloads], meta={"url": "http://j", "api": api})


def _traces(corpus: Path, rel: str) -> dict[str, Trace]:
    body = (corpus / "jaeger-traces" / rel).read_text()
    part = jaeger.normalize(_raw(Payload("traces/svc", body=body, status=200, meta={"api": "v1"})), CTX)
    assert part.sources[0].state is SourceState.OK, part.sources[0].message
    return {t.trace_id: t for t in part.traces}


@pytest.mark.parametrize("rel", FILES)
def test_every_corpus_file_normalises(corpus: Path, rel: str) -> None:
    assert len(FILES) >= 9, f"jaeger corpus missing at {JAEGER_DIR}"
    body = (corpus / "jaeger-traces" / rel).read_text()
    if "DependencyGraph" in rel:
        part = jaeger.normalize(_raw(Payload("dependencies", body=body, status=200)), CTX)
        assert part.sources[0].state is SourceState.OK and part.edges
        assert len(part.edges) == len(json.loads(body))
    elif "GetServices" in rel:
        assert jaeger.service_names(Payload("services", body=body, status=200)) == ["foo"]
    else:
        traces = _traces(corpus, rel)
        assert traces and all(t.spans for t in traces.values())
        assert all(s.span_id and s.service != "unknown" and s.duration_us > 0
                   for t in traces.values() for s in t.spans)


def test_trace_values(corpus: Path) -> None:
    t = _traces(corpus, "jaeger-ui/TraceGraph__testTrace.json")["trace-123"]
    assert len(t.spans) == 11 and t.services == {"service1", "service2"}
    span = {s.span_id: s for s in t.spans}
    assert span["span-1"].duration_us == 390000 and span["span-1"].parent_id is None
    assert span["span-2"].parent_id == "span-1" and span["span-1"].kind == "server"

    t = _traces(corpus, "jaeger-ui/oltp2jaeger-multi-out.json")["c620759e5d60fafb8ee0922b30e06bc6"]
    span = {s.span_id: s for s in t.spans}
    assert len(t.spans) == 4 and [r.span_id for r in t.roots] == ["eff3153be6b1fb93"]
    assert span["49b8e9efa1e8a3b1"].parent_id == "eff3153be6b1fb93"  # reference with a nested span
    assert span["49b8e9efa1e8a3b1"].duration_us == 173150 and span["49b8e9efa1e8a3b1"].service == "example-trace"

    t = _traces(corpus, "jaeger-ui/spansAmongEachOther.json")["df84e36b9e2ee3815d07f0867a5be1f"]
    assert len(t.spans) == 12 and t.services == {"api-gateway", "customers-service"}
    assert {s.span_id: s for s in t.spans}["6962df17f54c3741"].parent_id == "9afcdf2e24e8d70a"

    t = _traces(corpus, "jaeger/otlp2jaeger-out.json")["83a9efd15c1c98a977e0711cc93ee28b"]
    assert len(t.spans) == 2 and t.spans[0].duration_us == 123 and t.spans[0].parent_id == "909541b92cf05311"

    t = _traces(corpus, "jaeger/ui_01.json")["0000000000000001"]
    span = {s.operation: s for s in t.spans}
    assert span["reference-test"].parent_id == "0000000000000002"  # not the other trace's 00ff
    [failed] = [s for s in t.spans if s.status == "error"]
    assert failed.attributes["error"] is True and failed.parent_id is None
    assert sum(s.status == "error" for s in t.spans) == 1 and t.services == {"service-x", "service-y"}


def test_tempo_istio_trace(corpus: Path) -> None:
    [t] = _traces(corpus, "kiali/responseTrace.json").values()
    assert t.trace_id == "3ba55609c3cde49649cd77d1f9dcd936"  # base64 id -> hex
    assert len(t.spans) == 8 and "reviews.bookinfo" in t.services
    [root] = t.roots
    assert root.service == "istio-ingressgateway.istio-system" and root.duration_us == 11932
    assert root.workload == WorkloadRef("istio-system", "istio-ingressgateway") and root.kind == "client"
    product = [s for s in t.spans if s.service == "productpage.bookinfo" and s.kind == "server"]
    assert product[0].workload == WorkloadRef("bookinfo", "productpage-v1")
    assert product[0].parent_id == root.span_id


def test_otlp_status_ids_and_stream() -> None:
    span = {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "", "name": "GET /cart", "kind": 2, "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000250000000", "status": {"code": 2},
            "attributes": [{"key": "http.status_code", "value": {"intValue": "503"}},
                           {"key": "node_id", "value": {"stringValue":
                                                        "sidecar~10.0.0.5~cart-v1-5d9c7b8f4d-abcde.shop~shop.svc.cluster.local"}}]}
    doc = {"result": {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "cart.shop"}}]}, "scopeSpans": [{"spans": [span]}]}]}}
    second = json.loads(json.dumps(doc))
    second["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(
        spanId="AAAAAAAAAAE=", parentSpanId="EEE19B7EC3C1B174", status={}, kind="SPAN_KIND_CLIENT",
        attributes=[{"key": "istio.canonical_service", "value": {"stringValue": "cart"}},
                    {"key": "istio.namespace", "value": {"stringValue": "shop"}}])
    [t] = parse_traces(json.dumps(doc) + "\n" + json.dumps(second), "traces/cart")
    a, b = sorted(t.spans, key=lambda s: s.span_id, reverse=True)
    assert a.span_id == "eee19b7ec3c1b174" and a.status == "error" and a.kind == "server"
    assert a.duration_us == 250000 and a.start_us == 1700000000000000 and a.attributes["http.status_code"] == 503
    assert a.workload == WorkloadRef("shop", "cart-v1")
    assert b.span_id == "0000000000000001" and b.parent_id == a.span_id and b.status == "unset"
    assert b.workload == WorkloadRef("shop", "cart") and b.kind == "client"
    assert norm_id("trace-123") == "trace-123"
    with pytest.raises(ValueError, match="traces/x"):
        parse_traces('{"resourceSpans": [', "traces/x")


def test_dependency_edges(corpus: Path) -> None:
    body = (corpus / "jaeger-traces/jaeger-ui/DependencyGraph__small.json").read_text()
    edges = jaeger.dependency_edges(Payload("dependencies", body=body), 300)
    e = next(e for e in edges if e.destination.name == "Service4")
    assert e.protocol == "dependency" and e.source == UNKNOWN_WORKLOAD
    assert e.source_service == ServiceRef("default", "Service2") and e.request_rate == pytest.approx(129216 / 300)
    istio = jaeger.dependency_edges(Payload("dependencies", body=json.dumps(
        {"data": [{"parent": "productpage.bookinfo", "child": "reviews.bookinfo", "callCount": 60}]})), 60)
    assert istio[0].destination == ServiceRef("bookinfo", "reviews") and istio[0].request_rate == 1.0


def test_duplicate_traces_across_searches_are_merged(corpus: Path) -> None:
    body = (corpus / "jaeger-traces/jaeger-ui/spansAmongEachOther.json").read_text()
    raw = _raw(Payload("traces/a", body=body, status=200), Payload("traces/b", body=body, status=200))
    assert len(jaeger.normalize(raw, CTX).traces) == 1


# -- fetch against a loopback Jaeger ---------------------------------------------------------

def _fetch(url: str, **kw: object) -> RawSource:
    c = jaeger.JaegerCollector(url=url, timeout_s=kw.pop("timeout_s", 2), **kw)  # type: ignore[arg-type]
    [raw] = c.fetch(FetchContext(time=T, window_s=300, config=validate({})))
    return raw


def _otlp_stream(corpus: Path) -> str:
    tempo = json.loads((corpus / "jaeger-traces/kiali/responseTrace.json").read_text())
    half = len(tempo["batches"]) // 2
    return "\n".join(json.dumps({"result": {"resourceSpans": chunk}})
                     for chunk in (tempo["batches"][:half], tempo["batches"][half:]))


def test_fetch_v3(corpus: Path) -> None:
    stream = _otlp_stream(corpus)

    def traces(path: str, headers: dict[str, str]) -> tuple[int, str]:
        svc = parse_qs(urlsplit(path).query)["query.service_name"][0]
        if svc == "ratings.bookinfo":
            return 404, '{"error":{"code":5,"message":"trace not found"}}'
        return 200, stream

    with LoopbackServer() as srv:
        srv.route("/api/v3/services", body=json.dumps(
            {"services": ["productpage.bookinfo", "reviews.bookinfo", "ratings.bookinfo"]}))
        srv.route("/api/v3/traces", handler=traces)
        small = corpus / "jaeger-traces/jaeger-ui/DependencyGraph__small.json"
        srv.route("/api/dependencies", body=small.read_text())
        raw = _fetch(srv.url, limit=7)
        queries = [parse_qs(urlsplit(p).query) for _, p, _ in srv.requests if p.startswith("/api/v3/traces")]
        deps = [parse_qs(urlsplit(p).query) for _, p, _ in srv.requests if p.startswith("/api/dependencies")]
    assert raw.meta == {"url": srv.url, "api": "v3"}
    assert [p.key for p in raw.payloads] == ["services", "dependencies", "traces/productpage.bookinfo",
                                             "traces/ratings.bookinfo", "traces/reviews.bookinfo"]
    assert all(p.meta["api"] == "v3" for p in raw.payloads)
    assert len(queries) == 3 and queries[0]["query.num_traces"] == ["7"]
    assert queries[0]["query.start_time_min"] == ["2026-11-21T11:55:00.000000Z"]
    assert queries[0]["query.start_time_max"] == ["2026-11-21T12:00:00.000000Z"]
    assert deps[0]["endTs"] == [str(int(T.timestamp() * 1000))] and deps[0]["lookback"] == ["300000"]
    part = jaeger.normalize(raw, CTX)
    assert part.sources[0].state is SourceState.OK, part.sources[0].message
    [t] = part.traces  # two searches returned it; the 404 search is "no traces"
    assert len(t.spans) == 8 and len(part.edges) == 7


def test_fetch_v1_fallback(corpus: Path) -> None:
    with LoopbackServer() as srv:
        srv.route("/api/services", body=json.dumps({"data": ["example-trace"], "total": 1}))
        srv.route("/api/traces", body=(corpus / "jaeger-traces/jaeger-ui/oltp2jaeger-multi-out.json").read_text())
        raw = _fetch(srv.url)
        paths = [p for _, p, _ in srv.requests]
    assert paths[0] == "/api/v3/services" and raw.meta["api"] == "v1"
    q = parse_qs(urlsplit(next(p for p in paths if p.startswith("/api/traces"))).query)
    assert q["service"] == ["example-trace"] and q["limit"] == ["20"]
    assert int(q["end"][0]) == int(T.timestamp() * 1e6) and int(q["end"][0]) - int(q["start"][0]) == 300_000_000
    part = jaeger.normalize(raw, CTX)
    assert part.sources[0].state is SourceState.OK and len(part.traces[0].spans) == 4
    assert raw.get("dependencies").status == 404 and part.edges == []  # no dependencies: not an error


def test_forced_v3_does_not_fall_back() -> None:
    with LoopbackServer() as srv:
        raw = _fetch(srv.url, api="v3")
    [st] = jaeger.normalize(raw, CTX).sources
    assert st.state is SourceState.ERROR and "404" in st.message


@pytest.mark.parametrize("case", ["truncated", "http500", "timeout", "unreachable", "services500"])
def test_fetch_failures_are_statuses(case: str) -> None:
    with LoopbackServer() as srv:
        srv.route("/api/v3/services", body=json.dumps({"services": ["cart.shop"]}))
        srv.route("/api/v3/traces", body='{"result": {"resourceSpans": [{"resource": ')
        if case == "http500":
            srv.route("/api/v3/traces", status=500, body="internal error")
        if case == "services500":
            srv.route("/api/v3/services", status=500, body="boom")
        if case == "timeout":
            srv.route("/api/v3/traces", body="{}", delay_s=1.5)
        url = f"http://127.0.0.1:{unused_port()}" if case == "unreachable" else srv.url
        raw = _fetch(url, timeout_s=0.5)
    [st] = jaeger.normalize(raw, CTX).sources
    assert st.state is SourceState.ERROR and st.name == "jaeger" and st.message.startswith("jaeger")
    expected = {"truncated": "not valid JSON", "http500": "HTTP 500", "timeout": "timed out",
                "unreachable": "connection refused", "services500": "HTTP 500"}[case]
    assert expected in st.message


def test_from_config() -> None:
    assert jaeger.from_config(validate({"sources": {}}), []) is None
    c = jaeger.from_config(validate({"sources": {"jaeger": {"url": "http://j:16686", "api": "v1", "limit": 5,
                                                            "timeout": "3s"}}}), [])
    assert c is not None and (c.url, c.api, c.limit, c.timeout_s) == ("http://j:16686", "v1", 5, 3.0)


def test_follows_from_reference_is_kept_for_the_critical_path(corpus: Path) -> None:
    """A span whose only in-trace parent link is FOLLOWS_FROM is marked so (async work the
    parent does not wait for); CHILD_OF wins when both are present."""
    text = (corpus / "jaeger-traces/jaeger-ui/TraceGraph__testTrace.json").read_text()
    raw = json.loads(text)
    follows = {s["spanID"] for s in raw["spans"]
               if [r["refType"] for r in s.get("references", [])] == ["FOLLOWS_FROM"]}
    assert follows, "the corpus trace has FOLLOWS_FROM-only spans"
    (trace,) = parse_traces(text, "testTrace")
    by_id = {s.span_id: s for s in trace.spans}
    for span_id in follows:
        assert by_id[norm_id(span_id)].ref_type == "FOLLOWS_FROM"
    (ui,) = parse_traces((corpus / "jaeger-traces/jaeger/ui_01.json").read_text(), "ui_01")
    assert {s.span_id: s.ref_type for s in ui.spans}[norm_id("0000000000000004")] == "CHILD_OF"
