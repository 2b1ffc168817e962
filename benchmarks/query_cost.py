"""What each PromQL query of one live ``diagnose SERVICE`` costs the server.

    .venv/bin/python benchmarks/query_cost.py DIR/meshobs.yaml ns-04/svc-2994 [REPEATS]

Collects the question once (both phases, as the CLI does), then sends every query the
Prometheus collector sent again, alone, with ``stats=all``, REPEATS times (default 3): prints the
median server evaluation time (load-dependent) and wall time, the samples read and the series and
bytes answered (load-independent), and the time the query took inside the run. Run it from the
checkout to measure (``PYTHONPATH=OTHER`` for another one) to compare two versions of the plan.
"""

from __future__ import annotations

import statistics
import sys
import time

from promstats import timed_query

from meshobs.cli.diagnose import scoped_question
from meshobs.collect import collect
from meshobs.config import load_config


def main() -> int:
    config = load_config(sys.argv[1])
    assert config is not None
    target = sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    start = time.monotonic()
    bundle = collect(config, question=scoped_question(target, None), deadline=time.monotonic() + 600)
    services = len((bundle.scope or {}).get("services", []))
    print(f"collected in {time.monotonic() - start:.2f} s; neighbourhood {services} services", flush=True)
    total_eval = total_wall = 0.0
    for raw in bundle.sources:
        if raw.kind != "prometheus":
            continue
        for p in raw.payloads:
            params = dict(p.params or {})
            if "query" not in params:
                continue
            evals, walls, samples, series, size = [], [], 0, 0, 0
            for _ in range(repeats):
                got = timed_query(p.url, params)
                walls.append(got.wall_s)
                evals.append(got.eval_s)
                samples, series, size = got.samples, len(got.result), got.size
            ev, wall = statistics.median(evals), statistics.median(walls)
            total_eval, total_wall = total_eval + ev, total_wall + wall
            print(f"{p.key:24} {p.meta.get('phase') or '-':7} eval {ev:6.3f} s  wall {wall:6.3f} s  "
                  f"samples {samples:>10,}  series {series:>7,}  {size / 1e6:6.2f} MB  "
                  f"{len(params['query']):>5} chars  in the run {p.elapsed_s or 0:6.3f} s  {p.error or ''}")
    print(f"total: eval {total_eval:.3f} s, wall {total_wall:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
