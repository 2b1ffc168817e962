"""Benchmark: what a question costs on a big mesh, live and replayed.

Live (``--live 1000[,5000]``): ``meshobs demo serve generated-N`` (a real Prometheus, loopback
Envoy admin for every sidecar, Jaeger and Kubernetes APIs) started in its own process; then

- ``diagnose SERVICE`` through the CLI (``--runs`` times; the median wall time), for a middle-tier
  service with callers and callees (its neighbourhood's size is reported);
- the same question once more in an instrumented child process, which counts what crossed the
  wire: bytes received, Envoy admin requests, PromQL queries, Jaeger and Kubernetes requests,
  and reads Prometheus's own answering time from its /metrics
  (``prometheus_http_request_duration_seconds_sum`` for the query handlers, before and after);
- ``diagnose --all`` the same two ways (once: it is mesh-wide by design; ``--no-all`` skips it).

Two answering times, because "wall time <= 1.5x the backends' own answering time" needs one:

- **Prometheus answering s**: Prometheus's own handler time, summed over the run's queries. It
  counts only one backend, and it *sums* queries that run concurrently (4 at a time), so it is
  neither a lower nor an upper bound of the time meshobs has to wait.
- **backends in flight s**: the length of the union of the intervals during which at least one
  request to any backend (Prometheus, Kubernetes, Envoy admin, Jaeger: every request goes
  through urllib3) was outstanding, each interval from the request being sent to its answer's
  headers (the body too when urllib3 preloads it) being received, measured in the instrumented
  run, from the first request to the last answer. Wall time minus it is the time meshobs spent
  with no backend working for it: before the first request (imports, configuration), between
  the phases, and after the last answer (normalising, diagnosing, printing) -- what meshobs
  alone can cut. It is measured at the client, so a client too busy to read an answer on time
  lengthens it a little; a server's own time is never longer than it.
  ``wall / in flight`` divides the CLI runs' median wall time by it.

Replayed (``--replay 1000,5000,10000``): generated-N written as a bundle once (kept in
``--cache``), then ``meshobs diagnose --all --from BUNDLE`` under ``/usr/bin/time``: wall time
and max RSS. ``--before DIR`` also replays with the meshobs checkout in DIR (e.g. /work/main),
for a before/after of the same bundle.

The growth table lists every figure for every size measured (100 to 10,000), with the ratio to
the smallest size, so whether a figure is constant, grows with the neighbourhood or with the
mesh can be read off.

    .venv/bin/python benchmarks/bench_collect.py --live 1000 --replay 1000,5000 --runs 5 \\
        [--growth 100,1000,5000,10000] [--before /work/main] [--note "..."]

Writes benchmarks/results/collect.json and collect.md (``--out NAME``: NAME.json and NAME.md
instead). Timings taken on a shared machine are noisy: compare medians and ratios from the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
QUERY_HANDLERS = ('handler="/api/v1/query"', 'handler="/api/v1/query_range"')


# -- helpers run in child processes ---------------------------------------------------------

def child_generate(n: int, path: str) -> None:
    from meshobs.bundle import write_bundle
    from meshobs.demo.build import render_bundle
    from meshobs.demo.scenario import generate_scenario

    # Rendered directly: ``load_demo`` stops at MAX_GENERATED services (what ``demo serve`` can
    # hold), the replay benchmark goes to 10,000.
    write_bundle(render_bundle(generate_scenario(n)), path)


def prometheus_seconds(url: str) -> tuple[float, int, float]:
    """Prometheus's own time on queries so far, from its /metrics: (answering seconds, requests,
    evaluating seconds). Answering is the HTTP handler's time, which includes writing the answer
    out (as slow as the client reads it); evaluating is the query engine's (queue, prepare,
    inner eval, sort: ``prometheus_engine_query_duration_seconds``)."""
    import requests

    seconds, count, evaluating = 0.0, 0, 0.0
    for line in requests.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("prometheus_engine_query_duration_seconds_sum{"):
            evaluating += float(line.rsplit(" ", 1)[1])
        if not any(h in line for h in QUERY_HANDLERS):
            continue
        if line.startswith("prometheus_http_request_duration_seconds_sum{"):
            seconds += float(line.rsplit(" ", 1)[1])
        elif line.startswith("prometheus_http_request_duration_seconds_count{"):
            count += int(float(line.rsplit(" ", 1)[1]))
    return seconds, count, evaluating


def child_live(config_path: str, target: str) -> None:
    """One instrumented question (``target`` "" for --all): prints what crossed the wire, as JSON."""
    from meshobs.cli.diagnose import scoped_question
    from meshobs.collect import build_snapshot, collect, scope_from_dict
    from meshobs.config import load_config
    from meshobs.engine import diagnose, diagnose_all
    from meshobs.model import ServiceRef

    config = load_config(config_path)
    assert config is not None
    prom = config.sources.get("prometheus", {}).get("url")
    before = prometheus_seconds(prom) if prom else (0.0, 0, 0.0)
    spans = _time_requests()
    start = time.monotonic()
    bundle = collect(config, question=scoped_question(target, None) if target else None,
                     deadline=time.monotonic() + 600)
    collected = time.monotonic()
    snapshot = build_snapshot(bundle, origin="live")
    if target:
        report = diagnose(snapshot, ServiceRef.parse(target))
        findings = len(report.findings)
    else:
        findings = len(diagnose_all(snapshot).findings)
    done = time.monotonic()
    answered = list(spans)  # before /metrics is read again
    after = prometheus_seconds(prom) if prom else (0.0, 0, 0.0)

    def asked(kind: str) -> int:
        return sum(1 for r in bundle.sources if r.kind == kind for p in r.payloads
                   if p.key != "scraped" and not (p.error or "").startswith(("not asked", "not sent"))
                   ) + sum(1 for r in bundle.sources if r.kind == kind for p in r.payloads
                           if p.meta.get("fallback_from") or p.meta.get("fallback"))

    scope = scope_from_dict(bundle.scope)
    failed = [s for s in snapshot.sources if not s.ok]
    print(json.dumps({
        "target": target or None,
        "neighbourhood_services": len(scope.services) if scope else None,
        "neighbourhood_workloads": len(scope.workloads) if scope else None,
        # Proxies the run knew of (one source each, "envoy:NS/POD"); a source named just "envoy"
        # is the collector's whole-source failure or note, not a proxy.
        "proxies_in_mesh": sum(1 for r in bundle.sources if r.kind == "envoy" and r.name != "envoy")
        if not target else None,
        "collect_s": round(collected - start, 3), "total_s": round(done - start, 3),
        "mb_received": round(sum(len(p.body.encode()) for r in bundle.sources for p in r.payloads
                                 if p.body is not None) / 1e6, 2),
        "envoy_admin_requests": asked("envoy"), "promql_queries": after[1] - before[1],
        "prometheus_answering_s": round(after[0] - before[0], 3),
        "prometheus_evaluating_s": round(after[2] - before[2], 3),
        "backends_in_flight_s": round(union(answered), 3),
        "first_request_s": round(min(a for a, _ in answered) - start, 3) if answered else None,
        "last_answer_s": round(max(b for _, b in answered) - start, 3) if answered else None,
        "jaeger_requests": asked("jaeger"), "kubernetes_requests": asked("kubernetes"),
        "findings": findings,
        "sources_failed": [s.name for s in snapshot.sources if not s.ok][:5],
        # Why (a failed source's message): a run whose Envoy fan-out failed as a whole must say
        # so in the record, not only as "0 requests".
        "source_errors": {s.name: s.message[:300] for s in failed} if len(failed) <= 5
        else {"(many)": f"{len(failed)} sources"},
    }))


def _time_requests() -> list[tuple[float, float]]:
    """From now on, every HTTP request's (sent, answered) monotonic times, in the list returned
    (every collector's client goes through urllib3's connection pools)."""
    import threading

    from urllib3.connectionpool import HTTPConnectionPool

    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    send = HTTPConnectionPool._make_request

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent = time.monotonic()
        try:
            return send(self, *args, **kwargs)
        finally:
            with lock:
                spans.append((sent, time.monotonic()))

    HTTPConnectionPool._make_request = timed  # type: ignore[method-assign]
    return spans


def union(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of ``spans``."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


# -- the parent ----------------------------------------------------------------------------

_CPU: list[float] = []  # CPU seconds (user + system) of each _run's child, in order


def _run(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess[str]]:
    import resource

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    start, cpu_start = time.monotonic(), cpu()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    _CPU.append(cpu() - cpu_start)
    return time.monotonic() - start, done


def pick_target(n: int) -> tuple[str, int]:
    """A middle-tier service in the middle of its tier (callers above it, callees below), and
    how many services it calls directly."""
    from meshobs.demo.scale import generated_traffic

    edges = generated_traffic(n)
    callers: dict[str, set[str]] = {}
    callees: dict[str, set[str]] = {}
    for e in edges:
        src, dst = f"{e.source_namespace}/{e.source_service}", f"{e.destination_namespace}/{e.destination_service}"
        callers.setdefault(dst, set()).add(src)
        callees.setdefault(src, set()).add(dst)
    mids = sorted(s for s in callers if s.split("/")[1].startswith("svc-") and callees.get(s))
    target = mids[len(mids) // 2]
    return target, len(callees[target])


def sample_targets(n: int, k: int, seed: int = 23) -> list[str]:
    """``k`` services of generated-N drawn at random (a fixed seed, so every run and checkout asks
    the same ones) from every service that takes part in the mesh's traffic: the questions a user
    may ask, not the one middle-tier service :func:`pick_target` chooses. Their spread (leaf, hub,
    edge of the mesh) is what the median across them summarises."""
    import random

    from meshobs.demo.scale import generated_traffic

    services = sorted({f"{ns}/{name}" for e in generated_traffic(n)
                       for ns, name in ((e.source_namespace, e.source_service),
                                        (e.destination_namespace, e.destination_service))
                       if name.startswith("svc-")})
    return sorted(random.Random(seed).sample(services, min(k, len(services))))


def serve(n: int, workdir: Path, rules: str | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    """``meshobs demo serve generated-N`` in its own session (``--recording-rules rules`` when
    given); returns when its config is written."""
    log = open(workdir.parent / f"serve-{n}.log", "wb")  # noqa: SIM115 - closed with the process
    extra = ["--recording-rules", rules] if rules else []
    proc = subprocess.Popen([sys.executable, "-m", "meshobs", "demo", "serve", f"generated-{n}",
                             "--workdir", str(workdir), *extra], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    config = workdir / "meshobs.yaml"
    deadline = time.monotonic() + 3600
    while not config.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"demo serve generated-{n} did not start; see {log.name}")
        time.sleep(2)
    time.sleep(2)  # the config is written after the servers are up; let the log settle
    return proc, config


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (demo serve stops its servers and Prometheus on it), then wait."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def measure_live(n: int, runs: int, base: Path, served: Path | None = None,
                 before: Path | None = None, others: list[str] | None = None,
                 mesh_wide: bool = True, rules: str | None = None, sampled: int = 0,
                 sample_runs: int = 3) -> dict[str, Any]:
    """``served``: the meshobs.yaml of a ``demo serve generated-N`` already running (it is left
    running); otherwise one is started for the measurement and stopped after it. ``before``:
    another checkout whose ``diagnose SERVICE`` runs alternate with this one's, on the same
    servers (a before/after from the same minutes of a shared machine). ``others``: more
    services to ask about the same way (e.g. one with many callers), after the picked one.
    ``sampled``: that many more services drawn at random (:func:`sample_targets`), asked
    ``sample_runs`` times each, for the median across services."""
    target, direct = pick_target(n)
    workdir = base / f"live-{n}"
    t0 = time.monotonic()
    proc, config = (None, served) if served is not None else serve(n, workdir, rules)
    serve_s = time.monotonic() - t0
    try:
        picked = _ask(config, target, runs, before)
        picked.pop("target")
        also = [_ask(config, other, runs, before) for other in others or []]
        sample = [_ask(config, other, sample_runs, before) for other in sample_targets(n, sampled)] if sampled else []
        if mesh_wide:
            all_wall, all_done = _run([sys.executable, "-m", "meshobs", "diagnose", "--all", "--config",
                                       str(config), "-o", "json", "--timeout", "1200s"])
            mesh = {"wall_s": round(all_wall, 2), "exit_code": all_done.returncode, **_child_live(config, "")}
    finally:
        if proc is not None:
            stop(proc)
    return {"services": n, "serve_s": round(serve_s, 1), "target": target, "target_direct_callees": direct,
            "diagnose_service": picked,
            "diagnose_others": also,
            **({"diagnose_sample": sample} if sample else {}),
            **({"diagnose_all": mesh} if mesh_wide else {})}


def _ask(config: Path, target: str, runs: int, before: Path | None = None) -> dict[str, Any]:
    """``diagnose target`` ``runs`` times (wall and CPU medians), then once instrumented; with
    ``before``, each run alternates with that checkout's on the same servers."""
    cli = [sys.executable, "-m", "meshobs", "diagnose", target, "--config", str(config), "-o", "json",
           "--timeout", "600s"]
    walls, cpus, codes, before_walls, before_cpus, same = [], [], set(), [], [], True
    for _ in range(runs):
        if before is not None:
            old_wall, old_done = _run(cli, cwd=before, env=_checkout_env())
            before_walls.append(old_wall)
            before_cpus.append(_CPU[-1])
        wall, done = _run(cli)
        walls.append(wall)
        cpus.append(_CPU[-1])
        codes.add(done.returncode)
        if before is not None:
            same = same and old_done.stdout == done.stdout
    row = {"target": target, "runs": [round(w, 2) for w in walls], "median_s": round(statistics.median(walls), 2),
           "cpu_median_s": round(statistics.median(cpus), 2), "exit_codes": sorted(codes),
           **_child_live(config, target)}
    if before is not None:
        row["before"] = {"runs": [round(w, 2) for w in before_walls],
                         "median_s": round(statistics.median(before_walls), 2),
                         "cpu_median_s": round(statistics.median(before_cpus), 2),
                         "same_json": same, **_child_live(config, target, before)}
    return row


def precompile(*checkouts: Path) -> None:
    """Write the bytecode of every checkout measured, before the first timed run. The runs are
    started with ``PYTHONDONTWRITEBYTECODE`` (another checkout is read only; the caller's shell
    often sets it too), so a module edited since its ``.pyc`` was written is compiled again on
    every run: stop 27's sample table charged the checkout just merged ~10 % more CPU than the
    same code run by hand right after (benchmarks/results/live5k-final-s27.md)."""
    for checkout in checkouts:
        _run([sys.executable, "-m", "compileall", "-q", "meshobs", "collectors", "tui"], cwd=checkout)
        _CPU.pop()


def _checkout_env(checkout: Path | None = None) -> dict[str, str]:
    """The environment that runs another checkout's meshobs without writing into it."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    return env


def _child_live(config: Path, target: str, checkout: Path | None = None) -> dict[str, Any]:
    _, done = _run([sys.executable, __file__, "--child-live", str(config), target],
                   env=_checkout_env(checkout) if checkout is not None else None)
    if done.returncode != 0:
        return {"error": done.stderr[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bundle_for(n: int, cache: Path) -> Path:
    path = cache / f"generated-{n}.tar.gz"
    if not path.exists():
        tmp = cache / f".generated-{n}.tar.gz"
        _, done = _run([sys.executable, __file__, "--child-generate", str(n), str(tmp)], timeout=7200)
        if done.returncode != 0:
            raise SystemExit(f"generating {n}: {done.stderr[-1000:]}")
        tmp.rename(path)
    return path


def replay(bundle: Path, checkout: Path | None = None) -> dict[str, Any]:
    """``diagnose --all --from BUNDLE`` under /usr/bin/time: wall and user CPU seconds, max RSS,
    and a digest of the JSON written (a before/after pair must write the same bytes)."""
    args = ["/usr/bin/time", "-f", "%e %U %M", sys.executable, "-m", "meshobs", "diagnose", "--all",
            "--from", str(bundle), "-o", "json"]
    # Another checkout runs from its directory (``-m meshobs`` finds it there), read only.
    _, done = _run(args, env=_checkout_env() if checkout is not None else None, cwd=checkout)
    wall, user, rss_kb = done.stderr.strip().splitlines()[-1].split()
    return {"wall_s": round(float(wall), 2), "user_s": round(float(user), 2),
            "max_rss_mb": round(int(rss_kb) / 1024, 1), "exit_code": done.returncode,
            # The report names the bundle it came from: blanked, so a copy in another layout compares.
            "output_sha1": hashlib.sha1(done.stdout.replace(str(bundle), "BUNDLE").encode()).hexdigest()[:12]}


def _packed(bundle: Path) -> bool:
    """Whether ``bundle`` has the packed layout (meshobs-bundle/2: its payloads in pack members)."""
    import tarfile

    with tarfile.open(bundle) as tar:
        tar.next()  # bundle.json
        second = tar.next()
    return second is not None and second.name.startswith("payloads/pack-")


def child_unpack(path: str, out: str) -> None:
    from meshobs.bundle import read_bundle, write_bundle

    write_bundle(read_bundle(path), out, packed=False)


def _reads_packed(checkout: Path) -> bool:
    """Whether the checkout ``checkout`` reads the packed layout (meshobs-bundle/2)."""
    source = checkout / "meshobs" / "bundle.py"
    return source.exists() and "PACKED_FORMAT" in source.read_text()


def for_before(bundle: Path, checkout: Path | None = None) -> Path:
    """The bundle a ``--before`` checkout replays: ``bundle`` itself when that checkout reads
    it (so both read the same bytes), or for a packed one that checkouts before the packed
    layout cannot read, the same bundle in the one-file-per-body layout, written once beside it."""
    if not _packed(bundle) or (checkout is not None and _reads_packed(checkout)):
        return bundle
    legacy = bundle.with_name(bundle.name.removesuffix(".tar.gz") + ".per-body.tar.gz")
    if not legacy.exists():
        _, done = _run([sys.executable, __file__, "--child-unpack", str(bundle), str(legacy)], timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"writing {legacy}: {done.stderr[-1000:]}")
    return legacy


def replays(bundle: Path, runs: int, before: Path | None) -> dict[str, Any]:
    """``runs`` replays of ``bundle`` (with ``before`` too, back to back: same load for both);
    the medians, and every run."""
    after_runs: list[dict[str, Any]] = []
    before_runs: list[dict[str, Any]] = []
    old = for_before(bundle, before) if before is not None else bundle
    for _ in range(max(1, runs)):
        after_runs.append(replay(bundle))
        if before is not None:
            before_runs.append(replay(old, before))

    def median(rows: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {k: round(statistics.median(r[k] for r in rows), 2)
                               for k in ("wall_s", "user_s", "max_rss_mb")}
        out.update(exit_code=rows[0]["exit_code"], output_sha1=rows[0]["output_sha1"], runs=rows)
        return out

    row: dict[str, Any] = {"bundle_mb": round(bundle.stat().st_size / 1e6, 1), "after": median(after_runs)}
    if before_runs:
        row["before"] = median(before_runs)
        row["same_output"] = {r["output_sha1"] for r in after_runs + before_runs} == {after_runs[0]["output_sha1"]}
    return row


def growth(rows: dict[int, dict[str, float]]) -> list[str]:
    """A markdown table of each figure per size, with the ratio to the smallest size."""
    sizes = sorted(rows)
    figures = sorted({k for r in rows.values() for k in r})
    out = ["| figure | " + " | ".join(f"{n:,}" for n in sizes) + " | growth |", "|---" * (len(sizes) + 2) + "|"]
    for f in figures:
        values = [rows[n].get(f) for n in sizes]
        known = [(n, v) for n, v in zip(sizes, values) if isinstance(v, (int, float)) and v]
        ratio = ""
        if len(known) >= 2:
            (n0, v0), (n1, v1) = known[0], known[-1]
            ratio = f"x{v1 / v0:.1f} for x{n1 / n0:g} services"
        out.append(f"| {f} | " + " | ".join("-" if v is None else f"{v:g}" for v in values) + f" | {ratio} |")
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-live":
        child_live(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--child-unpack":
        child_unpack(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--child-generate":
        child_generate(int(sys.argv[2]), sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live", default="1000", help="sizes to serve live (comma-separated; '' for none)")
    parser.add_argument("--replay", default="1000,5000", help="sizes to replay from bundles")
    parser.add_argument("--growth", default="", help="extra replay sizes for the growth table (e.g. 100,10000)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "meshobs-bench-bundles"))
    parser.add_argument("--before", default=None,
                        help="another checkout to replay and ask the live questions with (before/after)")
    parser.add_argument("--served", action="append", default=[], metavar="N=CONFIG",
                        help="measure a generated-N already served (meshobs demo serve) through its config")
    parser.add_argument("--also", action="append", default=[], metavar="N=SERVICE",
                        help="another service to ask about live at size N (e.g. one with many callers)")
    parser.add_argument("--sample", action="append", default=[], metavar="N=K",
                        help="at size N, also ask K services drawn at random (fixed seed) and report "
                             "the median across them")
    parser.add_argument("--sample-runs", type=int, default=3, help="runs per sampled service (default 3)")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", default="collect",
                        help="results file name under benchmarks/results/ (NAME.json, NAME.md)")
    parser.add_argument("--no-all", action="store_true", help="skip the live diagnose --all")
    parser.add_argument("--recording-rules", default=None, choices=("none", "edges", "all"),
                        help="the recording rules of the demo servers started for --live (default: "
                             "demo serve's); a --served server has what it was started with")
    parser.add_argument("--replay-runs", default="", metavar="N=RUNS,...",
                        help="replays per size (the median is reported; default one), e.g. 1000=3,5000=3")
    args = parser.parse_args()
    sizes = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": f"{platform.machine()}, "
        f"{os.cpu_count()} cores, CPython {platform.python_version()}", "load_average": os.getloadavg(),
        "note": args.note, "live": {}, "replay": {}, "host_speed_s": [host_speed()]}
    before = Path(args.before) if args.before else None
    served = {int(k): Path(v) for k, v in (x.split("=", 1) for x in args.served)}
    precompile(REPO, *([before] if before is not None else []))
    with tempfile.TemporaryDirectory(prefix="meshobs-bench-live-") as tmp:
        for n in sizes(args.live):
            print(f"live {n} ...", file=sys.stderr, flush=True)
            others = [v for k, v in (x.split("=", 1) for x in args.also) if int(k) == n]
            sampled = sum(int(v) for k, v in (x.split("=", 1) for x in args.sample) if int(k) == n)
            result["live"][str(n)] = measure_live(n, args.runs, Path(tmp), served.get(n), before, others,
                                                  mesh_wide=not args.no_all, rules=args.recording_rules,
                                                  sampled=sampled, sample_runs=args.sample_runs)
    replay_runs = {int(k): int(v) for k, v in (x.split("=", 1) for x in args.replay_runs.split(",") if x.strip())}
    for n in sorted(set(sizes(args.replay)) | set(sizes(args.growth))):
        print(f"replay {n} ...", file=sys.stderr, flush=True)
        result["replay"][str(n)] = replays(bundle_for(n, cache), replay_runs.get(n, 1), before)
    result["host_speed_s"].append(host_speed())
    RESULTS.mkdir(parents=True, exist_ok=True)
    earlier = RESULTS / f"{args.out}.json"
    if earlier.exists():
        # A run that measured only live (or only replays) keeps the other section's rows, and
        # says when they were measured.
        kept = json.loads(earlier.read_text())
        for section in ("live", "replay"):
            for n, row in (kept.get(section) or {}).items():
                if n not in result[section]:
                    result[section][n] = {**row, "measured": row.get("measured") or kept.get("date")}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{args.out}.md").write_text(render(result))
    print(render(result))
    return 0


def host_speed() -> float:
    """CPU seconds of one fixed pure-Python loop (the median of 3): how fast this host runs the
    interpreter now. Recorded at a run's start and end, so figures of runs made hours apart are
    not compared as if the host were the same (stop 28: the same code, 3.03 s then 5.58 s)."""
    def once() -> float:
        start = time.process_time()
        sum(i * i for i in range(10**7))
        return time.process_time() - start
    return round(statistics.median(once() for _ in range(3)), 3)


def render(result: dict[str, Any]) -> str:
    lines = ["# Collection benchmark (live questions and replays)", "",
             f"{result['date']}, {result['machine']}, load average at start "
             f"{', '.join(f'{x:.1f}' for x in result['load_average'])}. {result['note']}".rstrip(), ""]
    if speed := result.get("host_speed_s"):
        lines += [f"Host speed (CPU s of one fixed pure-Python loop, median of 3; lower is faster) at the start and "
                  f"the end: {' / '.join(f'{x:.2f}' for x in speed)}. This host's speed drifts up to 1.8x within hours "
                  "(stop 28): compare figures of one run, not across runs.", ""]
    if result["live"]:
        lines += ["## Live: `meshobs demo serve generated-N`, every source configured", "",
                  "| services | question | wall s (median) | CPU s (median) | MB received | Envoy admin requests "
                  "| PromQL queries "
                  "| Prometheus answering s | Prometheus evaluating s | wall / answering "
                  "| backends in flight s | wall / in flight "
                  "| Jaeger requests | Kubernetes requests | neighbourhood (services / workloads) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

        def ratio(wall: float, row: dict[str, Any], key: str = "prometheus_answering_s") -> str:
            answering = row.get(key)
            return f"{wall / answering:.1f}x" if answering else "-"

        def flight(wall: float, row: dict[str, Any]) -> str:
            return f"{row.get('backends_in_flight_s', '-')} | {ratio(wall, row, 'backends_in_flight_s')}"

        for n, live in result["live"].items():
            every = live.get("diagnose_all")
            asked = [{"target": live["target"], **live["diagnose_service"]}, *live.get("diagnose_others", [])]
            for one in asked:
                lines.append(f"| {n} | diagnose {one['target']} | {one['median_s']} | {one.get('cpu_median_s', '-')} | "
                             f"{one.get('mb_received')} | "
                             f"{one.get('envoy_admin_requests')} | {one.get('promql_queries')} | "
                             f"{one.get('prometheus_answering_s')} | {one.get('prometheus_evaluating_s', '-')} | "
                             f"{ratio(one['median_s'], one)} | {flight(one['median_s'], one)} | "
                             f"{one.get('jaeger_requests')} | "
                             f"{one.get('kubernetes_requests')} | {one.get('neighbourhood_services')} / "
                             f"{one.get('neighbourhood_workloads')} |")
            if every is None:
                continue
            lines.append(f"| {n} | diagnose --all | {every['wall_s']} | - | {every.get('mb_received')} | "
                         f"{every.get('envoy_admin_requests')} | {every.get('promql_queries')} | "
                         f"{every.get('prometheus_answering_s')} | {every.get('prometheus_evaluating_s', '-')} | "
                         f"{ratio(every['wall_s'], every)} | {flight(every['wall_s'], every)} | "
                         f"{every.get('jaeger_requests')} | "
                         f"{every.get('kubernetes_requests')} | mesh-wide ({every.get('proxies_in_mesh')} proxies) |")
        lines += ["", "`diagnose SERVICE` runs: " + "; ".join(
            f"{n}: {live['diagnose_service']['runs']}"
            + "".join(f", {o['target']} {o['runs']}" for o in live.get("diagnose_others", []))
            + (f" (measured {live['measured']})" if live.get("measured") else "")
            for n, live in result["live"].items()), ""]
        befores = [(n, {"target": live["target"], **live["diagnose_service"]}) for n, live in result["live"].items()
                   if live["diagnose_service"].get("before")]
        befores += [(n, other) for n, live in result["live"].items() for other in live.get("diagnose_others", [])
                    if other.get("before")]
        if befores:
            lines += ["Before/after, `diagnose SERVICE` runs of both checkouts alternating on the same servers:", "",
                      "| services | question | before: wall s (median) | after: wall s (median) "
                      "| wall ratio | before: CPU s (median) "
                      "| after: CPU s (median) | before: runs | after: runs "
                      "| before: Prometheus answering s | after: Prometheus answering s "
                      "| before: backends in flight s | after: backends in flight s | same JSON |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for n, one in befores:
                old = one["before"]
                lines.append(f"| {n} | {one['target']} | {old['median_s']} | {one['median_s']} | "
                             f"x{one['median_s'] / old['median_s']:.2f} | {old.get('cpu_median_s', '-')} | "
                             f"{one.get('cpu_median_s', '-')} | {old['runs']} | {one['runs']} | "
                             f"{old.get('prometheus_answering_s')} | {one.get('prometheus_answering_s')} | "
                             f"{old.get('backends_in_flight_s', '-')} | {one.get('backends_in_flight_s', '-')} | "
                             f"{'yes' if old.get('same_json') else 'NO'} |")
            lines.append("")
    lines += render_sample(result)
    if result["replay"]:
        lines += ["## Replayed `diagnose --all --from BUNDLE`", "",
                  "| services | bundle MB | runs | wall s | user CPU s | max RSS MB | before: wall s "
                  "| before: user CPU s | before: max RSS MB | user CPU ratio | same output |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for n, row in result["replay"].items():
            after, before = row["after"], row.get("before") or {}
            ratio = f"x{after['user_s'] / before['user_s']:.2f}" if before.get("user_s") else "-"
            same = {True: "yes", False: "NO"}.get(row.get("same_output"), "-")  # type: ignore[arg-type]
            lines.append(f"| {n} | {row['bundle_mb']} | {len(after.get('runs', [1]))} | {after['wall_s']} | "
                         f"{after.get('user_s', '-')} | {after['max_rss_mb']} | {before.get('wall_s', '-')} | "
                         f"{before.get('user_s', '-')} | {before.get('max_rss_mb', '-')} | {ratio} | {same}"
                         + (f" (measured {row['measured']})" if row.get("measured") else "") + " |")
        lines += ["", "Medians of the runs; each before/after pair ran back to back on the same bundle. "
                  "Wall time on a loaded machine is mostly waiting for a core: read the user CPU.", ""]
    rows: dict[int, dict[str, float]] = {}
    for n, row in result["replay"].items():
        rows.setdefault(int(n), {}).update({"replay --all wall s": row["after"]["wall_s"],
                                            "replay --all user CPU s": row["after"].get("user_s"),
                                            "replay --all max RSS MB": row["after"]["max_rss_mb"]})
    for n, live in result["live"].items():
        one = live["diagnose_service"]
        rows.setdefault(int(n), {}).update({
            "live diagnose SERVICE wall s": one["median_s"],
            "live diagnose SERVICE Envoy requests": one.get("envoy_admin_requests"),
            "live diagnose SERVICE MB": one.get("mb_received"),
            **({"live diagnose --all wall s": live["diagnose_all"]["wall_s"],
                "live diagnose --all Envoy requests": live["diagnose_all"].get("envoy_admin_requests")}
               if live.get("diagnose_all") else {})})
    if len(rows) >= 2:
        lines += ["## Growth", "", *growth(rows), "",
                  "Read the last column against the size ratio: about x1 is constant, about the size "
                  "ratio is linear in the mesh, in between follows the neighbourhood.", ""]
    return "\n".join(lines)


def render_sample(result: dict[str, Any]) -> list[str]:
    """The sampled services' table: each one's median wall and CPU (before and after when both
    were asked), and the median across the services."""
    lines: list[str] = []
    for n, live in result["live"].items():
        sample = live.get("diagnose_sample")
        if not sample:
            continue
        lines += [f"## Live at {n}: services drawn at random ({len(sample)}, fixed seed)", "",
                  "| question | wall s (median) | CPU s (median) | before: wall s | before: CPU s | wall ratio "
                  "| Envoy admin requests | neighbourhood (services / workloads) | exit | same JSON |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for one in sample:
            old = one.get("before") or {}
            lines.append(f"| {one['target']} | {one['median_s']} | {one.get('cpu_median_s', '-')} | "
                         f"{old.get('median_s', '-')} | {old.get('cpu_median_s', '-')} | "
                         + (f"x{one['median_s'] / old['median_s']:.2f}" if old.get("median_s") else "-")
                         + f" | {one.get('envoy_admin_requests')} | {one.get('neighbourhood_services')} / "
                         f"{one.get('neighbourhood_workloads')} | {','.join(map(str, one.get('exit_codes', [])))} | "
                         + {True: "yes", False: "NO"}.get(old.get("same_json"), "-") + " |")  # type: ignore[arg-type]
        walls = [one["median_s"] for one in sample]
        cpus = [one["cpu_median_s"] for one in sample if one.get("cpu_median_s") is not None]
        befores = [one["before"]["median_s"] for one in sample if one.get("before")]
        lines += ["", f"Median across the {len(sample)} services: wall **{statistics.median(walls):.2f} s** "
                  f"(range {min(walls):.2f}-{max(walls):.2f}), CPU {statistics.median(cpus):.2f} s"
                  + (f"; before {statistics.median(befores):.2f} s" if befores else "") + ".", ""]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
