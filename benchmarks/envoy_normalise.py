"""Benchmark: the CPU of normalising every Envoy proxy of a replay bundle, in-process.

Reads the bundle whole (``read_bundle``: the archive's decompression is not timed), then times
``normalize_source`` over its ``envoy`` sources only (CPU: ``time.process_time``; the cycle
collector paused as ``build_snapshot`` pauses it), and prints one JSON line: the CPU, the
number of proxies, and a digest of everything the normaliser produced (proxies, certificates,
source statuses, by ``repr``), so two checkouts can be compared on the same bundle::

    python benchmarks/envoy_normalise.py BUNDLE [--runs 3] [--profile OUT.prof]
    PYTHONPATH=/tmp/before-s23 python benchmarks/envoy_normalise.py BUNDLE   # another checkout

Each run after the first starts from a fresh interpreter state only for what the runs do not
share: memoised readings (cluster names, certificates, shared cluster readings) stay warm
across runs in one process, so the first run is the one a replay pays; ``--runs`` > 1 also
reports the later, warm runs separately.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--profile", help="write a cProfile of the first run here")
    args = ap.parse_args()

    import meshobs
    from meshobs.bundle import read_bundle
    from meshobs.collect import normalize_source

    bundle = read_bundle(args.bundle)
    envoy = [r for r in bundle.sources if r.kind == "envoy"]
    results = []
    for run in range(args.runs):
        gc.collect()
        gc.disable()
        prof = cProfile.Profile() if args.profile and run == 0 else None
        c0, w0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        parts = [normalize_source(r, bundle.time, bundle.window_s) for r in envoy]
        if prof:
            prof.disable()
            prof.dump_stats(args.profile)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        gc.enable()
        digest = hashlib.sha1()
        for p in parts:
            digest.update(repr((p.proxies, p.certs, p.sources)).encode())
        results.append({"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "digest": digest.hexdigest()[:12]})
        del parts
    print(json.dumps({"meshobs": meshobs.__file__, "bundle": args.bundle, "proxies": len(envoy),
                      "runs": results}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
