"""Normalisation cost of the Kubernetes and Jaeger collectors at scale.

    .venv/bin/python benchmarks/bench_k8s_jaeger.py   # writes benchmarks/results/k8s_jaeger.json

* 5,000 pods / 1,000 services in one PodList/ServiceList (a large cluster) through
  ``kubernetes.normalize`` (service->workload matching is per namespace).
* The 4,271-link dependency graph from the corpus through ``jaeger.normalize``.
* 50 services x 20 traces x 30 spans of OTLP JSON (the collector's default bound).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshobs.collectors import jaeger, kubernetes  # noqa: E402
from meshobs.collectors.base import NormalizeContext  # noqa: E402
from meshobs.raw import Payload, RawSource  # noqa: E402
from tests.support.fake_kube import k8s_list, pod, service  # noqa: E402

CTX = NormalizeContext(datetime(2026, 11, 21, 12, 0, tzinfo=UTC), 300)
CORPUS = REPO.parent / "shared" / "corpus"


def timed(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def kube_raw(n_pods: int, n_services: int) -> RawSource:
    pods, services = [], []
    for i in range(n_pods):
        svc, ns = i % n_services, f"ns{i % 20}"
        pods.append(pod(ns, f"svc{svc}-v1-7bbd79f8fd-{i:05d}", owner=("ReplicaSet", f"svc{svc}-v1-7bbd79f8fd"),
                        labels={"app": f"svc{svc}", "version": "v1", "pod-template-hash": "7bbd79f8fd"}))
    for s in range(n_services):
        services.append(service(f"ns{s % 20}", f"svc{s}", {"app": f"svc{s}"}, [8080]))
    return RawSource("kubernetes", "kubernetes", payloads=[
        Payload("pods", body=json.dumps(k8s_list("PodList", pods)), status=200),
        Payload("services", body=json.dumps(k8s_list("ServiceList", services)), status=200)])


def jaeger_raw() -> RawSource:
    payloads = [Payload("services", body=json.dumps({"services": [f"s{i}" for i in range(50)]}), status=200,
                        meta={"api": "v3"})]
    for s in range(50):
        spans = []
        for t in range(20):
            for k in range(30):
                spans.append({"traceId": f"{s:08x}{t:024x}", "spanId": f"{k + 1:016x}",
                              "parentSpanId": f"{k:016x}" if k else "", "name": "GET /x", "kind": 2,
                              "startTimeUnixNano": str(1_700_000_000_000_000_000 + k * 1000),
                              "endTimeUnixNano": str(1_700_000_000_000_000_000 + k * 1000 + 5_000_000),
                              "attributes": [{"key": "http.status_code", "value": {"intValue": "200"}}]})
        body = {"result": {"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": f"s{s}"}}]}, "scopeSpans": [{"spans": spans}]}]}}
        payloads.append(Payload(f"traces/s{s}", body=json.dumps(body), status=200, meta={"api": "v3"}))
    deps = (CORPUS / "jaeger-traces/jaeger-ui/DependencyGraph__large.json").read_text()
    payloads.append(Payload("dependencies", body=deps, status=200, meta={"api": "v3"}))
    return RawSource("jaeger", "jaeger", payloads=payloads, meta={"url": "bench", "api": "v3"})


def main() -> None:
    kraw = kube_raw(5000, 1000)
    jraw = jaeger_raw()
    kpart = kubernetes.normalize(kraw, CTX)
    jpart = jaeger.normalize(jraw, CTX)
    results = {
        "kubernetes_normalize_5000_pods_1000_services_s": round(timed(lambda: kubernetes.normalize(kraw, CTX)), 4),
        "kubernetes_workloads": len(kpart.workloads), "kubernetes_services": len(kpart.services),
        "jaeger_normalize_1000_traces_30000_spans_4271_links_s": round(timed(lambda: jaeger.normalize(jraw, CTX)), 4),
        "jaeger_traces": len(jpart.traces), "jaeger_edges": len(jpart.edges),
        "python": sys.version.split()[0],
    }
    out = REPO / "benchmarks" / "results" / "k8s_jaeger.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
