"""What the graph phase's queries cost the server, and what the alternatives to ``edges`` would.

    .venv/bin/python benchmarks/graph_query_cost.py PROMETHEUS_URL [TIME] [REPEATS]

Sends every query of ``promql.GRAPH_QUERIES`` and a few rewrites of ``edges`` (another
aggregation, fewer ``by`` labels, one reporter, a shorter range), alternating, REPEATS times
(default 5), each with ``stats=all``: prints the median server evaluation time and wall time,
the series and bytes answered, the samples read, and whether the answer's label sets are
``edges``'s (the graph phase needs exactly that edge set). TIME is the evaluation time (the
served demo's: 2026-11-20T12:00:00Z). VictoriaMetrics has no ``stats``: only wall times.
"""

from __future__ import annotations

import json
import statistics
import sys

from promstats import timed_query

from meshobs.collectors.promql import EDGE_KEY_LABELS, FAILED_CODES, GRAPH_QUERIES, REQUESTS

WINDOW = "5m"


def alternatives() -> dict[str, str]:
    """``edges`` as sent, then rewrites that might answer the same edge set for less."""
    by = ", ".join((*EDGE_KEY_LABELS, "request_protocol"))
    fewer = ", ".join(("source_workload", "source_workload_namespace", "destination_service_name",
                       "destination_service_namespace", "destination_workload", "request_protocol"))
    queries = {name: q.render(WINDOW) for name, q in GRAPH_QUERIES.items()}
    queries.update({
        "edges count by": f"count by ({by}) (rate({REQUESTS}[{WINDOW}]) > 0)",
        "edges group by": f"group by ({by}) (rate({REQUESTS}[{WINDOW}]) > 0)",
        "edges increase": f"sum by ({by}) (increase({REQUESTS}[{WINDOW}])) > 0",
        "edges fewer by": f"sum by ({fewer}) (rate({REQUESTS}[{WINDOW}])) > 0",
        "edges dest only": f'sum by ({by}) (rate({REQUESTS}{{reporter="destination"}}[{WINDOW}])) > 0',
        "edges 1m": f"sum by ({by}) (rate({REQUESTS}[1m])) > 0",
        # ``failing`` as it was before it read the failing gRPC statuses too (stop 26).
        "failing http": f"sum by ({by}, response_code, response_flags) "
                        f"(rate({REQUESTS}{{{FAILED_CODES}}}[{WINDOW}])) > 0",
    })
    return queries


def main() -> int:
    url = sys.argv[1].rstrip("/")
    when = sys.argv[2] if len(sys.argv) > 2 else "2026-11-20T12:00:00Z"
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    queries = alternatives()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in queries}
    shape: dict[str, tuple[int, int, int, frozenset[str]]] = {}
    for _ in range(repeats):
        for name, query in queries.items():
            got = timed_query(f"{url}/api/v1/query", {"query": query, "time": when})
            times[name].append((got.eval_s, got.wall_s))
            keys = frozenset(json.dumps(s["metric"], sort_keys=True) for s in got.result)
            shape[name] = (len(got.result), got.size, got.samples, keys)
    edge_set = shape["edges"][3]
    for name in queries:
        evals, walls = zip(*times[name], strict=True)
        series, size, samples, keys = shape[name]
        same = "same edge set" if keys == edge_set else ("-" if not name.startswith("edges") else "OTHER edge set")
        print(f"{name:16} eval {statistics.median(evals):6.3f} s  wall {statistics.median(walls):6.3f} s  "
              f"series {series:>7,}  {size / 1e6:6.2f} MB  samples {samples:>10,}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
