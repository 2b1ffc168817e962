"""The CPU of a scoped question's Envoy fan-out alone, repeated on the very same scope.

    .venv/bin/python benchmarks/envoy_fanout.py RUNS diagnose ns-00/svc-0690 --config DIR/meshobs.yaml -o json

Runs the ``meshobs`` command given; when its scoped phase calls ``EnvoyCollector.fetch``, the
call is made as usual, then repeated RUNS more times with the same context (same targets,
scope, needs, digest), each measured in process CPU (user+sys, every thread: ``getrusage``)
and wall. The rest of the process is idle meanwhile, so the figure is the fan-out's own:
requests, reading, minimising and normalising each proxy. Prints one JSON line on stderr:
``{"requests": n, "proxies": n, "cpu_s": [...], "user_s": [...], "wall_s": [...], "fingerprint": "..."}``.
``fingerprint`` hashes every proxy's payloads as fetched and minimised (key, status, error,
body) from one extra run without the digest, so two trees can be shown to send and keep the same.
Run it in a before-tree with ``PYTHONPATH`` pointing there (it imports only ``meshobs``).
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from typing import Any

RUNS = int(sys.argv.pop(1))
RESULT: dict[str, Any] = {}


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _fingerprint(sources: list[Any]) -> tuple[str, int]:
    digest = hashlib.sha256()
    requests = 0
    for raw in sorted(sources, key=lambda r: r.name):
        digest.update(f"{raw.name}|{raw.error}|{sorted(raw.meta.get('not_asked', {}).items())}\n".encode())
        for p in raw.payloads:
            requests += 1
            # elapsed and fetched_at differ run to run; the rest must not
            digest.update(f"{p.key}|{p.status}|{p.error}|{p.url}|{sorted(p.params.items())}|".encode())
            digest.update((p.body or "").encode())
    return digest.hexdigest()[:16], requests


def install() -> None:
    import dataclasses

    from meshobs.collectors.envoy import fetch as envoy_fetch

    original = envoy_fetch.EnvoyCollector.fetch

    def fetch(self: Any, ctx: Any = None) -> Any:
        result = original(self, ctx)
        if ctx is None or ctx.phase != "scoped" or RESULT:
            return result
        cpu, user, wall = [], [], []
        for _ in range(RUNS):
            (u0, s0), w0 = _cpu(), time.perf_counter()
            original(self, ctx)
            u1, s1 = _cpu()
            cpu.append(round(u1 - u0 + s1 - s0, 4))
            user.append(round(u1 - u0, 4))
            wall.append(round(time.perf_counter() - w0, 4))
        kept = original(self, dataclasses.replace(ctx, digest=None))
        fingerprint, requests = _fingerprint(kept)
        RESULT.update(requests=requests, proxies=len(kept), cpu_s=cpu, user_s=user, wall_s=wall,
                      fingerprint=fingerprint)
        print(json.dumps(RESULT), file=sys.stderr)
        return result

    envoy_fetch.EnvoyCollector.fetch = fetch  # type: ignore[method-assign]


def main() -> None:
    install()
    from meshobs.cli.main import main as meshobs

    sys.argv = ["meshobs", *sys.argv[1:]]
    meshobs()


if __name__ == "__main__":
    main()
