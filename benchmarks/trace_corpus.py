"""Istio-shaped traces as Jaeger serves them, for the trace benchmarks.

A freight mesh of its own (not the demo's shop): 24 services in three namespaces. Each trace is
a request entering at ``edge-gateway`` and fanning out 5-6 levels deep; every call between two
services is the two spans Istio's sidecars emit (the caller's outbound ``client`` span and the
callee's inbound ``server`` span) carrying the attributes Envoy's tracer writes (``node_id``,
``upstream_cluster``, ``http.*``, ``istio.*`` ...), and some services add an application span.
About 125 spans a trace. Timings are microseconds with millisecond-rounded clocks on a few
services (0 us spans and back-to-back calls occur, as in real traces).

The same traces are rendered two ways, byte for byte what a Jaeger query would answer:

* ``otlp_bodies``: ``/api/v3/traces`` (OTLP JSON, hex ids, one ``{"result": ...}`` object per
  trace streamed back to back), one body per searched service;
* ``v1_bodies``: ``/api/traces`` (Jaeger's UI model: ``{"data": [{traceID, spans, processes}]}``),
  which is what the Jaeger UI fetches and transforms.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

SERVICES = [
    ("edge-gateway", "ingress"), ("booking-api", "freight"), ("quote-engine", "freight"),
    ("tariff", "freight"), ("capacity", "freight"), ("route-planner", "freight"),
    ("geo-index", "freight"), ("fleet", "freight"), ("telematics", "freight"),
    ("customs", "freight"), ("hazmat-rules", "freight"), ("dock-scheduler", "freight"),
    ("invoice", "billing"), ("ledger", "billing"), ("fx-rates", "billing"),
    ("credit-check", "billing"), ("notify", "billing"), ("audit-log", "billing"),
    ("carrier-sync", "freight"), ("slot-cache", "freight"), ("weather", "freight"),
    ("document-store", "freight"), ("identity", "ingress"), ("rate-limit", "ingress"),
]


@dataclass
class GenSpan:
    span_id: str
    parent: str | None
    service: int
    name: str
    kind: int  # OTLP: 2 server, 3 client, 1 internal
    start_ns: int
    end_ns: int
    attrs: dict[str, str | int] = field(default_factory=dict)
    error: bool = False


def _pod(service: int, replica: int) -> tuple[str, str]:
    """The (pod name, pod IP) of one of a service's three replicas: fixed, as in a real mesh."""
    name, _ = SERVICES[service]
    rnd = random.Random(service * 7 + replica)
    pod = f"{name}-v1-{rnd.randrange(16**10):010x}-{rnd.randrange(36**5):05x}"
    return pod, f"10.{service}.{replica}.{rnd.randrange(256)}"


def _envoy_attrs(rnd: random.Random, caller: int, callee: int, status: int, outbound: bool,
                 request_id: str) -> dict[str, str | int]:
    me = caller if outbound else callee
    name, ns = SERVICES[me]
    cname, cns = SERVICES[callee]
    pod, ip = _pod(me, rnd.randrange(3))
    return {
        "node_id": f"sidecar~{ip}~{pod}.{ns}~{ns}.svc.cluster.local",
        "zone": "eu-west-1b", "component": "proxy",
        "guid:x-request-id": request_id,
        "http.url": f"http://{cname}.{cns}.svc.cluster.local:8080/v1/{cname}",
        "http.method": "POST" if rnd.random() < 0.3 else "GET", "http.protocol": "HTTP/1.1",
        "downstream_cluster": "-", "user_agent": "grpc-java-netty/1.58.0",
        "peer.address": _pod(caller, rnd.randrange(3))[1],
        "request_size": str(rnd.randrange(100, 4000)), "response_size": str(rnd.randrange(100, 40000)),
        "response_flags": "-" if status < 500 else "URX",
        "upstream_cluster": (f"outbound|8080||{cname}.{cns}.svc.cluster.local" if outbound
                             else "inbound|8080||"),
        "upstream_cluster.name": (f"outbound|8080||{cname}.{cns}.svc.cluster.local" if outbound
                                  else "inbound|8080||"),
        "http.status_code": str(status),
        "istio.canonical_revision": "v1", "istio.canonical_service": name, "istio.mesh_id": "cluster.local",
        "istio.namespace": ns,
    }


def make_trace(rnd: random.Random, index: int, target_spans: int = 125) -> list[GenSpan]:
    """One request tree of about ``target_spans`` spans."""
    base = 1_795_000_000_000_000_000 + index * 37_000_000_000
    ids = iter(range(1, 10_000))
    spans: list[GenSpan] = []
    request_id = f"{rnd.getrandbits(128):032x}"

    def sid() -> str:
        return f"{rnd.getrandbits(48):012x}{next(ids):04x}"

    def serve(service: int, caller_span: str | None, caller: int, start: int, depth: int, budget: list[int]) -> int:
        """The callee's server span and everything under it; returns its end time (ns)."""
        ms_clock = service % 5 == 0  # some services' tracers round to milliseconds
        server_id = sid()
        server = GenSpan(server_id, caller_span, service, f"{SERVICES[service][0]}.{SERVICES[service][1]}"
                         f".svc.cluster.local:8080/*", 2, start, start, {})
        spans.append(server)
        t = start + rnd.randrange(50_000, 2_000_000)
        calls = 0 if depth >= 5 or budget[0] <= 0 else rnd.choice([1, 2, 2, 3, 4])
        parallel = rnd.random() < 0.3
        group_start = t
        ends = []
        for _ in range(calls):
            if budget[0] <= 0:
                break
            budget[0] -= 2
            callee = rnd.randrange(1, len(SERVICES))
            cstart = group_start if parallel else t
            client_id = sid()
            client = GenSpan(client_id, server_id, service, server.name, 3, cstart, cstart, {})
            spans.append(client)
            cend = serve(callee, client_id, service, cstart + rnd.randrange(100_000, 400_000), depth + 1, budget)
            cend += rnd.randrange(50_000, 300_000)
            status = 503 if rnd.random() < 0.01 else 200
            client.end_ns = cend
            client.attrs = _envoy_attrs(rnd, service, callee, status, True, request_id)
            client.error = status >= 500
            ends.append(cend)
            t = cend if not parallel else max(t, cend)
        if rnd.random() < 0.25 and budget[0] > 0:  # an application span: a query or a cache lookup
            budget[0] -= 1
            app_end = t + rnd.randrange(0, 30_000_000)
            spans.append(GenSpan(sid(), server_id, service, rnd.choice(["SELECT", "cache.get", "render"]),
                                 1, t, app_end, {"db.system": "postgresql"}))
            t = app_end
        end = t + rnd.randrange(100_000, 3_000_000)
        if ms_clock:
            server.start_ns -= server.start_ns % 1_000_000
            end -= end % 1_000_000
            end = max(end, server.start_ns)
        server.end_ns = end
        server.attrs = _envoy_attrs(rnd, caller, service, 200, False, request_id)
        return end

    serve(0, None, 0, base, 0, [target_spans - 1])
    return spans


def corpus(n_traces: int = 2000, seed: int = 9) -> list[tuple[str, list[GenSpan]]]:
    rnd = random.Random(seed)
    return [(f"{rnd.getrandbits(128):032x}", make_trace(rnd, i)) for i in range(n_traces)]


def _otlp_value(v: str | int) -> dict[str, str]:
    return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}


def otlp_trace(trace_id: str, spans: list[GenSpan]) -> dict[str, object]:
    by_service: dict[int, list[GenSpan]] = {}
    for s in spans:
        by_service.setdefault(s.service, []).append(s)
    resource_spans = []
    for service, group in by_service.items():
        name, ns = SERVICES[service]
        resource_spans.append({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": f"{name}.{ns}"}}]},
            "scopeSpans": [{"scope": {"name": "envoy"}, "spans": [{
                "traceId": trace_id, "spanId": s.span_id, **({"parentSpanId": s.parent} if s.parent else {}),
                "name": s.name, "kind": s.kind,
                "startTimeUnixNano": str(s.start_ns), "endTimeUnixNano": str(s.end_ns),
                "attributes": [{"key": k, "value": _otlp_value(v)} for k, v in s.attrs.items()],
                "status": {"code": 2} if s.error else {},
            } for s in group]}],
        })
    return {"result": {"resourceSpans": resource_spans}}


def v1_trace(trace_id: str, spans: list[GenSpan]) -> dict[str, object]:
    processes: dict[str, dict[str, object]] = {}
    pid: dict[int, str] = {}
    for s in spans:
        if s.service not in pid:
            pid[s.service] = f"p{len(pid) + 1}"
            name, ns = SERVICES[s.service]
            processes[pid[s.service]] = {"serviceName": f"{name}.{ns}", "tags": []}
    kinds = {1: "internal", 2: "server", 3: "client"}
    return {"traceID": trace_id, "processes": processes, "warnings": None, "spans": [{
        "traceID": trace_id, "spanID": s.span_id, "operationName": s.name, "flags": 1,
        "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": s.parent}] if s.parent else [],
        "startTime": s.start_ns // 1000, "duration": (s.end_ns - s.start_ns) // 1000,
        "tags": [{"key": "span.kind", "type": "string", "value": kinds[s.kind]}]
                + [{"key": k, "type": "string", "value": str(v)} for k, v in s.attrs.items()]
                + ([{"key": "error", "type": "bool", "value": True}] if s.error else []),
        "logs": [], "processID": pid[s.service], "warnings": None,
    } for s in spans]}


def split(traces: list[tuple[str, list[GenSpan]]], searches: int) -> list[list[tuple[str, list[GenSpan]]]]:
    """The traces as ``searches`` service searches would return them (contiguous chunks)."""
    size = -(-len(traces) // searches)
    return [traces[i:i + size] for i in range(0, len(traces), size)]


def otlp_bodies(traces: list[tuple[str, list[GenSpan]]], searches: int = 20) -> list[str]:
    return ["\n".join(json.dumps(otlp_trace(t, s), separators=(",", ":")) for t, s in chunk)
            for chunk in split(traces, searches)]


def v1_bodies(traces: list[tuple[str, list[GenSpan]]], searches: int = 20) -> list[str]:
    return [json.dumps({"data": [v1_trace(t, s) for t, s in chunk], "total": len(chunk), "limit": 0,
                        "offset": 0, "errors": None}, separators=(",", ":")) for chunk in split(traces, searches)]
