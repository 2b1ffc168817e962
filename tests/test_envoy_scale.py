"""The Envoy fan-out at mesh scale: 1,000 admin endpoints of which 5 % trickle (a byte every
0.2 s, never tripping a per-read timeout). The trickling ones cost their time budget and no
more, so the 950 good proxies are all reported, well within the run's deadline.

The timeouts are the collector's defaults (5 s a request, 32 proxies at a time), not shorter
ones to make the test quick: a good proxy's answer must never race the timeout. Client and
server share one process here, so under load a loopback answer waits for the CPU and the GIL
behind 60-odd threads: at load 15 on 2 cores the slowest of the 2,850 good answers took 1.7 s
(with 0.5 s timeouts a few good proxies were lost in every run at load 13-18). A trickled answer
(83 bytes, one each 0.2 s) needs 16.6 s whole, so 5 s still cuts every trickling proxy; they cost
~10 s of wall (50 of them on 32 workers: two for some)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from meshobs.collectors.base import FetchContext
from meshobs.collectors.envoy import EnvoyCollector, Target, static_transport
from meshobs.collectors.envoy.fetch import DEFAULT_CONCURRENCY
from meshobs.config import validate
from tests.support.faults import Fault, FaultServer

N = 1000
BAD = frozenset(range(7, N, 20))  # 50 of them, spread out
DEADLINE_S = 60.0  # the run's: two trickled waits per worker (10 s), plus the good proxies' CPU under load
TIMEOUT_S = 5.0  # EnvoyCollector's default
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
        raws = EnvoyCollector(targets, timeout_s=TIMEOUT_S, concurrency=DEFAULT_CONCURRENCY,
                              transport=static_transport({}, DEFAULT_CONCURRENCY)).fetch(ctx)
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
