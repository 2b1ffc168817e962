"""Benchmark: the CPU of normalising every Envoy proxy of a replay bundle, in-process.

Reads the bundle whole (``read_bundle``: the archive's decompression is not timed), then times
the Envoy normaliser over its ``envoy`` sources only (CPU: ``time.process_time``; the cycle
collector off, as ``build_snapshot`` pauses it), and prints one JSON line: the CPU of each run,
the number of proxies, and a digest of everything the normaliser produced (proxies,
certificates, source statuses, by ``repr``)::

    python benchmarks/envoy_normalise.py BUNDLE [--runs 3] [--profile OUT.prof]
    python benchmarks/envoy_normalise.py BUNDLE --before /tmp/before-s23 --runs 4
    python benchmarks/envoy_normalise.py BUNDLE --before /tmp/before-s24 --runs 6 --payload config_dump

``--second-round``: each run normalises every proxy twice, the caches kept between the two (a
dashboard's refresh, a drift loop over the same proxies); the second round's CPU is reported
apart (``second_cpu_s``), and its output must be the first round's.

``--before DIR``: DIR's ``collectors/envoy`` package is loaded beside this checkout's (under
another name; the rest of meshobs is this checkout's, so only the Envoy normaliser differs) and
the two are run alternately in the same process (before/after, then after/before...). On a
shared machine this is the fairest ratio: both see the same load, moment by moment. Every run
starts cold: the normalisers' memoised readings (cluster names, shared cluster and listener
readings, certificates, stat plans) are emptied first, as in a fresh replay.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import hashlib
import importlib.util
import json
import statistics
import sys
import time
from types import ModuleType
from typing import Any

_MODULES = ("config_dump", "config_typed", "certs", "names", "normalize", "stats")


def _load_other(path: str) -> ModuleType:
    """The ``collectors/envoy`` package of another checkout, as module ``before_envoy``."""
    root = f"{path.rstrip('/')}/collectors/envoy"
    spec = importlib.util.spec_from_file_location("before_envoy", f"{root}/__init__.py",
                                                  submodule_search_locations=[root])
    if spec is None or spec.loader is None:
        raise SystemExit(f"no collectors/envoy package under {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["before_envoy"] = module
    spec.loader.exec_module(module)
    return module


def _cold(package: ModuleType) -> None:
    """Empty the package's memoised readings, so that a run costs what a fresh replay costs."""
    for name in _MODULES:
        module = sys.modules.get(f"{package.__name__}.{name}")
        for value in vars(module).values() if module else ():
            if isinstance(value, functools._lru_cache_wrapper):
                value.cache_clear()
        for attr in ("_READINGS", "_PLANS"):
            if module is not None and isinstance(getattr(module, attr, None), dict):
                getattr(module, attr).clear()


# --payload: one payload's parser alone, as normalize calls it (module, function).
_PARSERS = {"config_dump": ("config_dump", "parse_config_dump"), "stats": ("stats", "parse_stats"),
            "server_info": ("server_info", "parse_server_info")}


def _run(package: ModuleType, raws: list[Any], ctx: Any, profile: str | None = None,
         payload: str | None = None, cold: bool = True) -> tuple[float, str]:
    if cold:
        _cold(package)
    if payload:
        module, function = _PARSERS[payload]
        parse = getattr(sys.modules[f"{package.__name__}.{module}"], function)
        bodies = [p.body for p in (r.get(payload) for r in raws) if p is not None and p.body]

        def work() -> list[Any]:
            return [parse(b) for b in bodies]
    else:
        def work() -> list[Any]:
            return [package.normalize(r, ctx) for r in raws]
    gc.collect()
    gc.disable()
    prof = cProfile.Profile() if profile else None
    start = time.process_time()
    if prof:
        prof.enable()
    parts = work()
    if prof and profile:
        prof.disable()
        prof.dump_stats(profile)
    cpu = time.process_time() - start
    gc.enable()
    digest = hashlib.sha1()
    for p in parts:
        digest.update(repr(p if payload else (p.proxies, p.certs, p.sources)).encode())
    return cpu, digest.hexdigest()[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--before", help="another checkout, run alternately with this one")
    ap.add_argument("--profile", help="write a cProfile of this checkout's first run here")
    ap.add_argument("--second-round", action="store_true",
                    help="normalise twice per run, caches kept, and time the second round apart")
    ap.add_argument("--payload", choices=sorted(_PARSERS),
                    help="time only this payload's parser over every proxy (the digest is of its readings)")
    args = ap.parse_args()

    import meshobs
    import meshobs.collectors.envoy as after
    from meshobs.bundle import read_bundle
    from meshobs.collectors.base import NormalizeContext

    bundle = read_bundle(args.bundle)
    raws = [r for r in bundle.sources if r.kind == "envoy"]
    ctx = NormalizeContext(time=bundle.time, window_s=bundle.window_s)
    checkouts = {"after": after}
    if args.before:
        checkouts["before"] = _load_other(args.before)
        from cryptography import x509  # noqa: F401  (imported once, outside both timings)
    cpu: dict[str, list[float]] = {k: [] for k in checkouts}
    second: dict[str, list[float]] = {k: [] for k in checkouts}
    digests: dict[str, set[str]] = {k: set() for k in checkouts}
    for i in range(args.runs):
        order = sorted(checkouts, reverse=i % 2 == 0)  # before first on even runs
        for label in order:
            seconds, digest = _run(checkouts[label], raws, ctx,
                                   args.profile if label == "after" and i == 0 else None, args.payload)
            cpu[label].append(round(seconds, 3))
            digests[label].add(digest)
            if args.second_round:
                seconds, digest = _run(checkouts[label], raws, ctx, None, args.payload, cold=False)
                second[label].append(round(seconds, 3))
                digests[label].add(digest)
    out: dict[str, Any] = {"meshobs": meshobs.__file__, "bundle": args.bundle, "proxies": len(raws),
                           "payload": args.payload or "all",
                           "cpu_s": cpu, "median_s": {k: statistics.median(v) for k, v in cpu.items()},
                           "digests": {k: sorted(v) for k, v in digests.items()}}
    if args.second_round:
        out["second_cpu_s"] = second
        out["second_median_s"] = {k: statistics.median(v) for k, v in second.items()}
        if args.before:
            out["second_ratio"] = round(out["second_median_s"]["after"] / out["second_median_s"]["before"], 3)
    if args.before:
        out["ratio"] = round(out["median_s"]["after"] / out["median_s"]["before"], 3)
        out["same_output"] = digests["after"] == digests["before"] and len(digests["after"]) == 1
    print(json.dumps(out))


if __name__ == "__main__":
    main()
