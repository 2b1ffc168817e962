"""The shipped recording-rules file is the rules meshobs reads (collectors/prometheus/rules.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from meshobs.collectors.prometheus.rules import EDGES_GROUP, ISTIO_GROUP, groups
from meshobs.collectors.promql import (
    EDGE_FAMILIES,
    EDGE_MARKER,
    EDGE_PREFIX,
    GRAPH_QUERIES,
    RECORDED_FAMILIES,
    RECORDED_PREFIX,
)

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "prometheus-recording-rules.yaml"


def _normal(doc: list[dict]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [(g["name"], g["interval"], [(r["record"], " ".join(r["expr"].split())) for r in g["rules"]])
            for g in doc]


def test_shipped_file_is_what_meshobs_reads() -> None:
    shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))["groups"]
    assert _normal(shipped) == _normal(groups())


def test_every_recorded_name_meshobs_looks_for_has_a_rule() -> None:
    recorded = {r["record"] for g in groups() for r in g["rules"]}
    assert {RECORDED_PREFIX + f for f in RECORDED_FAMILIES} <= recorded
    assert {EDGE_PREFIX + f for f in EDGE_FAMILIES} | {EDGE_MARKER} <= recorded
    # The marker is in the same group as the series it vouches for.
    (edges,) = groups((EDGES_GROUP,))
    assert {EDGE_MARKER, *(EDGE_PREFIX + f for f in EDGE_FAMILIES)} == {r["record"] for r in edges["rules"]}


def test_edge_rules_keep_exactly_the_graph_queries_labels() -> None:
    """rate() over the edge series equals the edge query's over the raw metrics only when the
    rule keeps every label the query groups by (and summing away the rest is the point)."""
    (edges,) = groups((EDGES_GROUP,))
    for q in GRAPH_QUERIES.values():
        if not q.edge_rule:
            continue
        rule = next(r for r in edges["rules"] if r["record"] == EDGE_PREFIX + q.family)
        assert rule["expr"] == f"sum by ({', '.join(q.labels)}) ({q.family})"
    assert [g["name"] for g in groups((ISTIO_GROUP,))] == [ISTIO_GROUP]


def test_the_edge_rules_answer_only_windows_of_several_evaluations() -> None:
    """promql.EDGE_RULES_MIN_WINDOW_S holds at least four evaluations of the edge group."""
    from meshobs.collectors.prometheus.rules import EDGES_INTERVAL
    from meshobs.collectors.promql import EDGE_RULES_MIN_WINDOW_S
    from meshobs.durations import parse_duration

    assert 4 * parse_duration(EDGES_INTERVAL) <= EDGE_RULES_MIN_WINDOW_S
