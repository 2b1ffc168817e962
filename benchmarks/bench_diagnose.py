"""Benchmark: ``diagnose`` and ``diagnose --all`` on generated meshes replayed from bundles,
and live through a real Prometheus.

For each size (100 / 1,000 / 5,000 services by default) a child process generates the mesh
(``meshobs.demo.catalog.load_demo("generated-N")``), writes it as a bundle, then measures:

- replay: ``read_bundle`` + ``build_snapshot`` (every source's normalize, assembly);
- diagnose: one frontend service, its checklist plus the downstream walk for root causes;
- diagnose --all: every service of the mesh;
- peak memory: tracemalloc's peak during ``diagnose_all`` (Python allocations of the engine
  alone) and the child's ``ru_maxrss`` (the whole process: snapshot included).

The generated meshes hold no VirtualService or PeerAuthentication, so the drift and mTLS
checks return early there. ``--config-heavy 1000`` adds them (a live and an intended
VirtualService and a DestinationRule per service, 8 weighted Envoy routes per proxy, a STRICT
mesh-wide PeerAuthentication) and times those checks over every service.

The live variant (``--live 1000``) backfills a loopback Prometheus 2.42 with the same mesh's
Istio metrics (promtool) and times collect (PromQL over HTTP) + normalise + ``diagnose_all``.

    .venv/bin/python benchmarks/bench_diagnose.py [--sizes 100,1000,5000] [--live 1000] [--config-heavy 1000]
        [--note "what changed since the last run"]

Writes benchmarks/results/diagnose.json and diagnose.md. Each child is a fresh process, so
one size's memory does not inflate the next.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _frontend(snapshot: object) -> object:
    from meshobs.model import MeshSnapshot

    assert isinstance(snapshot, MeshSnapshot)
    return next(s.ref for s in sorted(snapshot.services, key=lambda s: s.ref) if s.name.startswith("web-"))


def measure_replay(n: int) -> dict[str, object]:
    """Runs in the child: generate, write, replay, diagnose."""
    from meshobs.bundle import read_bundle, write_bundle
    from meshobs.collect import build_snapshot
    from meshobs.demo.catalog import load_demo
    from meshobs.engine import diagnose, diagnose_all
    from meshobs.model import ServiceRef

    t0 = time.perf_counter()
    bundle = load_demo(f"generated-{n}")
    generate_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="bench-diag-") as tmp:
        path = write_bundle(bundle, Path(tmp) / f"generated-{n}.tar.gz")
        bundle_mb = path.stat().st_size / 1e6
        del bundle
        t0 = time.perf_counter()
        snapshot = build_snapshot(read_bundle(path), origin=str(path))
        replay_s = time.perf_counter() - t0
    target = _frontend(snapshot)
    assert isinstance(target, ServiceRef)
    t0 = time.perf_counter()
    one = diagnose(snapshot, target)
    one_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mesh = diagnose_all(snapshot)
    all_s = time.perf_counter() - t0
    # Peak memory of the engine alone, in a second pass (tracemalloc slows the run down).
    tracemalloc.start()
    diagnose_all(snapshot)
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "services": len(snapshot.services), "workloads": len(snapshot.workloads),
        "edges": len(snapshot.edges), "proxies": len(snapshot.proxies), "traces": len(snapshot.traces),
        "sources": len(snapshot.sources), "bundle_mb": round(bundle_mb, 1),
        "generate_s": round(generate_s, 2), "replay_s": round(replay_s, 2),
        "diagnose_one_s": round(one_s, 3), "diagnose_one_target": str(target),
        "diagnose_one_findings": len(one.findings),
        "diagnose_all_s": round(all_s, 2),
        "diagnose_all_ms_per_service": round(1000 * all_s / max(1, len(mesh.reports)), 2),
        "diagnose_all_findings": len(mesh.findings), "diagnose_all_status": mesh.status,
        "engine_peak_mb_tracemalloc": round(peak / 1e6, 1),
        "process_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


CONFIG_HEAVY_CHECKS = ("config.weight_drift", "config.policy_drift", "config.intended_drift",
                       "config.split_mismatch", "certs.mtls_conflict", "certs.plaintext_edge", "proxy.restarting")


def measure_config_heavy(n: int) -> dict[str, object]:
    """Runs in the child: generated-N plus Istio config and Envoy routes; time the config checks."""
    import random
    from dataclasses import replace

    from meshobs.checks.base import Analyzer, Settings
    from meshobs.checks.registry import REGISTRY
    from meshobs.collect import build_snapshot
    from meshobs.demo.catalog import load_demo
    from meshobs.engine import diagnose_all
    from meshobs.model import ConfigResource, HttpRoute, Layer, frozen_map
    from meshobs.model.proxy import RouteDestination

    snapshot = build_snapshot(load_demo(f"generated-{n}"), origin=f"generated-{n}")
    rnd = random.Random(7)
    services = sorted(snapshot.services, key=lambda s: s.ref)
    config = list(snapshot.config)

    def vs(name: str, namespace: str, layer: Layer, v1: int) -> ConfigResource:
        route = [{"destination": {"host": name, "subset": "v1"}, "weight": v1},
                 {"destination": {"host": name, "subset": "v2"}, "weight": 100 - v1}]
        return ConfigResource("VirtualService", namespace, name, frozen_map(
            {"hosts": [name], "http": [{"name": "default", "route": route, "timeout": "3s",
                                        "retries": {"attempts": 2, "perTryTimeout": "1s"}}]}), layer=layer)

    for s in services:
        config.append(vs(s.name, s.namespace, Layer.LIVE, 80))
        config.append(vs(s.name, s.namespace, Layer.INTENDED, 90 if rnd.random() < 0.2 else 80))
        mode = "DISABLE" if rnd.random() < 0.1 else "ISTIO_MUTUAL"
        config.append(ConfigResource("DestinationRule", s.namespace, f"{s.name}-dr", frozen_map(
            {"host": s.name, "trafficPolicy": {"tls": {"mode": mode}},
             "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]})))
    config.append(ConfigResource("PeerAuthentication", "istio-system", "default",
                                 frozen_map({"mtls": {"mode": "STRICT"}})))
    proxies = []
    for proxy in snapshot.proxies:
        routes = list(proxy.routes)
        for s in rnd.sample(services, 8):
            v1 = 50 if rnd.random() < 0.05 else 80
            split = (RouteDestination(f"outbound|80|v1|{s.fqdn}", v1),
                     RouteDestination(f"outbound|80|v2|{s.fqdn}", 100 - v1))
            routes.append(HttpRoute("80", f"{s.fqdn}:80", (s.fqdn,), "default", frozen_map({}), split,
                                    timeout_s=3.0, retry_attempts=2, per_try_timeout_s=1.0))
        proxies.append(replace(proxy, routes=tuple(routes)))
    snapshot = replace(snapshot, config=tuple(config), proxies=tuple(proxies))
    settings, times, findings = Settings(), {}, 0
    for check_id in CONFIG_HEAVY_CHECKS:
        t0 = time.perf_counter()
        chk = REGISTRY[check_id]
        if isinstance(chk, Analyzer):  # runs once over the mesh
            findings += len(list(chk.run(snapshot, settings)))
        else:
            findings += sum(len(list(chk.run(snapshot, s.ref, settings))) for s in services)
        times[check_id] = round(time.perf_counter() - t0, 3)
    fresh = replace(snapshot)  # no indexes built yet: --all pays for them once
    t0 = time.perf_counter()
    mesh = diagnose_all(fresh)
    return {"services": len(services), "proxies": len(proxies), "config": len(config),
            "envoy_routes": sum(len(p.routes) for p in proxies), "check_s": times, "check_findings": findings,
            "diagnose_all_s": round(time.perf_counter() - t0, 2), "diagnose_all_findings": len(mesh.findings)}


def measure_live(n: int) -> dict[str, object]:
    """Runs in the child: a real Prometheus holding the mesh's metrics; collect + diagnose."""
    from meshobs.collect import build_snapshot, collect
    from meshobs.config import validate
    from meshobs.demo.prometheus import openmetrics
    from meshobs.demo.promserver import prometheus_available, start_prometheus
    from meshobs.demo.scale import generated_traffic
    from meshobs.engine import diagnose, diagnose_all
    from meshobs.model import ServiceRef

    if not prometheus_available():
        return {"skipped": "prometheus/promtool not installed"}
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    window = 300.0
    traffic = generated_traffic(n)
    text = openmetrics(traffic, when, window, step_s=window / 2, history_s=window)
    with tempfile.TemporaryDirectory(prefix="bench-diag-live-") as tmp:
        t0 = time.perf_counter()
        server = start_prometheus(text, Path(tmp))
        del text
        start_s = time.perf_counter() - t0
        with server:
            config = validate({"time": when.isoformat(), "window": "5m",
                               "sources": {"prometheus": {"url": server.url, "timeout": "120s"}}})
            collect(config)  # warm-up: the first queries load the blocks' index
            t0 = time.perf_counter()
            bundle = collect(config)
            collect_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            snapshot = build_snapshot(bundle, origin="live")
            normalize_s = time.perf_counter() - t0
    assert all(s.ok for s in snapshot.sources), [s.message for s in snapshot.sources]
    target = _frontend(snapshot)
    assert isinstance(target, ServiceRef)
    t0 = time.perf_counter()
    diagnose(snapshot, target)
    one_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mesh = diagnose_all(snapshot)
    all_s = time.perf_counter() - t0
    return {
        "services": len(snapshot.services), "edges": len(snapshot.edges),
        "backfill_and_start_s": round(start_s, 2), "collect_s": round(collect_s, 2),
        "normalize_s": round(normalize_s, 2), "diagnose_one_s": round(one_s, 3),
        "diagnose_all_s": round(all_s, 2),
        "end_to_end_one_service_s": round(collect_s + normalize_s + one_s, 2),
        "diagnose_all_findings": len(mesh.findings),
        "skipped_checks_per_service": sum(1 for c in mesh.reports[0].checks if c.status == "skipped"),
        "process_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def child(kind: str, n: int) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n)], capture_output=True,
                         text=True, timeout=3600, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-1500:]}
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--live", type=int, default=1000, help="0 to skip the Prometheus run")
    parser.add_argument("--config-heavy", type=int, default=0,
                        help="N: also time the config/mTLS checks on generated-N with Istio config added")
    parser.add_argument("--note", default="", help="what changed since the previous run (kept in the results)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n = args.child[0], int(args.child[1])
        measure = {"replay": measure_replay, "live": measure_live, "config": measure_config_heavy}[kind]
        print(json.dumps(measure(n)))
        return 0
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    replay = {}
    for n in (int(x) for x in args.sizes.split(",") if x):
        print(f"replay {n} services...", file=sys.stderr)
        replay[str(n)] = {**child("replay", n), "measured": f"this run ({today})"}
    live = None
    if args.live:
        print(f"live through Prometheus, {args.live} services...", file=sys.stderr)
        live = {**child("live", args.live), "measured": f"this run ({today})"}
    heavy = None
    if args.config_heavy:
        print(f"config-heavy {args.config_heavy} services...", file=sys.stderr)
        heavy = {str(args.config_heavy): {**child("config", args.config_heavy), "measured": f"this run ({today})"}}
    # Sizes not re-run this time keep their previous results (runs at 5,000 take minutes),
    # marked with the date of the run that measured them.
    previous_file = RESULTS / "diagnose.json"
    notes: list[str] = []
    if previous_file.is_file():
        previous = json.loads(previous_file.read_text(encoding="utf-8"))
        earlier = previous.get("date", "an earlier run")
        earlier_run = f"earlier run ({earlier})"
        kept = {n: {**r, "measured": r.get("measured", earlier_run)} for n, r in previous.get("replay", {}).items()
                if n not in replay}
        replay = {**kept, **replay}
        if live is None and previous.get("live_prometheus"):
            args.live = int(next(iter(previous["live_prometheus"])))
            live = {"measured": earlier_run, **previous["live_prometheus"][str(args.live)]}
        if heavy is None and previous.get("config_heavy"):
            heavy = previous["config_heavy"]
        notes = list(previous.get("notes", []))
    if args.note:
        notes.append(f"{today}: {args.note}")
    replay = dict(sorted(replay.items(), key=lambda kv: int(kv[0])))
    result = {
        "benchmark": "diagnose on generated meshes replayed from bundles, and live via Prometheus",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "replay": replay, "live_prometheus": {str(args.live): live} if live is not None else None,
        "config_heavy": heavy, "notes": notes,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diagnose.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    rows = "\n".join(
        f"| {n} | {r.get('edges', '-')} | {r.get('replay_s', '-')} | {r.get('diagnose_one_s', '-')} | "
        f"{r.get('diagnose_all_s', '-')} | {r.get('diagnose_all_ms_per_service', '-')} | "
        f"{r.get('engine_peak_mb_tracemalloc', '-')} | {r.get('process_maxrss_mb', '-')} | "
        f"{r.get('measured', '-')} |"
        for n, r in replay.items())
    live_text = ""
    if heavy is not None:
        live_text += f"""
## Config-heavy mesh: the drift and mTLS checks

`--config-heavy N`: generated-N plus a live and an intended VirtualService and a DestinationRule
per service, 8 weighted Envoy routes per proxy and a STRICT mesh-wide PeerAuthentication; the
seconds each check takes over every service (the indexes are built by the first check using them).

```json
{json.dumps(heavy, indent=2)}
```
"""
    if live is not None:
        live_text += f"""
## Live through a real Prometheus ({args.live} services, {live.get('measured', 'this run')})

Prometheus 2.42 on loopback, backfilled with promtool; only the Prometheus source is
configured, so proxy/config/trace checks are skipped with their reason.

```json
{json.dumps(live, indent=2)}
```
"""
    notes_text = "".join(["\n## Changes between runs\n\n", *(f"- {n}\n" for n in notes)]) if notes else ""
    (RESULTS / "diagnose.md").write_text(f"""# diagnose benchmark

{result['date']}, {result['machine']}. Generated meshes (`load_demo("generated-N")`: Kubernetes,
Envoy for every pod, Prometheus, Jaeger) written as bundles and replayed.

| services | edges | replay s | diagnose one s | --all s | ms/service | engine peak MB | max RSS MB | measured |
|---|---|---|---|---|---|---|---|---|
{rows}

"replay" is read_bundle + build_snapshot (normalize of every source + assembly); "diagnose
one" is a frontend service including the downstream walk for root causes. Rows marked
"earlier run" were not re-run this time and keep that run's numbers. The machine is shared
(2 cores, other jobs running), so differences of ~20 % between runs are noise.
{live_text}{notes_text}""", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
