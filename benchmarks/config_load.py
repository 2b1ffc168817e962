"""What loading a meshobs.yaml costs a command, before and after, alternated in the same run.

    .venv/bin/python benchmarks/config_load.py --before /path/to/other/checkout \
        --config /tmp/serve-5000/meshobs.yaml --runs 7 [--out NAME]

Each run is a fresh interpreter (``python -c``) in the checkout's folder (so it imports that
checkout's ``meshobs``) that times, from before ``import meshobs.config`` to the Config in
hand: wall (``time.perf_counter``) and its own CPU (``time.process_time``), and says whether
pydantic was imported. "after" runs three ways: ``cold``, an empty cache folder each run (the
first command after the file changed: parse, validate, write the record); ``warm``, the record
written by an earlier run; ``off``, ``MESHOBS_CONFIG_CACHE=off``. Also one split of the cold
path, in this process: YAML parse, pydantic import and model build, validation, the record's
write and read. The machine may be shared: compare the columns of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from meshobs.config import load_config
config = load_config(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()
envoy = (config.sources.get("envoy") or {}).get("targets") or []
print(json.dumps({"wall": t1 - t0, "cpu": c1 - c0, "pydantic": "pydantic" in sys.modules,
                  "same": [config.raw, config.window_s, repr(config.time), config.mesh], "targets": len(envoy)}))
"""


def one(checkout: Path, config: str, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CHILD, config], cwd=checkout, env=env, capture_output=True,
                         text=True, check=True).stdout
    return dict(json.loads(out))


def split(config: str, runs: int = 5) -> list[str]:
    """The cold path's parts, in this process (this checkout): CPU seconds (``process_time``),
    the median of ``runs`` (the import once: it happens once per process)."""
    sys.path.insert(0, str(HERE.parent))
    t = time.process_time()
    import pydantic  # noqa: F401

    from meshobs import config_model  # noqa: F401
    model = time.process_time() - t
    from meshobs import config_cache
    from meshobs.config import load_yaml, validate
    from meshobs.gc_pause import gc_paused
    path = Path(config)
    data = path.read_bytes()
    parts: dict[str, list[float]] = {"parse": [], "check": [], "write": [], "read": []}
    for _ in range(runs):
        with gc_paused(), tempfile.TemporaryDirectory() as cache:  # as load_config runs them
            os.environ["XDG_CACHE_HOME"] = cache
            t = time.process_time()
            parsed = load_yaml(data.decode())
            parts["parse"].append(time.process_time() - t)
            t = time.process_time()
            cfg = validate(parsed, path)
            parts["check"].append(time.process_time() - t)
            t = time.process_time()
            digest = config_cache.key(data, path)
            config_cache.write(digest, path, parsed, (cfg.raw, cfg.window_s, cfg.time, cfg.mesh))
            parts["write"].append(time.process_time() - t)
            t = time.process_time()
            _, recorded = config_cache.read(data, path)
            parts["read"].append(time.process_time() - t)
            assert recorded is not None
    med = {k: statistics.median(v) for k, v in parts.items()}
    return [f"- import pydantic and build the model: {model:.3f} s (once)",
            f"- YAML parse (libyaml): {med['parse']:.3f} s",
            f"- validation and dump: {med['check']:.3f} s",
            f"- the record's key and write (cold path only): {med['write']:.3f} s",
            f"- the record's key and read (a hit, instead of all of the above): {med['read']:.3f} s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the other checkout (an export of main, precompiled)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", help="write the table to benchmarks/results/NAME.md too")
    args = parser.parse_args()
    before, after = Path(args.before).resolve(), HERE.parent
    load = os.getloadavg()
    base = {k: v for k, v in os.environ.items() if k not in ("MESHOBS_CONFIG_CACHE", "XDG_CACHE_HOME")}
    base["PYTHONDONTWRITEBYTECODE"] = "1"
    kinds = ("before", "after cold", "after warm", "after off")
    runs: dict[str, list[dict[str, object]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as warm:
        one(after, args.config, {**base, "XDG_CACHE_HOME": warm})  # the record the warm runs read
        for i in range(args.runs):
            order = kinds if i % 2 == 0 else kinds[::-1]
            for kind in order:
                with tempfile.TemporaryDirectory() as cold:
                    env = {"before": {**base, "XDG_CACHE_HOME": cold},
                           "after cold": {**base, "XDG_CACHE_HOME": cold},
                           "after warm": {**base, "XDG_CACHE_HOME": warm},
                           "after off": {**base, "MESHOBS_CONFIG_CACHE": "off"}}[kind]
                    runs[kind].append(one(before if kind == "before" else after, args.config, env))
    same = len({json.dumps(r["same"]) for rs in runs.values() for r in rs}) == 1
    wall0 = statistics.median(float(r["wall"]) for r in runs["before"])  # type: ignore[arg-type]
    cpu0 = statistics.median(float(r["cpu"]) for r in runs["before"])  # type: ignore[arg-type]
    rows = []
    for kind, rs in runs.items():
        wall = statistics.median(float(r["wall"]) for r in rs)  # type: ignore[arg-type]
        cpu = statistics.median(float(r["cpu"]) for r in rs)  # type: ignore[arg-type]
        rows.append(f"| {kind} | {wall:.3f} | x{wall / wall0:.2f} | {cpu:.3f} | x{cpu / cpu0:.2f} | "
                    f"{sum(bool(r['pydantic']) for r in rs)}/{len(rs)} |")
    targets = runs["before"][0]["targets"]
    text = "\n".join([
        f"Loading {args.config} ({Path(args.config).stat().st_size / 1e6:.2f} MB, {targets} static Envoy targets) "
        f"in a fresh interpreter, import included; {args.runs} runs each, alternated; load average at the start "
        f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}, at the end {os.getloadavg()[0]:.1f}; shared machine (noisy: "
        "compare the rows of the same run; the CPU columns are the steadier). "
        "Same Config (raw, window, time, mesh) in every run: "
        f"{same}.", "",
        "| | wall s (median) | wall ratio | CPU s (median) | CPU ratio | pydantic imported |",
        "|---|---|---|---|---|---|", *rows, "", "The cold path's parts (in-process, after; CPU s, median of 5):", "",
        *split(args.config)])
    print(text)
    if args.out:
        (HERE / "results" / f"{args.out}.md").write_text(text + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
