"""X-Ray's view of demo traffic: the service graph and App Mesh Envoy trace segments, rendered as
the GetServiceGraph / GetTraceSummaries / BatchGetTraces payloads the collector fetches.

Nodes are named like App Mesh's Envoy names its segments, ``<mesh>/<virtualNode>`` (mesh = the
``mesh`` argument, default the workload's namespace); callers from outside the mesh are X-Ray's
``client`` node. Edge statistics: 2xx/3xx -> OkCount, 429 -> throttles, other 4xx -> errors,
5xx and "no response" -> faults; the histogram samples the edge's latency profile. Each trace
walks the call tree from an entry edge: the caller's segment holds a ``remote`` subsegment per
call, and the callee's segment is its child (parent_id = the subsegment's id), as Envoy does.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from meshobs.raw import Payload, RawSource, iso

from .traffic import EdgeTraffic

HISTOGRAM_POINTS = 100
MAX_DEPTH = 6


def _node(namespace: str, workload: str, mesh: str | None) -> str:
    return f"{mesh or namespace}/{workload}"


def _is_outside(edge: EdgeTraffic) -> bool:
    return edge.source_service == "unknown"


def _stats(edge: EdgeTraffic, window_s: float) -> dict[str, Any]:
    total = edge.rps * window_s
    ok = throttle = error = fault = 0.0
    for code, _flags, fraction in edge.responses:
        n = total * fraction
        if code == "429":
            throttle += n
        elif code.startswith("4"):
            error += n
        elif code.startswith(("2", "3")):
            ok += n
        else:
            fault += n
    mean_s = edge.latency.p50_ms * math.exp(edge.latency.sigma ** 2 / 2) / 1000.0
    per_point = total / HISTOGRAM_POINTS
    histogram = [{"Value": round(edge.latency.quantile((i + 0.5) / HISTOGRAM_POINTS) / 1000.0, 6),
                  "Count": round(per_point)} for i in range(HISTOGRAM_POINTS)]
    return {"SummaryStatistics": {
        "OkCount": round(ok), "ErrorStatistics": {"ThrottleCount": round(throttle), "OtherCount": round(error),
                                                  "TotalCount": round(throttle + error)},
        "FaultStatistics": {"OtherCount": round(fault), "TotalCount": round(fault)},
        "TotalCount": round(total), "TotalResponseTime": round(total * mean_s, 6)},
        "ResponseTimeHistogram": [h for h in histogram if h["Count"] > 0], "Aliases": []}


def service_graph(edges: list[EdgeTraffic], time: datetime, window_s: float, mesh: str | None = None) -> dict:
    """A GetServiceGraph response body for the traffic."""
    start, end = iso(time - timedelta(seconds=window_s)), iso(time)
    refs: dict[str, int] = {}
    services: dict[str, dict[str, Any]] = {}

    def ref(name: str, kind: str) -> int:
        if name not in refs:
            refs[name] = len(refs)
            services[name] = {"ReferenceId": refs[name], "Name": name, "Names": [name], "Type": kind,
                              "State": "active", "Root": kind == "client", "StartTime": start, "EndTime": end,
                              "Edges": []}
        return refs[name]

    for edge in edges:
        if edge.destination_workload is None or edge.rps <= 0:
            continue
        src = "client" if _is_outside(edge) else _node(edge.source_namespace, edge.source_workload, mesh)
        ref(src, "client" if src == "client" else "AWS::AppMesh::Proxy")
        dst = ref(_node(edge.destination_namespace, edge.destination_workload, mesh), "AWS::AppMesh::Proxy")
        services[src]["Edges"].append({"ReferenceId": dst, "StartTime": start, "EndTime": end,
                                       **_stats(edge, window_s)})
    return {"Services": list(services.values()), "StartTime": start, "EndTime": end,
            "ContainsOldGroupVersions": False}


def _trace(rng: random.Random, entry: EdgeTraffic, out_edges: dict[tuple[str, str], list[EdgeTraffic]],
           t0: float, trace_id: str, mesh: str | None) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []

    def hop(edge: EdgeTraffic, start: float, parent: str | None, depth: int) -> tuple[float, bool]:
        """Emit the callee's segment; returns (end time, failed)."""
        assert edge.destination_workload is not None
        duration = edge.latency.quantile(min(0.999, max(0.001, rng.random()))) / 1000.0
        roll, acc, code = rng.random(), 0.0, "200"
        for c, _flags, fraction in edge.responses:
            acc += fraction
            if roll <= acc:
                code = c
                break
        seg_id = f"{rng.getrandbits(64):016x}"
        subsegments: list[dict[str, Any]] = []
        callee = (edge.destination_namespace, edge.destination_workload)
        cursor = start + duration * 0.1
        if depth < MAX_DEPTH and code.startswith("2"):
            by_service: dict[str, list[EdgeTraffic]] = defaultdict(list)
            for e in out_edges.get(callee, []):
                by_service[e.destination_service].append(e)
            for candidates in by_service.values():
                chosen = rng.choices(candidates, weights=[max(e.rps, 1e-9) for e in candidates])[0]
                if chosen.destination_workload is None:
                    continue
                sub_id = f"{rng.getrandbits(64):016x}"
                end, _failed = hop(chosen, cursor + 0.0005, sub_id, depth + 1)
                subsegments.append({"id": sub_id, "name": f"{chosen.destination_service}", "namespace": "remote",
                                    "start_time": cursor, "end_time": end + 0.0005,
                                    "http": {"request": {"method": "GET",
                                                         "url": f"http://{chosen.destination_fqdn}:8080/"}}})
                cursor = end + 0.001
        end = max(start + duration, cursor)
        status = 503 if code == "0" or not code[:1].isdigit() else int(code)
        node = _node(*callee, mesh)
        doc: dict[str, Any] = {
            "id": seg_id, "trace_id": trace_id, "name": node, "origin": "AWS::AppMesh::Proxy",
            "start_time": round(start, 6), "end_time": round(end, 6),
            "http": {"request": {"method": "GET", "url": f"http://{edge.destination_fqdn}:8080/"},
                     "response": {"status": status}},
            "aws": {"app_mesh": {"mesh_name": node.split("/")[0], "virtual_node_name": node.split("/")[1]}},
            "subsegments": subsegments}
        if parent:
            doc["parent_id"] = parent
        if status >= 500:
            doc["fault"] = True
        elif status == 429:
            doc["throttle"] = doc["error"] = True
        elif status >= 400:
            doc["error"] = True
        docs.append(doc)
        return end, status >= 500

    hop(entry, t0, None, 0)
    return docs


def xray_source(edges: Iterable[EdgeTraffic], time: datetime, window_s: float, *, mesh: str | None = None,
                traces: int = 30, seed: int = 7) -> RawSource:
    """The RawSource the X-Ray collector would have fetched for this traffic."""
    edges = [e for e in edges if e.protocol != "tcp"]
    rng = random.Random(seed)
    raw = RawSource(name="xray", kind="xray", meta={"demo": True})
    start, end = iso(time - timedelta(seconds=window_s)), iso(time)
    raw.add(Payload("GetServiceGraph/0", body=json.dumps(service_graph(edges, time, window_s, mesh)), status=200,
                    params={"StartTime": start, "EndTime": end}, fetched_at=end))
    out_edges: dict[tuple[str, str], list[EdgeTraffic]] = defaultdict(list)
    for e in edges:
        out_edges[(e.source_namespace, e.source_workload)].append(e)
    entries = [e for e in edges if _is_outside(e) and e.destination_workload] or \
        [e for e in edges if e.destination_workload][:1]
    all_traces = []
    for i in range(traces if entries else 0):
        entry = rng.choices(entries, weights=[max(e.rps, 1e-9) for e in entries])[0]
        t0 = time.timestamp() - window_s + (i + 0.5) * window_s / max(traces, 1)
        trace_id = f"1-{int(t0):08x}-{rng.getrandbits(96):024x}"
        docs = _trace(rng, entry, out_edges, t0, trace_id, mesh)
        duration = max(d["end_time"] for d in docs) - min(d["start_time"] for d in docs)
        all_traces.append({"Id": trace_id, "Duration": round(duration, 6), "LimitExceeded": False,
                           "Segments": [{"Id": d["id"], "Document": json.dumps(d)} for d in docs]})
    summaries = [{"Id": t["Id"], "Duration": t["Duration"], "HasFault": any('"fault"' in s["Document"]
                                                                            for s in t["Segments"])}
                 for t in all_traces]
    raw.add(Payload("GetTraceSummaries/0", body=json.dumps({"TraceSummaries": summaries,
                                                            "TracesProcessedCount": len(summaries)}),
                    status=200, params={"StartTime": start, "EndTime": end, "Sampling": False}, fetched_at=end))
    for n, first in enumerate(range(0, len(all_traces), 5)):
        chunk = all_traces[first:first + 5]
        raw.add(Payload(f"BatchGetTraces/{n}", body=json.dumps({"Traces": chunk, "UnprocessedTraceIds": []}),
                        status=200, params={"TraceIds": [t["Id"] for t in chunk]}, fetched_at=end))
    return raw
