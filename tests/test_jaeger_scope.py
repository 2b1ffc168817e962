"""Jaeger searches what the question is about: the diagnosed service and its neighbourhood, or
mesh-wide the busiest services first; budget, deadline and truncation said in the status."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from meshobs.collectors import jaeger
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.collectors.trace_plan import BUSIEST, NEIGHBOUR, ROTATION, TARGET, plan_searches
from meshobs.config import validate
from meshobs.model import ServiceRef, SourceState
from meshobs.raw import RawSource
from tests.support.loopback import LoopbackServer

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CTX = NormalizeContext(T, 300)
# a freight mesh of 1,000 services: svc-000 ... svc-999 in three namespaces, plus the diagnosed
# neighbourhood: booking-api calls quote-engine and tariff, and edge-gateway calls it
NAMES = [f"svc-{i:03d}.{('freight', 'billing', 'ingress')[i % 3]}" for i in range(1000)]
NAMES += ["booking-api.freight", "quote-engine.freight", "tariff.freight", "edge-gateway.ingress"]
BOOKING = ServiceRef("freight", "booking-api")
SCOPE = Scope(target=BOOKING, services=frozenset({BOOKING, ServiceRef("freight", "quote-engine"),
                                                  ServiceRef("freight", "tariff"),
                                                  ServiceRef("ingress", "edge-gateway")}))


def _otlp(service: str, traces: int) -> str:
    """``traces`` one-span traces of ``service`` as Jaeger's v3 stream answers them."""
    return "\n".join(json.dumps({"result": {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{"traceId": f"{abs(hash(service)) % 10**8:08x}{i:024x}", "spanId": f"{i + 1:016x}",
                                   "name": "GET /", "kind": 2, "startTimeUnixNano": "1795000000000000000",
                                   "endTimeUnixNano": "1795000000020000000"}]}]}]}}) for i in range(traces))


def _serve(srv: LoopbackServer, names: list[str], per_service: int = 3, links: list[dict] | None = None) -> None:
    srv.route("/api/v3/services", body=json.dumps({"services": names}))
    srv.route("/api/dependencies", body=json.dumps({"data": links or []}))

    def traces(path: str, headers: dict[str, str]) -> tuple[int, str]:
        service = parse_qs(urlsplit(path).query)["query.service_name"][0]
        return 200, _otlp(service, per_service)

    srv.route("/api/v3/traces", handler=traces)


def _searched(srv: LoopbackServer) -> list[str]:
    return [parse_qs(urlsplit(p).query)["query.service_name"][0]
            for _, p, _ in srv.requests if p.startswith("/api/v3/traces")]


def _fetch(url: str, scope: Scope | None = None, deadline: float | None = None, phase: str = "all",
           **section: object) -> list[RawSource]:
    config = validate({"sources": {"jaeger": {"url": url, **section}}})
    collector = jaeger.from_config(config, [])
    assert collector is not None
    return collector.fetch(FetchContext(time=T, window_s=300, config=config, scope=scope, deadline=deadline,
                                        phase=phase))


def test_a_diagnosis_searches_its_service_first_then_its_neighbourhood() -> None:
    with LoopbackServer() as srv:
        _serve(srv, NAMES)
        [raw] = _fetch(srv.url, SCOPE, phase="scoped")
        searched = _searched(srv)
    # not the first 50 alphabetically: the diagnosed service and its three neighbours, nothing else
    assert sorted(searched) == ["booking-api.freight", "edge-gateway.ingress", "quote-engine.freight",
                                "tariff.freight"]
    plan = raw.get("services").meta["plan"]  # type: ignore[union-attr]
    assert plan["searches"][0] == ["booking-api.freight", TARGET] and plan["mode"] == "scoped"
    part = jaeger.normalize(raw, CTX)
    assert part.sources[0].state is SourceState.OK
    assert "booking-api" in part.sources[0].message and "3 neighbour" in part.sources[0].message
    assert {s.service for t in part.traces for s in t.spans} == set(searched)


def test_the_budget_keeps_the_target_and_says_what_it_left_out() -> None:
    with LoopbackServer() as srv:
        _serve(srv, NAMES)
        [raw] = _fetch(srv.url, SCOPE, phase="scoped", max_services=2)
        searched = _searched(srv)
    assert "booking-api.freight" in searched and len(searched) == 2
    status = jaeger.normalize(raw, CTX).sources[0]
    assert "2 service(s) not searched" in status.message and "max_services" in status.message


def test_a_target_the_tracer_does_not_know_is_said_not_guessed() -> None:
    scope = Scope(target=ServiceRef("freight", "customs"), services=frozenset({ServiceRef("freight", "customs")}))
    with LoopbackServer() as srv:
        _serve(srv, NAMES)
        [raw] = _fetch(srv.url, scope, phase="scoped")
        assert _searched(srv) == []
    status = jaeger.normalize(raw, CTX).sources[0]
    assert status.state is SourceState.NO_DATA and "freight/customs" in status.message


def test_mesh_wide_searches_the_busiest_services_first_and_reports_the_rest() -> None:
    links = [{"parent": "edge-gateway.ingress", "child": "booking-api.freight", "callCount": 9000},
             {"parent": "booking-api.freight", "child": "tariff.freight", "callCount": 4000},
             {"parent": "svc-007.billing", "child": "svc-501.freight", "callCount": 10}]
    with LoopbackServer() as srv:
        _serve(srv, NAMES, links=links)
        [raw] = _fetch(srv.url, max_services=10)
        searched = _searched(srv)
    planned = [n for n, _ in raw.get("services").meta["plan"]["searches"]]  # type: ignore[union-attr]
    assert sorted(searched) == sorted(planned) and len(planned) == 10
    assert planned[:3] == ["booking-api.freight", "edge-gateway.ingress", "tariff.freight"]
    assert set(planned[3:5]) == {"svc-007.billing", "svc-501.freight"}
    status = jaeger.normalize(raw, CTX).sources[0]
    assert status.state is SourceState.OK
    assert "searched 10 of 1004 services" in status.message and "994 service(s) not searched" in status.message


def test_mesh_wide_rotation_covers_other_services_in_the_next_window() -> None:
    first = plan_searches(NAMES, None, 50, {}, rotation=0)
    later = plan_searches(NAMES, None, 50, {}, rotation=1)
    assert {r for _, r in first.searches} == {ROTATION}
    assert first.searches != later.searches and first.not_searched == 954
    # over enough windows every service is searched
    covered = {n for k in range(0, 1004, 50) for n, _ in plan_searches(NAMES, None, 50, {}, rotation=k).searches}
    assert covered == set(NAMES)


def test_plan_roles_and_small_meshes() -> None:
    plan = plan_searches(["a.x", "b.x"], None, 50, {"b.x": 3})
    assert plan.searches == [("b.x", BUSIEST), ("a.x", ROTATION)] and plan.not_searched == 0
    scoped = plan_searches(NAMES, SCOPE, 50)
    assert [r for _, r in scoped.searches] == [TARGET, NEIGHBOUR, NEIGHBOUR, NEIGHBOUR]


def test_a_search_that_returns_the_limit_is_reported_as_truncated() -> None:
    with LoopbackServer() as srv:
        _serve(srv, ["booking-api.freight", "tariff.freight"], per_service=5)
        [raw] = _fetch(srv.url, limit=5)
    status = jaeger.normalize(raw, CTX).sources[0]
    assert status.state is SourceState.OK
    assert "2 search(es) returned the limit of 5 traces" in status.message and "sources.jaeger.limit" in status.message


def test_a_complete_small_mesh_has_nothing_to_say() -> None:
    with LoopbackServer() as srv:
        _serve(srv, ["booking-api.freight", "tariff.freight"], per_service=3)
        [raw] = _fetch(srv.url, limit=5)
    status = jaeger.normalize(raw, CTX).sources[0]
    assert (status.state, status.message) == (SourceState.OK, "")


def test_searches_past_the_deadline_are_not_sent_and_said() -> None:
    with LoopbackServer() as srv:
        _serve(srv, NAMES)
        srv.route("/api/dependencies", body='{"data": []}', delay_s=0.5)
        start = time.monotonic()
        [raw] = _fetch(srv.url, SCOPE, deadline=time.monotonic() + 0.6, phase="scoped")
        elapsed = time.monotonic() - start
        assert _searched(srv) == []
    assert elapsed < 2.0
    status = jaeger.normalize(raw, CTX).sources[0]
    assert "4 search(es) not sent: the run's deadline passed" in status.message


def test_nothing_in_the_graph_phase_and_lookback_widens_the_search() -> None:
    with LoopbackServer() as srv:
        _serve(srv, ["booking-api.freight"])
        assert _fetch(srv.url, SCOPE, phase="graph") == []
        assert srv.requests == []
        _fetch(srv.url, lookback="1h")
        q = parse_qs(urlsplit(next(p for _, p, _ in srv.requests if p.startswith("/api/v3/traces"))).query)
    assert q["query.start_time_min"] == ["2026-11-21T11:00:00.000000Z"]
