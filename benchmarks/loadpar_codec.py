"""The hand-back of normalised sources from a forked child (meshobs.loadsplit): what each encoding
costs per 1,000 proxies, and whether it gives the same objects back.

    .venv/bin/python benchmarks/loadpar_codec.py BUNDLE.tar.gz [--kinds envoy,prometheus,kubernetes]

Each kind's sources are normalised once (cycle collector off, as in build_snapshot), then each
encoding is run twice, alternated, over those parts: CPU seconds (``time.process_time``) to
encode in the child and to decode in the parent, the size, and "exact": decoded == original
*and* every value of the same type (``==`` alone takes 0 for 0.0 and a time in +02:00 for the
same instant in UTC, which print differently).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import pickle
import time
from typing import Any

import msgspec

from meshobs import handback
from meshobs.bundle import iter_bundle
from meshobs.collect import normalize_source
from meshobs.model import SnapshotPart
from meshobs.model.frozen import FrozenDict, freeze


def _frozen(_type: type, obj: Any) -> Any:
    for value in obj.values():
        if value.__class__ is dict or value.__class__ is list:
            return freeze(obj)
    return FrozenDict(obj)


MSGPACK_ENCODER = msgspec.msgpack.Encoder()
MSGPACK_DECODER = msgspec.msgpack.Decoder(list[SnapshotPart], dec_hook=_frozen)

CODECS = {
    "pickle 5 (dataclass __setstate__)": (lambda parts: pickle.dumps(parts, protocol=5), pickle.loads),
    "pickle 5, dataclasses by constructor (meshobs.handback)": (handback.dumps, pickle.loads),
    "msgspec msgpack, typed decode": (MSGPACK_ENCODER.encode, MSGPACK_DECODER.decode),
}


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (tz included for datetimes)."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if hasattr(a, "tzinfo"):
        return bool(a == b and a.tzinfo == b.tzinfo)
    return bool(a == b)


def _per(seconds: float, proxies: int) -> str:
    return f"{seconds / proxies * 1000:.3f}" if proxies else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--kinds", default="envoy,prometheus,kubernetes")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    gc.disable()
    bundle, sources = iter_bundle(args.bundle)
    by_kind: dict[str, list[SnapshotPart]] = {k: [] for k in kinds}
    cpu = dict.fromkeys(kinds, 0.0)
    for raw in sources:
        if raw.kind in by_kind:
            t = time.process_time()
            by_kind[raw.kind].append(normalize_source(raw, bundle.time, bundle.window_s))
            cpu[raw.kind] += time.process_time() - t
    print("| kind | sources (proxies) | normalise CPU s | encoding | size MB | encode CPU s | decode CPU s | "
          "encode / 1,000 proxies | decode / 1,000 proxies | exact |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        parts = by_kind[kind]
        proxies = sum(len(p.proxies) for p in parts)
        rows: dict[str, list[tuple[float, float, int, bool]]] = {name: [] for name in CODECS}
        for run in range(2):
            for name, (encode, decode) in (list(CODECS.items()) if run == 0 else list(CODECS.items())[::-1]):
                t = time.process_time()
                data = encode(parts)
                enc = time.process_time() - t
                t = time.process_time()
                back = decode(data)
                dec = time.process_time() - t
                rows[name].append((enc, dec, len(data), run == 0 and same(back, parts)))
                del back, data
        for name, got in rows.items():
            enc = min(r[0] for r in got)
            dec = min(r[1] for r in got)
            print(f"| {kind} | {len(parts)} ({proxies}) | {cpu[kind]:.2f} | {name} | {got[0][2] / 1e6:.1f} | "
                  f"{enc:.2f} | {dec:.2f} | {_per(enc, proxies)} | {_per(dec, proxies)} | "
                  f"{'yes' if got[0][3] else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
