"""Benchmark: the security, workload and App Mesh analyzers on a generated cluster's manifests.

For each size N (workloads; 10 per namespace) the manifests hold, per namespace, a Namespace
(injected; one in ten ambient), and per workload a Deployment with its own service account, a
Service with two named ports, an AuthorizationPolicy naming three principals of the namespace
and a neighbour, a RequestAuthentication with an HTTPS JWKS; per namespace a Sidecar and a
STRICT PeerAuthentication; one App Mesh router with 10 targets per 100 workloads. The mesh is
valid, so every analyzer judges all of it and finds nothing (checked). Timed: parsing and
assembly once, then each analyzer alone (median of 3 runs in one process).

    .venv/bin/python benchmarks/bench_analyzers_sec.py [--sizes 1000,5000] [--note "..."]

Writes benchmarks/results/analyzers_sec.json and analyzers_sec.md. The machine is shared, so
quote medians and ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ANALYZERS = ("config.sidecar_conflict", "config.ambient_ineffective", "config.authz_identity",
             "config.authz_requires_mtls", "config.request_authentication", "config.namespace_injection",
             "config.proxy_image", "config.port_protocol", "appmesh.routes", "appmesh.references",
             "appmesh.tls_trust")


def manifests(n: int) -> str:
    docs: list[str] = []
    for ns_i in range(n // 10):
        ns = f"team-{ns_i:04d}"
        label = "istio.io/dataplane-mode: ambient" if ns_i % 10 == 9 else "istio-injection: enabled"
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{{label}}}}}\n")
        if ns_i % 10 != 9:
            docs.append("apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
                        f"metadata: {{name: default, namespace: {ns}}}\n"
                        "spec:\n  egress: [{hosts: ['./*', 'istio-system/*']}]\n")
        docs.append(f"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
                    f"metadata: {{name: default, namespace: {ns}}}\nspec:\n  mtls: {{mode: STRICT}}\n")
        neighbour = f"team-{(ns_i + 1) % (n // 10):04d}"
        for w in range(10):
            app = f"svc-{w}"
            docs.append(f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {app}, namespace: {ns}}}\n"
                        f"spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  template:\n"
                        f"    metadata: {{labels: {{app: {app}, version: v1}}}}\n"
                        f"    spec: {{serviceAccountName: {app}, containers: [{{name: app, image: 'img:1'}}]}}\n")
            docs.append(f"apiVersion: v1\nkind: Service\nmetadata: {{name: {app}, namespace: {ns}}}\n"
                        f"spec:\n  selector: {{app: {app}}}\n  ports: [{{name: http, port: 8080}}, "
                        f"{{name: grpc-admin, port: 9090}}]\n")
            callers = [f"cluster.local/ns/{ns}/sa/svc-{(w + 1) % 10}", f"cluster.local/ns/{ns}/sa/svc-{(w + 2) % 10}",
                       f"cluster.local/ns/{neighbour}/sa/svc-{w}"]
            docs.append(f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                        f"metadata: {{name: {app}, namespace: {ns}}}\n"
                        f"spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n"
                        f"  rules:\n  - from: [{{source: {{principals: [{', '.join(callers)}]}}}}]\n"
                        "    to: [{operation: {ports: ['8080']}}]\n")
            # Ambient pods have no Envoy of their own: their JWTs are the waypoint's.
            attach = ("  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]\n"
                      if ns_i % 10 == 9 else f"  selector: {{matchLabels: {{app: {app}}}}}\n")
            docs.append(f"apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
                        f"metadata: {{name: {app}, namespace: {ns}}}\nspec:\n{attach}"
                        "  jwtRules: [{issuer: 'https://id.example.com', "
                        "jwksUri: 'https://id.example.com/.well-known/jwks.json'}]\n")
    for r in range(max(1, n // 100)):
        nodes = [f"node-{r}-{t}" for t in range(10)]
        for name in nodes:
            docs.append("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\n"
                        f"metadata: {{name: {name}, namespace: fleet}}\n"
                        f"spec:\n  listeners: [{{portMapping: {{port: 8080, protocol: http}}}}]\n"
                        f"  serviceDiscovery: {{dns: {{hostname: {name}.fleet.svc.cluster.local}}}}\n")
        targets = ", ".join(f"{{virtualNodeRef: {{name: {name}}}, weight: 10}}" for name in nodes)
        docs.append("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\n"
                    f"metadata: {{name: router-{r}, namespace: fleet}}\n"
                    f"spec:\n  listeners: [{{portMapping: {{port: 8080, protocol: http}}}}]\n  routes:\n"
                    f"  - name: split\n    httpRoute:\n      match: {{prefix: /}}\n"
                    f"      action: {{weightedTargets: [{targets}]}}\n")
        docs.append("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\n"
                    f"metadata: {{name: vs-{r}, namespace: fleet}}\n"
                    f"spec:\n  provider: {{virtualRouter: {{virtualRouterRef: {{name: router-{r}}}}}}}\n")
    return "---\n".join(docs)


def measure(n: int) -> dict[str, object]:
    from meshobs.assemble import assemble
    from meshobs.checks.base import Settings
    from meshobs.checks.registry import REGISTRY
    from meshobs.collectors.base import NormalizeContext
    from meshobs.collectors.manifests import normalize, parse_located
    from meshobs.raw import Payload, RawSource

    at = datetime(2026, 2, 3, tzinfo=UTC)
    text = manifests(n)
    t0 = time.perf_counter()
    raw = RawSource(name="manifests", kind="manifests", meta={"layer": "live", "roots": ["."]})
    raw.add(Payload(key="cluster.yaml", url="file:///cluster.yaml", body=text))
    parse_located(text, "cluster.yaml")  # what read_manifest_tree does once per file
    snapshot = assemble(normalize(raw, NormalizeContext(time=at, window_s=300.0)), time=at, window_s=300.0)
    load_s = time.perf_counter() - t0
    timings: dict[str, float] = {}
    findings = 0
    for analyzer_id in ANALYZERS:
        analyzer = REGISTRY[analyzer_id]
        runs = []
        for _ in range(3):
            fresh = replace(snapshot)  # memoised indexes live on the snapshot: a new one per run
            t = time.perf_counter()
            found = list(analyzer.run(fresh, Settings()))
            runs.append(time.perf_counter() - t)
            findings += len(found)
        timings[analyzer_id] = round(statistics.median(runs), 4)
    assert findings == 0, "the generated mesh is valid: a finding is a bug"
    return {"workloads": n, "config": len(snapshot.config), "services": len(snapshot.services),
            "load_s": round(load_s, 2), "analyzer_s": timings, "total_s": round(sum(timings.values()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    rows = [measure(int(s)) for s in args.sizes.split(",")]
    load = os.getloadavg()
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, CPython "
              f"{platform.python_version()}", "load_average": [round(x, 1) for x in load], "note": args.note,
              "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analyzers_sec.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = ["# Security, workload and App Mesh analyzers", "",
             f"{result['date']}, {result['machine']}, load average {result['load_average']} (a shared 2-core "
             "machine: compare within one run). Generated valid manifests (see the module docstring); "
             "median of 3 runs per analyzer, each on a copy of the snapshot (no memoised index carried over).", "",
             "| workloads | config resources | load s | " + " | ".join(a.split(".", 1)[1] for a in ANALYZERS)
             + " | all s |", "|---" * (len(ANALYZERS) + 4) + "|"]
    for r in rows:
        timings = r["analyzer_s"]
        assert isinstance(timings, dict)
        lines.append(f"| {r['workloads']} | {r['config']} | {r['load_s']} | "
                     + " | ".join(f"{timings[a]:.3f}" for a in ANALYZERS) + f" | {r['total_s']} |")
    if args.note:
        lines += ["", args.note]
    (RESULTS / "analyzers_sec.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
