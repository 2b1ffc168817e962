"""Slow-hop check on the shop's traces alone (no metrics: "slow" is the traced p99 over the
threshold). tests/test_slow_hop_freight.py covers metrics, upstream breaches and baselines."""

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
    snap = snapshot(traces=traces(20, (700, 1600)))
    for target in (CART, DB):
        [f] = run(snap, target, prefixes=("traces.",))
        assert (f.code, f.subject) == ("MSH0501", "Hop database-service.shop SELECT")
        assert f.service == DB  # the hop's service, so the engine can rank it as the cause
        assert f.evidence["share"] > 0.9
        assert 700 <= f.evidence["p50_self_ms"] <= f.evidence["p99_self_ms"] <= 1600
        assert len(f.evidence["example_trace_ids"]) == 3
        assert f.evidence["traces"] == 20


def test_examples_are_the_slowest_traces() -> None:
    ts = [shop_trace(900, trace_id=f"fast{i}") for i in range(6)] + [shop_trace(1800, trace_id="slow"),
                                                                     shop_trace(1700, trace_id="slow2")]
    [f] = run(snapshot(traces=ts), CART, prefixes=("traces.",))
    assert list(f.evidence["example_trace_ids"][:2]) == ["slow", "slow2"]


def test_fast_database_gives_nothing_unless_asked() -> None:
    snap = snapshot(traces=traces(20, (2, 20)))
    assert run(snap, CART, prefixes=("traces.",)) == []
    asked = run(snap, CART, prefixes=("traces.",), settings=Settings(explain_hops=True))
    assert [(f.code, f.severity.value) for f in asked] == [("MSH0502", "info")]
    assert asked[0].evidence["because"] == "asked for"


def test_one_slow_request_in_twenty_is_an_outlier_not_a_tail() -> None:
    ts = [*traces(19, (100, 400)), shop_trace(1500, trace_id="outlier")]
    assert run(snapshot(traces=ts), CART, prefixes=("traces.",)) == []


def test_threshold_follows_settings() -> None:
    snap = snapshot(traces=traces(20, (700, 1600)))
    assert pairs(run(snap, CART, prefixes=("traces.",), settings=Settings(p99_ms=10_000)), "warning") == set()


def test_too_few_traces_say_nothing() -> None:
    assert run(snapshot(traces=traces(4, (1300, 1900))), CART, prefixes=("traces.",)) == []


def test_traces_not_through_the_service_are_ignored() -> None:
    other = [trace([("x", None, "frontend.shop", "GET /health", 0, 900)], f"h{i}") for i in range(10)]
    assert run(snapshot(traces=other), CART, prefixes=("traces.",)) == []


def test_frontend_critical_path_excludes_the_parallel_hidden_call() -> None:
    # product 2..8 runs while frontend works alone; it finishes before cart starts, so it is on
    # the path, but with 6 ms against the database's hundreds it ranks low
    [f] = run(snapshot(traces=traces(10, (1300, 1900))), FRONT, prefixes=("traces.",))
    ranking = [r["hop"] for r in f.evidence["ranking"]]
    assert ranking[0] == "database-service.shop SELECT"
    assert ranking.index("product-service.shop GET /items") > 0


def test_entry_spans_are_the_services_topmost_spans() -> None:
    t = shop_trace(100)
    assert [s.span_id for s in entry_spans(t, DB)] == ["d"]
    assert [s.span_id for s in entry_spans(t, CART)] == ["c"]
