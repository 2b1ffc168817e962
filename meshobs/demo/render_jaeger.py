"""Jaeger's view of a scenario: Istio sidecar spans (a client span on the caller's proxy and a
server span on the callee's, per hop) in OTLP JSON as ``/api/v3/traces`` returns it.

Traces are sampled from the same ``EdgeTraffic`` as the metrics: who calls whom and how often
per request (fan-out = outbound rps / inbound rps), response codes with the edge's fractions
(a failing hop makes its parent fail, a succeeding parent implies succeeding children), and
durations from the edge's latency profile, so metrics and traces tell the same story.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from meshobs.raw import Payload, RawSource, iso

from .render_kubernetes import PodSpec, pods
from .scenario import Scenario
from .traffic import EdgeTraffic

SERVER, CLIENT, INTERNAL = 2, 3, 1  # OTLP SpanKind
NOT_REACHED = ("UH", "UF", "UO", "UC", "NR")
MAX_SPANS = 300


def _svc(pod: PodSpec) -> str:
    """Istio's default tracing service name (APP_LABEL_AND_NAMESPACE): ``cart-service.shop``."""
    return f"{pod.workload.service}.{pod.namespace}"


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


@dataclass
class _Span:
    service: str
    span: dict[str, Any]


@dataclass
class _Trace:
    trace_id: str
    spans: list[_Span] = field(default_factory=list)


class _Generator:
    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.rng = random.Random(scenario.seed)
        self.pods: dict[tuple[str, str], list[PodSpec]] = defaultdict(list)
        for p in pods(scenario):
            self.pods[(p.namespace, p.workload.name)].append(p)
        # Mirrored requests (source_reported False) are fire-and-forget: not on the caller's trace.
        http = [e for e in scenario.edges if e.protocol != "tcp" and e.destination_workload and e.source_reported]
        self.inbound: dict[tuple[str, str], float] = defaultdict(float)
        self.outbound: dict[tuple[str, str], dict[tuple[str, str], list[EdgeTraffic]]] = defaultdict(
            lambda: defaultdict(list))
        for e in http:
            self.inbound[(e.destination_namespace, e.destination_workload or "")] += e.rps
            self.outbound[(e.source_namespace, e.source_workload)][
                (e.destination_namespace, e.destination_service)].append(e)
        self.roots = [e for e in http if (e.source_namespace, e.source_workload) not in self.inbound]

    def _id(self, bits: int) -> str:
        return format(self.rng.getrandbits(bits), f"0{bits // 4}x")

    def _pod(self, ns: str, workload: str) -> PodSpec | None:
        candidates = self.pods.get((ns, workload))
        return self.rng.choice(candidates) if candidates else None

    def _response(self, edge: EdgeTraffic, want: str) -> tuple[str, str]:
        """A response of ``edge``; ``want`` is ok | error | any (falls back to any)."""
        options = [(c, f, p) for c, f, p in edge.responses if want == "any" or
                   (want == "error") == (c.startswith("5") or c == "0")]
        options = options or list(edge.responses)
        code, flags, _ = self.rng.choices(options, weights=[p for *_, p in options])[0]
        return code, flags

    def _server_response(self, edge: EdgeTraffic, failed: bool) -> tuple[str, str]:
        """The callee's side of a call whose caller saw ``failed`` (its destination view)."""
        view = edge.destination_view
        assert view is not None
        options = [(c, f, p) for c, f, p in view.responses if failed == (c.startswith("5") or c == "0")]
        options = options or list(view.responses)
        code, flags, _ = max(options, key=lambda o: o[2])
        return code, flags

    def _duration_ms(self, p50: float, p99: float) -> float:
        sigma = math.log(max(p99, p50 * 1.0001) / p50) / 2.326347874
        return p50 * math.exp(self.rng.gauss(0.0, sigma))

    def _span(self, trace: _Trace, service: str, pod: PodSpec, name: str, kind: int, parent: str,
              start_ns: int, end_ns: int, attrs: list[dict[str, Any]], error: bool) -> str:
        span_id = self._id(64)
        w = pod.workload
        base = [_attr("node_id", pod.node_id), _attr("zone", "demo-zone-1"), _attr("component", "proxy"),
                _attr("istio.namespace", pod.namespace), _attr("istio.canonical_service", w.service),
                _attr("istio.canonical_revision", w.version), _attr("istio.mesh_id", "cluster.local")]
        span = {"traceId": trace.trace_id, "spanId": span_id, "parentSpanId": parent, "name": name,
                "kind": kind, "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns),
                "attributes": base + attrs, "status": {"code": 2} if error else {}}
        if not parent:
            del span["parentSpanId"]
        trace.spans.append(_Span(service, span))
        return span_id

    def hop(self, trace: _Trace, edge: EdgeTraffic, parent: str, start_ns: int, want: str,
            caller: PodSpec) -> tuple[int, bool]:
        """Spans of one call; returns (end time, failed)."""
        code, flags = self._response(edge, want)
        failed = code.startswith("5") or code == "0"
        callee = self._pod(edge.destination_namespace, edge.destination_workload or "")
        host = edge.destination_fqdn
        port = callee.workload.port if callee else 8080
        subset = edge.destination_version if len(self.outbound[(edge.source_namespace, edge.source_workload)][
            (edge.destination_namespace, edge.destination_service)]) > 1 else ""
        cluster = f"outbound|{port}|{subset}|{host}"
        operation = f"{host}:{port}/*"
        protocol = "HTTP/1.1" if edge.protocol == "http" else "HTTP/2"
        common = [_attr("http.method", "GET"), _attr("http.protocol", protocol),
                  _attr("http.url", f"http://{edge.destination_service}.{edge.destination_namespace}:{port}/api"),
                  _attr("http.status_code", code), _attr("response_flags", flags),
                  _attr("guid:x-request-id", self._id(128)), _attr("user_agent", "shop-client/1.0")]
        if callee is None or any(f in flags for f in NOT_REACHED) or len(trace.spans) > MAX_SPANS:
            end = start_ns + int(self._duration_ms(0.4, 3.0) * 1e6)
            self._span(trace, _svc(caller), caller, operation, CLIENT, parent, start_ns, end,
                       [*common, _attr("upstream_cluster", cluster), _attr("upstream_cluster.name", cluster),
                        _attr("peer.address", caller.ip)], failed)
            return end, failed
        client_id = self._id(64)  # reserve: children are made before the client span is known
        server_start = start_ns + 300_000
        cursor = server_start + 200_000
        children: list[tuple[EdgeTraffic, str]] = []
        server_id = self._id(64)
        app = self.s.app_spans.get(edge.destination_service)
        if app is not None:
            app_ms = self._duration_ms(app.latency.p50_ms, app.latency.p99_ms)
            app_end = cursor + int(app_ms * 1e6)
            # The application's own span (not a proxy's): no node_id, just what the app records.
            self._span(trace, _svc(callee), callee, app.name, INTERNAL,
                       server_id, cursor, app_end, [], False)
            trace.spans[-1].span["attributes"] = [_attr(k, v) for k, v in app.attributes]
            cursor = app_end + 100_000
        fan = self.outbound[(edge.destination_namespace, edge.destination_workload or "")]
        inbound = self.inbound[(edge.destination_namespace, edge.destination_workload or "")] or 1.0
        for _key, group in sorted(fan.items()):
            ratio = sum(e.rps for e in group) / inbound
            calls = int(ratio) + (1 if self.rng.random() < ratio - int(ratio) else 0)
            for _ in range(calls):
                child = self.rng.choices(group, weights=[e.rps for e in group])[0]
                children.append((child, "ok" if not failed else "any"))
        failed_child = False
        if failed and flags == "-" and children:
            erring = [i for i, (e, _) in enumerate(children) if e.error_fraction > 0]
            if erring:
                children[erring[0]] = (children[erring[0]][0], "error")
        for child, child_want in children:
            end, child_failed = self.hop(trace, child, server_id, cursor, child_want, callee)
            failed_child = failed_child or child_failed
            cursor = end + 150_000
        own = self._duration_ms(edge.latency.p50_ms, edge.latency.p99_ms)
        server_end = max(server_start + int(own * 1e6), cursor + 300_000)
        end = server_end + 300_000
        server_attrs = common
        if edge.destination_view is not None:  # the callee's proxy saw it differently (0 DC...)
            s_code, s_flags = self._server_response(edge, failed)
            server_attrs = [a for a in common if a["key"] not in ("http.status_code", "response_flags")]
            server_attrs += [_attr("http.status_code", s_code), _attr("response_flags", s_flags)]
        self._span(trace, _svc(callee), callee, operation, SERVER, client_id, server_start,
                   server_end, [*server_attrs, _attr("upstream_cluster", f"inbound|{port}||"),
                                _attr("upstream_cluster.name", f"inbound|{port}||"),
                                _attr("peer.address", caller.ip)], failed)
        trace.spans[-1].span["spanId"] = server_id
        self._span(trace, _svc(caller), caller, operation, CLIENT, parent, start_ns, end,
                   [*common, _attr("upstream_cluster", cluster), _attr("upstream_cluster.name", cluster),
                    _attr("upstream_host", f"{callee.ip}:{port}"), _attr("peer.address", caller.ip)], failed)
        trace.spans[-1].span["spanId"] = client_id
        return end, failed

    def traces(self) -> list[_Trace]:
        out: list[_Trace] = []
        if not self.roots:
            return out
        window_ns = int(self.s.window_s * 1e9)
        end_ns = int(self.s.time.timestamp() * 1e9)
        for _ in range(self.s.traces):
            trace = _Trace(self._id(128))
            root = self.rng.choices(self.roots, weights=[e.rps for e in self.roots])[0]
            caller = self._pod(root.source_namespace, root.source_workload)
            if caller is None:
                continue
            start = end_ns - window_ns + self.rng.randrange(window_ns - 5_000_000_000)
            ingress = self._id(64)
            end, failed = self.hop(trace, root, ingress, start + 200_000, "any", caller)
            host = self.s.ingress_host if caller.workload.gateway else root.destination_fqdn
            span = {"traceId": trace.trace_id, "spanId": ingress, "name": f"{host}/*", "kind": SERVER,
                    "startTimeUnixNano": str(start), "endTimeUnixNano": str(end + 200_000),
                    "attributes": [_attr("node_id", caller.node_id), _attr("component", "proxy"),
                                   _attr("istio.namespace", caller.namespace),
                                   _attr("istio.canonical_service", caller.workload.service),
                                   _attr("http.method", "GET"), _attr("http.url", f"http://{host}/"),
                                   _attr("http.status_code", "500" if failed else "200"),
                                   _attr("upstream_cluster", f"outbound|8080||{root.destination_fqdn}")],
                    "status": {"code": 2} if failed else {}}
            trace.spans.insert(0, _Span(_svc(caller), span))
            out.append(trace)
        return out


def _otlp(traces: list[_Trace]) -> dict[str, Any]:
    resource_spans = []
    for t in traces:
        by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in t.spans:
            by_service[s.service].append(s.span)
        for service, spans in by_service.items():
            resource_spans.append({"resource": {"attributes": [_attr("service.name", service)]},
                                   "scopeSpans": [{"scope": {}, "spans": spans}]})
    return {"result": {"resourceSpans": resource_spans}}


def jaeger_source(scenario: Scenario) -> RawSource:
    """The ``jaeger`` RawSource: services, traces per service (OTLP JSON), dependencies."""
    traces = _Generator(scenario).traces()
    raw = RawSource(name="jaeger", kind="jaeger", meta={"url": "demo", "api": "v3"})
    services = sorted({s.service for t in traces for s in t.spans})
    start = scenario.time.timestamp() - scenario.window_s
    params_time = {"query.start_time_min": iso(scenario.time.fromtimestamp(start, scenario.time.tzinfo)),
                   "query.start_time_max": iso(scenario.time)}
    when = iso(scenario.time)
    raw.add(Payload(key="services", body=json.dumps({"services": services}), status=200,
                    url="demo/api/v3/services", fetched_at=when, meta={"api": "v3"}))
    for service in services:
        mine = [t for t in traces if any(s.service == service for s in t.spans)]
        raw.add(Payload(key=f"traces/{service}", body=json.dumps(_otlp(mine), separators=(",", ":")),
                        status=200, url="demo/api/v3/traces",
                        params={"query.service_name": service, **params_time}, fetched_at=when,
                        meta={"api": "v3"}))
    calls: Counter[tuple[str, str]] = Counter()
    for t in traces:
        by_id = {s.span["spanId"]: s for t2 in [t] for s in t2.spans}
        for s in t.spans:
            parent = by_id.get(s.span.get("parentSpanId", ""))
            if parent and s.span["kind"] == SERVER and parent.service != s.service:
                calls[(parent.service, s.service)] += 1
    deps = [{"parent": p, "child": c, "callCount": n} for (p, c), n in sorted(calls.items())]
    raw.add(Payload(key="dependencies", body=json.dumps({"data": deps}), status=200,
                    url="demo/api/dependencies", fetched_at=when, meta={"api": "v3"}))
    return raw
