"""Where the wall time of one live question goes: a per-step timeline on stderr.

    .venv/bin/python benchmarks/live_timeline.py diagnose ns-04/svc-0594 --config DIR/meshobs.yaml -o json

Runs the ``meshobs`` command given (same arguments) with the collection's steps wrapped: each
phase, each source's fetch and normalisation, each PromQL query, Kubernetes list, Envoy proxy
and Jaeger request, the neighbourhood question, the snapshot's assembly and the diagnosis.
Prints one line per step (start and end in seconds since the process started, duration,
thread), sorted by start: the critical path is read off the overlaps. ``--envoy`` also lists
every Envoy proxy. It wraps internal functions by name, so it follows the code: a rename shows
up as an AttributeError here, not as a wrong figure.
"""

from __future__ import annotations

import atexit
import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

T0 = time.perf_counter()
EVENTS: list[tuple[float, float, str, str]] = []


def _record(name: str, start: float) -> None:
    EVENTS.append((start - T0, time.perf_counter() - T0, threading.current_thread().name, name))


def wrap(owner: Any, attr: str, label: Callable[..., str] | str) -> None:
    """Replace ``owner.attr`` with a timed call of it."""
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(label(*args, **kwargs) if callable(label) else label, start)

    setattr(owner, attr, timed)


def install(envoy: bool) -> None:
    import meshobs.cli.common as cli_common
    import meshobs.cli.diagnose as diagnose_cli
    import meshobs.collect as collect
    import meshobs.collectors.envoy.fetch as envoy_fetch
    import meshobs.collectors.jaeger as jaeger
    import meshobs.collectors.kubernetes as kubernetes
    import meshobs.collectors.prometheus.fetch as prometheus
    import meshobs.engine as engine

    # Where the CLI calls it from: meshobs.cli.common imported it by name before this runs.
    wrap(cli_common, "load_config", "load_config")
    wrap(collect, "collect", "COLLECT")
    wrap(collect, "_fetch_phase", lambda *a, **k: f"PHASE {a[1].phase}")
    wrap(collect, "_fetch_one", lambda *a, **k: f"fetch {a[0]} ({a[3].phase})")
    wrap(collect, "normalize_source", lambda *a, **k: f"normalize {a[0].name}")
    wrap(collect, "build_snapshot", "build_snapshot")
    wrap(prometheus._Run, "send",
         lambda self, job, *a: f"  promql {job.key} (scoped={job.scoped}, {len(job.promql)} chars)")
    wrap(kubernetes.KubernetesCollector, "_get", lambda self, req, server: f"  kubernetes {req.key}")
    wrap(jaeger.JaegerCollector, "_get", lambda self, session, path, key, *a, **k: f"  jaeger {key}")
    if envoy:
        wrap(envoy_fetch.EnvoyCollector, "_fetch_proxy", lambda self, target, *a: f"  envoy {target.source_name}")
    wrap(engine, "diagnose", "engine.diagnose")
    question = diagnose_cli.scoped_question

    def scoped_question(*args: Any, **kwargs: Any) -> Any:
        inner = question(*args, **kwargs)

        def timed(snapshot: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(snapshot)
            finally:
                _record("question (resolve, neighbourhood)", start)

        return timed

    diagnose_cli.scoped_question = scoped_question  # type: ignore[assignment]


def report() -> None:
    for start, end, thread, name in sorted(EVENTS):
        print(f"{start:7.3f} {end:7.3f} {end - start:6.3f} {thread[:16]:16} {name}", file=sys.stderr)
    print(f"exit at {time.perf_counter() - T0:.3f}", file=sys.stderr)


def main() -> None:
    args = sys.argv[1:]
    envoy = "--envoy" in args
    args = [a for a in args if a != "--envoy"]
    install(envoy)
    atexit.register(report)
    print(f"{time.perf_counter() - T0:7.3f} imports done", file=sys.stderr)
    from meshobs.cli.main import main as meshobs

    sys.argv = ["meshobs", *args]
    meshobs()


if __name__ == "__main__":
    main()
