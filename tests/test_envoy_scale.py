"""The Envoy fan-out at mesh scale: 1,000 admin endpoints of which 5 % trickle (a byte every
0.2 s, never tripping a per-read timeout). The trickling ones cost their time budget and no
more, so the 950 good proxies are all reported, well within the run's deadline."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from meshobs.collectors.base import FetchContext
from meshobs.collectors.envoy import EnvoyCollector, Target, static_transport
from meshobs.config import validate
from tests.support.faults import Fault, FaultServer

N = 1000
BAD = frozenset(range(7, N, 20))  # 50 of them, spread out
DEADLINE_S = 30.0
ANSWERS = {"ready": Fault.ok("LIVE", content_type="text/plain"), "server_info": Fault.ok('{"state": "LIVE"}'),
           "config_dump": Fault.ok('{"configs": []}')}


def _answer(path: str) -> Fault:
    _, proxy, endpoint = path.split("?", 1)[0].split("/", 2)
    return Fault.trickle(0.2) if int(proxy[1:]) in BAD else ANSWERS[endpoint]


@pytest.mark.slow
def test_thousand_proxies_with_five_percent_trickling() -> None:
    with FaultServer(_answer) as srv:
        targets = [Target("mesh", f"p{i}", f"{srv.url}/p{i}", workload=f"w{i % 50}") for i in range(N)]
        # drift's needs (the config dump only): three requests per proxy keep the test quick.
        ctx = FetchContext(time=datetime(2026, 1, 1, tzinfo=UTC), window_s=300, config=validate({}),
                           deadline=time.monotonic() + DEADLINE_S, needs=frozenset({"effective"}))
        start = time.monotonic()
        raws = EnvoyCollector(targets, timeout_s=0.5, concurrency=32,
                              transport=static_transport({}, 32)).fetch(ctx)
        took = time.monotonic() - start
    assert took < DEADLINE_S
    by_pod = {r.meta["pod"]: r for r in raws}
    good = [p for i, p in enumerate(f"p{i}" for i in range(N)) if i not in BAD]
    assert len(good) == 950
    assert all(by_pod[p].get("config_dump") is not None and by_pod[p].get("config_dump").ok for p in good)  # type: ignore[union-attr]
    for i in BAD:
        ready = by_pod[f"p{i}"].get("ready")
        assert ready is not None and "timed out" in (ready.error or "")
        assert len(by_pod[f"p{i}"].payloads) == 1  # nothing else asked of a proxy that never answered
