"""CPU seconds of the loading phases of a replay, each the least of N runs in one process.

    cd TREE && python benchmarks/load_phases.py BUNDLE.tar.gz [N]

Reads the bundle (iter_bundle, every body), normalises the kubernetes and prometheus sources,
then merges and assembles all the parts (envoy's and jaeger's normalised once, not timed);
prints ``phase=seconds`` (process CPU, the least of N) and their sum. Run it from the tree to
measure (the current directory goes first on sys.path), alternated with the tree to compare:
the loading phases of ``diagnose --all --from BUNDLE`` without the checks' time or noise.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.getcwd())

from meshobs.assemble import assemble
from meshobs.bundle import iter_bundle
from meshobs.collect import normalize_source
from meshobs.gc_pause import gc_paused
from meshobs.model import Mesh, SnapshotPart


def main(path: str, runs: int) -> str:
    best: dict[str, float] = {}

    def record(phase: str, started: float) -> None:
        best[phase] = min(best.get(phase, float("inf")), time.process_time() - started)

    with gc_paused():
        for _ in range(runs):
            started = time.process_time()
            bundle, sources = iter_bundle(path)
            raws = list(sources)
            record("read", started)
        parts = [normalize_source(raw, bundle.time, bundle.window_s) for raw in raws]
        for _ in range(runs):
            for kind in ("kubernetes", "prometheus"):
                started = time.process_time()
                for raw in raws:
                    if raw.kind == kind:
                        normalize_source(raw, bundle.time, bundle.window_s)
                record(f"normalize_{kind}", started)
            started = time.process_time()
            assemble(SnapshotPart.merge(parts), time=bundle.time, window_s=bundle.window_s, mesh=Mesh.UNKNOWN)
            record("assemble", started)
    return " ".join(f"{k}={v:.3f}" for k, v in best.items()) + f" sum={sum(best.values()):.3f}"


if __name__ == "__main__":
    print(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3))
