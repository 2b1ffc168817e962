"""Benchmark: replayed ``diagnose --all`` from a packed archive (meshobs-bundle/2) against the same
bundle in the one-member-per-body layout (/1) and against an older checkout reading the /1 copy.

Each row of runs alternates, on the same minutes of a shared machine:

- before: ``--before`` checkout (e.g. the previous main, precompiled) replaying the /1 archive;
- after /1: this checkout replaying the same /1 archive (old bundles must not get slower);
- after /2: this checkout replaying the packed copy (``meshobs snapshot --from OLD --out NEW``).

User CPU seconds (``/usr/bin/time``), wall seconds and max RSS; the JSON output's digest with
the bundle's path (the report's ``origin``) blanked, so all three must print the same bytes.

    .venv/bin/python benchmarks/bench_bundle_layout.py --before /tmp/before-s19 --runs 3 \
        5000=/tmp/meshobs-bench-bundles/generated-5000.tar.gz:/tmp/packed/generated-5000.tar.gz

Writes benchmarks/results/NAME.json (``--out NAME``, default bundle_layout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def replay(bundle: Path, checkout: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(checkout))
    done = subprocess.run(["/usr/bin/time", "-f", "%e %U %M", sys.executable, "-m", "meshobs", "diagnose", "--all",
                           "--from", str(bundle), "-o", "json"], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=3600)
    wall, user, rss_kb = done.stderr.strip().splitlines()[-1].split()
    out = done.stdout.replace(str(bundle), "BUNDLE")
    return {"wall_s": float(wall), "user_s": float(user), "max_rss_mb": round(int(rss_kb) / 1024, 1),
            "exit_code": done.returncode, "output_sha1": hashlib.sha1(out.encode()).hexdigest()[:12]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+", help="LABEL=OLD.tar.gz:PACKED.tar.gz")
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="bundle_layout")
    args = ap.parse_args()
    rows: dict[str, Any] = {}
    for spec in args.bundles:
        label, _, paths = spec.partition("=")
        old, packed = (Path(p) for p in paths.split(":"))
        runs: dict[str, list[dict[str, Any]]] = {"before /1": [], "after /1": [], "after /2": []}
        loads = []
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            runs["before /1"].append(replay(old, args.before))
            runs["after /1"].append(replay(old, ROOT))
            runs["after /2"].append(replay(packed, ROOT))
        rows[label] = {
            "bundle_mb": {"/1": round(old.stat().st_size / 1e6, 1), "/2": round(packed.stat().st_size / 1e6, 1)},
            "load_1m": loads,
            "same_output": len({r["output_sha1"] for rs in runs.values() for r in rs}) == 1,
            **{k: {"user_s": statistics.median(r["user_s"] for r in rs),
                   "wall_s": statistics.median(r["wall_s"] for r in rs),
                   "max_rss_mb": statistics.median(r["max_rss_mb"] for r in rs), "runs": rs}
               for k, rs in runs.items()}}
        print(label, json.dumps({k: v for k, v in rows[label].items() if not isinstance(v, dict) or "runs" not in v}),
              {k: (rows[label][k]["user_s"], rows[label][k]["max_rss_mb"]) for k in runs}, flush=True)
    result = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "before": str(args.before), "rows": rows}
    (ROOT / "benchmarks" / "results" / f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
