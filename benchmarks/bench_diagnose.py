"""Benchmark: ``diagnose`` and ``diagnose --all`` on generated meshes replayed from bundles,
and live through a real Prometheus.

For each size (100 / 1,000 / 5,000 services by default) a child process generates the mesh
(``meshobs.demo.catalog.load_demo("generated-N")``), writes it as a bundle, then measures:

- replay: ``read_bundle`` + ``build_snapshot`` (every source's normalize, assembly);
- diagnose: one frontend service, its checklist plus the downstream walk for root causes;
- diagnose --all: every service of the mesh;
- peak memory: tracemalloc's peak during ``diagnose_all`` (Python allocations of the engine
  alone) and the child's ``ru_maxrss`` (the whole process: snapshot included).

The live variant (``--live 1000``) backfills a loopback Prometheus 2.42 with the same mesh's
Istio metrics (promtool) and times collect (PromQL over HTTP) + normalise + ``diagnose_all``.

    .venv/bin/python benchmarks/bench_diagnose.py [--sizes 100,1000,5000] [--live 1000]

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
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n = args.child[0], int(args.child[1])
        print(json.dumps(measure_replay(n) if kind == "replay" else measure_live(n)))
        return 0
    replay = {}
    for n in (int(x) for x in args.sizes.split(",") if x):
        print(f"replay {n} services...", file=sys.stderr)
        replay[str(n)] = child("replay", n)
    live = None
    if args.live:
        print(f"live through Prometheus, {args.live} services...", file=sys.stderr)
        live = child("live", args.live)
    # Sizes not re-run this time keep their previous results (runs at 5,000 take minutes).
    previous_file = RESULTS / "diagnose.json"
    if previous_file.is_file():
        previous = json.loads(previous_file.read_text(encoding="utf-8"))
        replay = {**previous.get("replay", {}), **replay}
        if live is None and previous.get("live_prometheus"):
            args.live = int(next(iter(previous["live_prometheus"])))
            live = previous["live_prometheus"][str(args.live)]
    replay = dict(sorted(replay.items(), key=lambda kv: int(kv[0])))
    result = {
        "benchmark": "diagnose on generated meshes replayed from bundles, and live via Prometheus",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "replay": replay, "live_prometheus": {str(args.live): live} if live is not None else None,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diagnose.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    rows = "\n".join(
        f"| {n} | {r.get('edges', '-')} | {r.get('replay_s', '-')} | {r.get('diagnose_one_s', '-')} | "
        f"{r.get('diagnose_all_s', '-')} | {r.get('diagnose_all_ms_per_service', '-')} | "
        f"{r.get('engine_peak_mb_tracemalloc', '-')} | {r.get('process_maxrss_mb', '-')} |"
        for n, r in replay.items())
    live_text = ""
    if live is not None:
        live_text = f"""
## Live through a real Prometheus ({args.live} services)

Prometheus 2.42 on loopback, backfilled with promtool; only the Prometheus source is
configured, so proxy/config/trace checks are skipped with their reason.

```json
{json.dumps(live, indent=2)}
```
"""
    (RESULTS / "diagnose.md").write_text(f"""# diagnose benchmark

{result['date']}, {result['machine']}. Generated meshes (`load_demo("generated-N")`: Kubernetes,
Envoy for every pod, Prometheus, Jaeger) written as bundles and replayed.

| services | edges | replay s | diagnose one s | --all s | ms/service | engine peak MB | max RSS MB |
|---|---|---|---|---|---|---|---|
{rows}

"replay" is read_bundle + build_snapshot (normalize of every source + assembly); "diagnose
one" is a frontend service including the downstream walk for root causes.
{live_text}""", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
