"""Slow-hop check: the dominant hop of the critical paths through a service."""

from __future__ import annotations

import random

from meshobs.checks.base import Settings
from meshobs.checks.traces import entry_spans
from meshobs.model import Trace
from tests.support.e2_builders import pairs, run, snapshot, svc, trace

CART, DB, FRONT = svc("cart-service"), svc("database-service"), svc("frontend")


def shop_trace(db_ms: int, cart_self_ms: int = 5, trace_id: str | None = None) -> Trace:
    """frontend -> cart-service -> database-service (-> SELECT), plus a parallel product call."""
    cart_end = 10 + cart_self_ms + db_ms + 4
    return trace([
        ("f", None, "frontend.shop", "GET /", 0, cart_end + 5),
        ("p", "f", "product-service.shop", "GET /items", 2, 8),
        ("c", "f", "cart-service.shop", "GET /cart", 10, cart_end),
        ("d", "c", "database-service.shop", "query", 10 + cart_self_ms, 10 + cart_self_ms + db_ms + 2),
        ("s", "d", "database-service.shop", "SELECT", 11 + cart_self_ms, 11 + cart_self_ms + db_ms),
    ], trace_id)


def traces(n: int, db_ms: tuple[int, int], seed: int = 3) -> list[Trace]:
    rnd = random.Random(seed)
    return [shop_trace(rnd.randint(*db_ms), trace_id=f"t{i:02d}") for i in range(n)]


def test_slow_database_dominates_cart_and_database() -> None:
    snap = snapshot(traces=traces(20, (300, 900)))
    for target in (CART, DB):
        [f] = run(snap, target, prefixes=("traces.",))
        assert (f.code, f.subject) == ("MSH0501", "Hop database-service.shop SELECT")
        assert f.service == DB  # the hop's service, so the engine can rank it as the cause
        assert f.evidence["share"] > 0.9
        assert 300 <= f.evidence["p50_self_ms"] <= f.evidence["p99_self_ms"] <= 900
        assert len(f.evidence["example_trace_ids"]) == 3
        assert f.evidence["traces"] == 20


def test_examples_are_the_slowest_traces() -> None:
    ts = [shop_trace(50, trace_id=f"fast{i}") for i in range(6)] + [shop_trace(800, trace_id="slow")]
    [f] = run(snapshot(traces=ts), CART, prefixes=("traces.",))
    assert f.evidence["example_trace_ids"][0] == "slow"


def test_fast_database_is_only_information() -> None:
    snap = snapshot(traces=traces(20, (2, 20)))
    findings = run(snap, CART, prefixes=("traces.",))
    assert pairs(findings, "warning") == set()
    assert [f.code for f in findings] == ["MSH0502"]


def test_threshold_follows_settings() -> None:
    snap = snapshot(traces=traces(20, (300, 900)))
    assert pairs(run(snap, CART, prefixes=("traces.",), settings=Settings(p99_ms=10_000)), "warning") == set()


def test_too_few_traces_say_nothing() -> None:
    assert run(snapshot(traces=traces(4, (300, 900))), CART, prefixes=("traces.",)) == []


def test_traces_not_through_the_service_are_ignored() -> None:
    other = [trace([("x", None, "frontend.shop", "GET /health", 0, 900)], f"h{i}") for i in range(10)]
    assert run(snapshot(traces=other), CART, prefixes=("traces.",)) == []


def test_frontend_critical_path_excludes_the_parallel_hidden_call() -> None:
    # product 2..8 runs while frontend works alone; it finishes before cart starts, so it is on
    # the path, but with 6 ms against the database's hundreds it ranks low
    [f] = run(snapshot(traces=traces(10, (300, 900))), FRONT, prefixes=("traces.",))
    ranking = [r["hop"] for r in f.evidence["ranking"]]
    assert ranking[0] == "database-service.shop SELECT"
    assert ranking.index("product-service.shop GET /items") > 0


def test_entry_spans_are_the_services_topmost_spans() -> None:
    t = shop_trace(100)
    assert [s.span_id for s in entry_spans(t, DB)] == ["d"]
    assert [s.span_id for s in entry_spans(t, CART)] == ["c"]
