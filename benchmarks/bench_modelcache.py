"""Benchmark: a replay that reads a bundle's model (meshobs.modelcache) against one that
normalises the payloads, and against a checkout from before.

    .venv/bin/python benchmarks/bench_modelcache.py --sizes 1000,5000 --runs 5 \\
        --before /tmp/before-s26 --cache /tmp/bench-cache-s25 --before-own-archive --out snapcache-s26

For each size, the generated-N bundle of ``--cache`` (written by bench_collect.py
--child-generate, read only) is written again by this checkout into a temporary directory:
the same payloads, now with the model (the time that takes, with and without the model, is the
cost of writing it). Then, alternated in each round, on that one archive:

- ``model``: ``diagnose --all -o json`` by this checkout, which reads the model;
- ``raw``: the same with ``--no-model-cache`` (the payloads normalised, as before);
- ``before``: the same by ``--before`` (which does not know the member and skips it); with
  ``--before-own-archive``, on ``--cache``'s archive as it is instead (written by the checkout
  before, with the model it reads: a change of the model's format is compared with the model
  before, not with no model), at the same relative path (the JSON names it);
- ``load model`` / ``load raw`` (/ ``load before``): the load alone (iter_bundle +
  build_snapshot) in a process, which prints its own wall and CPU seconds for it.

Each is a fresh process timed by ``/usr/bin/time`` (wall, user CPU, max RSS); the three JSON
documents must be byte-identical. Results: ``benchmarks/results/<out>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")
LOAD = """
import sys, time
from meshobs import modelcache
from meshobs.bundle import iter_bundle
from meshobs.collect import build_snapshot
import meshobs.engine  # imported by a command anyway (and by build_snapshot's normalising path)
modelcache.allow(sys.argv[2] == "model")
t = time.perf_counter(); c = time.process_time()
h, s = iter_bundle(sys.argv[1]); h.stream = s
build_snapshot(h, origin="x", keep_raw=False)
print(round(time.perf_counter() - t, 3), round(time.process_time() - c, 3))
"""
WRITE = """
import sys, time
from meshobs.bundle import read_bundle, write_bundle
b = read_bundle(sys.argv[1])
t = time.perf_counter(); c = time.process_time()
write_bundle(b, sys.argv[2], model=sys.argv[3] == "model")
print(round(time.perf_counter() - t, 2), round(time.process_time() - c, 2))
"""


def timed(cmd: list[str], cwd: Path, out: Path | None = None, checkout: Path | None = None) -> dict[str, Any]:
    """One run under /usr/bin/time: wall, user CPU (this process and its children), max RSS.
    ``checkout``: where meshobs is imported from (PYTHONPATH), when not ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(checkout)} if checkout is not None else None
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        stdout = out.open("wb") if out is not None else subprocess.PIPE
        try:
            proc = subprocess.run(["/usr/bin/time", "-o", t.name, "-f", "%e %U %M", *cmd], cwd=cwd, stdout=stdout,
                                  stderr=subprocess.PIPE, timeout=900, check=False, env=env)
        finally:
            if out is not None:
                stdout.close()  # type: ignore[union-attr]
        wall, user, rss = t.read().split()[-3:]
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    row: dict[str, Any] = {"wall_s": float(wall), "user_s": float(user), "max_rss_mb": round(int(rss) / 1024)}
    if out is not None:
        row["sha1"] = hashlib.sha1(out.read_bytes()).hexdigest()[:12]
    elif proc.stdout:
        row["stdout"] = proc.stdout.decode().strip()
    return row


def precompile(*checkouts: Path) -> None:
    """Write every measured checkout's bytecode first (see bench_collect.precompile: a run under
    ``PYTHONDONTWRITEBYTECODE`` would compile each module edited since its ``.pyc``, every run)."""
    for checkout in checkouts:
        subprocess.run([PY, "-m", "compileall", "-q", "meshobs", "collectors", "tui"], cwd=checkout, check=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def size(n: int, cache: Path, work: Path, runs: int, before: Path | None, own: bool = False) -> dict[str, Any]:
    source = cache / f"generated-{n}.tar.gz"
    # Each checkout replays from its own directory an archive of the same relative name (the
    # diagnosis names it), importing meshobs from its checkout by PYTHONPATH.
    (work / "now").mkdir(exist_ok=True)
    (work / "base").mkdir(exist_ok=True)
    name = f"generated-{n}.tar.gz"
    bundle = work / "now" / name
    writes = {}
    for mode in ("model", "none"):
        target = work / f"w-{mode}.tar.gz"
        row = timed([PY, "-c", WRITE, str(source), str(target), mode], ROOT)
        wall, cpu = row.pop("stdout").split()
        writes[mode] = {**row, "write_wall_s": float(wall), "write_cpu_s": float(cpu)}
        if mode == "model":
            shutil.move(target, bundle)
        else:
            target.unlink()
    base = work / "base" / name
    if own:
        shutil.copyfile(source, base)
    else:
        shutil.copyfile(bundle, base)
    kinds = ("model", "raw", "before", "load model", "load raw", "load before")
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for _ in range(runs):
        load = loadavg()
        out = work / "out.json"
        cmd = ["-m", "meshobs", "diagnose", "--all", "-o", "json", "--from", name]
        rounds["model"].append({**timed([PY, *cmd], work / "now", out, ROOT), "load": load})
        rounds["raw"].append({**timed([PY, *cmd, "--no-model-cache"], work / "now", out, ROOT), "load": loadavg()})
        if before is not None:
            rounds["before"].append({**timed([PY, *cmd], work / "base", out, before), "load": loadavg()})
        for mode in ("model", "raw"):
            rounds[f"load {mode}"].append({**_split(timed([PY, "-c", LOAD, name, mode], work / "now", None, ROOT)),
                                           "load": loadavg()})
        if before is not None:
            rounds["load before"].append({**_split(timed([PY, "-c", LOAD, name, "model"], work / "base", None, before)),
                                          "load": loadavg()})
    medians = {k: {m: round(statistics.median(r[m] for r in rows), 2)
                   for m in ("wall_s", "user_s", "max_rss_mb", "load_wall_s", "load_cpu_s") if m in rows[0]}
               for k, rows in rounds.items() if rows}
    outputs = {r["sha1"] for k in ("model", "raw", "before") for r in rounds[k]}
    return {"n": n, "writes": writes, "rounds": rounds, "medians": medians, "same_output": len(outputs) == 1,
            "output_sha1": sorted(outputs), "member_mb": _member_mb(bundle)}


def _split(row: dict[str, Any]) -> dict[str, Any]:
    """A LOAD run's own seconds (the load alone, without the interpreter and its imports)."""
    wall, cpu = row.pop("stdout").split()[-2:]
    return {**row, "load_wall_s": float(wall), "load_cpu_s": float(cpu)}


def _member_mb(bundle: Path) -> dict[str, float]:
    import tarfile

    with tarfile.open(bundle) as tar:
        sizes = {m.name: m.size for m in tar.getmembers()}
    return {"bundle.json": round(sizes["bundle.json"] / 2**20, 1),
            "model.msgpack": round(sizes["model.msgpack"] / 2**20, 1),
            "assembled.msgpack": round(sizes.get("assembled.msgpack", 0) / 2**20, 1),
            "packs": round(sum(v for k, v in sizes.items() if k.startswith("payloads/")) / 2**20, 1),
            "archive": round(bundle.stat().st_size / 2**20, 1)}


def markdown(rows: list[dict[str, Any]], note: str) -> str:
    lines = ["# Replay with the bundle's model (modelcache)", "", note, "",
             "Medians of alternated runs on one archive per size (fresh processes, /usr/bin/time; "
             "load average at each run in the JSON).", ""]
    for row in rows:
        m = row["medians"]
        lines += [f"## generated-{row['n']}", "",
                  f"Archive {row['member_mb']['archive']} MB: bundle.json {row['member_mb']['bundle.json']} MB, "
                  f"assembled.msgpack {row['member_mb']['assembled.msgpack']} MB, "
                  f"model.msgpack {row['member_mb']['model.msgpack']} MB, packs {row['member_mb']['packs']} MB "
                  "(uncompressed).", "",
                  "| run | wall s | user CPU s | max RSS MB | load alone: wall s | CPU s |",
                  "|---|---|---|---|---|---|"]
        for k in ("model", "raw", "before", "load model", "load raw", "load before"):
            if k in m:
                lines.append(f"| {k} | {m[k]['wall_s']} | {m[k]['user_s']} | {m[k]['max_rss_mb']} | "
                             f"{m[k].get('load_wall_s', '')} | {m[k].get('load_cpu_s', '')} |")
        if "before" in m:
            lines += ["", f"model / before: wall {m['model']['wall_s'] / m['before']['wall_s']:.2f}x, "
                          f"user CPU {m['model']['user_s'] / m['before']['user_s']:.2f}x; "
                          f"model / raw: wall {m['model']['wall_s'] / m['raw']['wall_s']:.2f}x, "
                          f"user CPU {m['model']['user_s'] / m['raw']['user_s']:.2f}x."]
        lines += ["", f"Same JSON from all three: {row['same_output']} ({', '.join(row['output_sha1'])}).", "",
                  "Writing the archive (read_bundle, then write_bundle timed in the process): "
                  f"with the model {row['writes']['model']['write_wall_s']} s wall / "
                  f"{row['writes']['model']['write_cpu_s']} s CPU (max RSS {row['writes']['model']['max_rss_mb']} MB), "
                  f"without {row['writes']['none']['write_wall_s']} s / {row['writes']['none']['write_cpu_s']} s "
                  f"({row['writes']['none']['max_rss_mb']} MB).", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", default="/tmp/bench-cache")
    parser.add_argument("--before", default=None)
    parser.add_argument("--out", default="modelcache-s25")
    parser.add_argument("--before-own-archive", action="store_true",
                        help="--before replays --cache's archive as it is (with the model it wrote)")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    before = Path(args.before) if args.before else None
    precompile(ROOT, *([before] if before is not None else []))
    rows = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-modelcache-") as tmp:
        for n in (int(x) for x in args.sizes.split(",") if x):
            rows.append(size(n, Path(args.cache), Path(tmp), args.runs, before, args.before_own_archive))
            print(json.dumps(rows[-1]["medians"]), file=sys.stderr)
    results = ROOT / "benchmarks" / "results"
    doc = {"rows": rows, "before": str(before), "seconds": round(time.time() - started), "note": args.note,
           "cores": os.cpu_count(), "before_own_archive": args.before_own_archive}
    (results / f"{args.out}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (results / f"{args.out}.md").write_text(markdown(rows, args.note) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
