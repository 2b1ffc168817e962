"""Critical path the Jaeger UI way: last-finishing child, truncation, FOLLOWS_FROM, orphans."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from meshobs.critical_path import (
    HopStats,
    Section,
    critical_path,
    hop_times,
    quantile,
    rank_hops,
    root_spans,
)
from meshobs.model import Span, Trace


def sp(span_id: str, parent: str | None, start: int, end: int, service: str = "svc",
       op: str | None = None, ref: str = "CHILD_OF") -> Span:
    return Span(trace_id="t", span_id=span_id, parent_id=parent, service=service,
                operation=op or span_id, start_us=start, duration_us=end - start, ref_type=ref)


def path(*spans: Span) -> list[tuple[str, int, int]]:
    return [(s.span_id, s.start_us, s.end_us) for s in critical_path(Trace("t", spans))]


def test_single_span_trace_is_its_own_critical_path() -> None:
    assert path(sp("a", None, 0, 100)) == [("a", 0, 100)]


def test_sequential_children_are_all_on_the_path() -> None:
    # parent 0..100; child b 10..40 then c 50..90 (parent works in the gaps)
    got = path(sp("a", None, 0, 100), sp("b", "a", 10, 40), sp("c", "a", 50, 90))
    assert got == [("a", 0, 10), ("b", 10, 40), ("a", 40, 50), ("c", 50, 90), ("a", 90, 100)]


def test_back_to_back_children_both_count() -> None:
    # b ends exactly when c starts: b is on the path, not booked as the parent's self time
    got = path(sp("a", None, 0, 100), sp("b", "a", 0, 50), sp("c", "a", 50, 100))
    assert got == [("b", 0, 50), ("c", 50, 100)]


def test_parallel_children_only_the_last_finishing_is_followed() -> None:
    # b 10..80 and c 20..60 run in parallel; b finishes last; c is hidden behind b
    got = path(sp("a", None, 0, 100), sp("b", "a", 10, 80), sp("c", "a", 20, 60))
    assert got == [("a", 0, 10), ("b", 10, 80), ("a", 80, 100)]


def test_parallel_overlap_earlier_child_not_chosen_when_it_ends_after_the_next_starts() -> None:
    # b 0..60, c 50..90: returning from c at 50, b (ends 60) did not finish before -> parent
    got = path(sp("a", None, 0, 100), sp("b", "a", 0, 60), sp("c", "a", 50, 90))
    assert got == [("a", 0, 50), ("c", 50, 90), ("a", 90, 100)]


def test_nested_grandchildren() -> None:
    got = path(sp("a", None, 0, 100), sp("b", "a", 10, 90), sp("c", "b", 20, 30), sp("d", "b", 40, 80))
    assert got == [("a", 0, 10), ("b", 10, 20), ("c", 20, 30), ("b", 30, 40), ("d", 40, 80),
                   ("b", 80, 90), ("a", 90, 100)]


def test_child_overflowing_its_parent_is_truncated() -> None:
    # b 50..150 overflows a 0..100: truncated to 50..100; its child c 120..140 falls outside
    # the truncated b and is dropped
    got = path(sp("a", None, 0, 100), sp("b", "a", 50, 150), sp("c", "b", 120, 140))
    assert got == [("a", 0, 50), ("b", 50, 100)]


def test_child_starting_before_parent_is_truncated_at_the_start() -> None:
    got = path(sp("a", None, 10, 100), sp("b", "a", 0, 40))
    assert got == [("b", 10, 40), ("a", 40, 100)]


def test_child_entirely_outside_parent_is_dropped() -> None:
    got = path(sp("a", None, 0, 100), sp("b", "a", 100, 200))
    assert got == [("a", 0, 100)]


def test_follows_from_child_and_its_descendants_are_off_the_path() -> None:
    got = path(sp("a", None, 0, 100), sp("b", "a", 10, 30),
               sp("q", "a", 40, 99, ref="FOLLOWS_FROM"), sp("w", "q", 50, 90))
    assert got == [("a", 0, 10), ("b", 10, 30), ("a", 30, 100)]
    async_only = Trace("t", (sp("a", None, 0, 9), sp("q", "a", 1, 2, ref="FOLLOWS_FROM")))
    assert [s.span_id for s in root_spans(async_only)] == ["a"]


def test_missing_parent_span_makes_the_orphan_a_root_of_its_own() -> None:
    spans = (sp("a", None, 0, 100), sp("b", "a", 10, 20), sp("x", "lost", 30, 60), sp("y", "x", 40, 50))
    assert [s.span_id for s in root_spans(Trace("t", spans))] == ["a", "x"]
    assert path(*spans) == [("a", 0, 10), ("b", 10, 20), ("a", 20, 100),
                            ("x", 30, 40), ("y", 40, 50), ("x", 50, 60)]


def test_subtree_walk_from_a_given_span() -> None:
    spans = (sp("a", None, 0, 100), sp("b", "a", 10, 90), sp("c", "b", 20, 30))
    got = [(s.span_id, s.start_us, s.end_us) for s in critical_path(Trace("t", spans), "b")]
    assert got == [("b", 10, 20), ("c", 20, 30), ("b", 30, 90)]
    assert critical_path(Trace("t", spans), "nope") == []


def test_cycle_in_broken_data_terminates() -> None:
    spans = (sp("a", None, 0, 100), sp("b", "c", 10, 90), sp("c", "b", 20, 30))
    assert path(*spans) == [("a", 0, 100)]


def _jaeger_trace(doc: dict) -> Trace:  # type: ignore[type-arg]
    procs = doc["processes"]
    spans = []
    for s in doc["spans"]:
        refs = s.get("references") or []
        parent = refs[0]["spanID"] if refs else None
        spans.append(Span(trace_id=s["traceID"], span_id=s["spanID"], parent_id=parent,
                          service=procs[s["processID"]]["serviceName"], operation=s["operationName"],
                          start_us=int(s["startTime"]), duration_us=int(s["duration"]),
                          ref_type=refs[0]["refType"] if refs else "CHILD_OF"))
    return Trace(doc["traceID"], tuple(spans))


@pytest.mark.parametrize("name", ["jaeger-ui/spansAmongEachOther.json", "jaeger-ui/TraceGraph__testTrace.json",
                                  "jaeger/ui_01.json"])
def test_real_traces_sections_tile_each_root_without_overlap(corpus: Path, name: str) -> None:
    doc = json.loads((corpus / "jaeger-traces" / name).read_text())
    doc = doc["data"][0] if "data" in doc else doc
    trace = _jaeger_trace(doc)
    roots = root_spans(trace)
    assert roots
    for root in roots:
        sections = critical_path(trace, root.span_id)
        # sections are chronological, never overlap, and exactly cover the root's time range
        assert sections[0].start_us == root.start_us and sections[-1].end_us == root.end_us
        for prev, nxt in itertools.pairwise(sections):
            assert prev.end_us == nxt.start_us
        assert sum(s.duration_us for s in sections) == root.duration_us


def test_hop_times_and_ranking() -> None:
    t1 = [Section("a", "cart", "GET", 0, 10), Section("d", "db", "query", 10, 90), Section("a", "cart", "GET", 90, 100)]
    t2 = [Section("a", "cart", "GET", 0, 30), Section("d", "db", "query", 30, 50)]
    assert hop_times(t1) == {("cart", "GET"): 20, ("db", "query"): 80}
    ranked = rank_hops([("t1", t1), ("t2", t2)], examples=1)
    assert [h.hop for h in ranked] == [("db", "query"), ("cart", "GET")]
    db: HopStats = ranked[0]
    assert db.total_us == 100 and db.traces == 2
    assert db.share == pytest.approx(100 / 150)
    assert db.p50_us == pytest.approx(50.0) and db.p99_us == pytest.approx(79.4)
    assert db.example_trace_ids == ("t1",)


def test_quantile_matches_linear_interpolation() -> None:
    assert quantile([1, 2, 3, 4], 0.5) == 2.5
    assert quantile([5], 0.99) == 5
    with pytest.raises(ValueError):
        quantile([], 0.5)
