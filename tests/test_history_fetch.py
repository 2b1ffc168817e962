"""The history queries' plan: always narrowed, a constant number of queries.

``diagnose SERVICE`` narrows them to the neighbourhood (with the other scoped queries, in one
wave); a mesh-wide question sends them after the requests answer, narrowed to the services whose
requests fail now -- none when nothing fails (an empty, complete history), none with the reason
when the narrowed query would not fit in one query string.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from meshobs.checks.base import Settings
from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.collectors.promql import HISTORY_QUERIES
from meshobs.config import validate
from meshobs.model import MeshSnapshot, ServiceRef, WorkloadRef
from meshobs.timeline import build
from tests.support.loopback import LoopbackServer

T = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
WINDOW = 300.0


def row(src: str, dst: str, code: str, rps: float = 1.0, dst_ns: str = "shop") -> dict[str, object]:
    return {"metric": {"reporter": "source", "source_workload": src, "source_workload_namespace": "shop",
                       "destination_service_name": dst, "destination_service_namespace": dst_ns,
                       "response_code": code, "response_flags": "-"}, "value": [T.timestamp(), str(rps)]}


def fetch(rows: list[dict[str, object]], **ctx: object) -> tuple[list[str], object]:
    """Collect from a loopback server whose requests answer is ``rows``; the range queries it
    was sent, and the RawSource."""
    vector = json.dumps({"status": "success", "data": {"resultType": "vector", "result": rows}})
    empty_vector = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})
    matrix = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})

    def instant(path: str, _headers: dict[str, str]) -> tuple[int, str]:
        query = parse_qs(urlsplit(path).query)["query"][0]
        return 200, vector if query.startswith("sum by (reporter, source_workload") else empty_vector

    with LoopbackServer() as srv:
        srv.route("/api/v1/query", handler=instant)
        srv.route("/api/v1/query_range", body=matrix)
        config = validate({"sources": {"prometheus": {"url": srv.url, "recording_rules": "off"}}})
        collector = prom.from_config(config, [])
        assert collector is not None
        (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config, **ctx))  # type: ignore[arg-type]
        ranges = [parse_qs(urlsplit(path).query) for method, path, _h in srv.requests if "query_range" in path]
    # The history reaches an hour back; the sparklines' range queries only the window.
    history = [q["query"][0] for q in ranges if float(q["end"][0]) - float(q["start"][0]) > WINDOW]
    return history, raw


def test_a_mesh_wide_question_times_only_what_fails_now() -> None:
    rows = [row("web-v1", "cart", "200", 40), row("web-v1", "cart", "503", 2), row("cart-v2", "ledger", "200"),
            row("cart-v2", "BlackHoleCluster", "502", dst_ns="unknown")]
    history, raw = fetch(rows)
    assert len(history) == len(HISTORY_QUERIES)
    for q in history:
        # Into cart (what fails there) or from the workloads whose requests failed; the p99 per
        # service into cart only (from the workloads it would be a part of other services' p99).
        assert 'destination_service_name=~"cart"' in q and "ledger" not in q
        assert ('source_workload=~"cart-v2|web-v1"' in q) is not q.startswith("histogram_quantile")
    assert raw.meta["history"]["covers"] == "the 1 service with failing requests"  # type: ignore[attr-defined]


def test_the_number_of_queries_does_not_grow_with_what_fails() -> None:
    few, _ = fetch([row("web-v1", "cart", "503")])
    many, _ = fetch([row(f"w{i}-v1", f"svc{i}", "500") for i in range(60)])
    assert len(few) == len(many) == len(HISTORY_QUERIES)


def test_nothing_failing_sends_no_history_and_says_nothing_started() -> None:
    history, raw = fetch([row("web-v1", "cart", "200", 40)])
    assert history == []
    part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))  # type: ignore[arg-type]
    assert part.history is not None and part.history.series == () and len(part.history.signals) == 3
    tl = build(MeshSnapshot(time=T, window_s=WINDOW, history=part.history), Settings())
    assert tl.checked and tl.onsets == ()


def test_too_many_failing_services_for_one_query_cannot_be_checked() -> None:
    # Names that differ at the start: no prefix written once makes them fit (see the next test).
    rows = [row(f"{i}-workload-with-a-long-name-v1", f"{i}-service-with-a-long-name", "503") for i in range(300)]
    history, raw = fetch(rows)
    assert history == []
    part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))  # type: ignore[arg-type]
    (status,) = part.sources
    assert "too large for one history query" in str(status.inputs["history"])
    tl = build(MeshSnapshot(time=T, window_s=WINDOW, history=part.history, sources=part.sources), Settings())
    assert not tl.checked and "the 300 services with failing requests is too large" in tl.reason


def test_many_failing_services_sharing_prefixes_are_timed_with_compact_matchers() -> None:
    """300 failing services are 8 kB of plain alternations, but their names share prefixes: the
    matchers written as prefix trees fit one query, so their onsets are still timed."""
    rows = [row(f"workload-with-a-long-name-{i}-v1", f"service-with-a-long-name-{i}", "503") for i in range(300)]
    history, raw = fetch(rows)
    assert len(history) == len(HISTORY_QUERIES)
    assert all('service_name=~"service-with-a-long-name-(' in q for q in history)
    assert raw.meta["history"]["covers"] == "the 300 services with failing requests"  # type: ignore[attr-defined]
    # With the rate-limit refusals' matcher set (Query.spare) the errors query would not fit: it
    # is timed without them rather than not at all.
    [errors] = [q for q in history if 'response_code=~"5..|0"' in q]
    assert 'response_code="429"' not in errors


def test_a_small_neighbourhoods_errors_count_the_rate_limit_refusals() -> None:
    history, _raw = fetch([row("web-v1", "cart", "503")])
    [errors] = [q for q in history if 'response_code=~"5..|0"' in q]
    assert 'response_code="429",response_flags=~"(.*,)?RL(,.*)?"' in errors


def test_diagnose_service_times_its_neighbourhood_in_the_same_wave() -> None:
    scope = Scope(target=ServiceRef("shop", "cart"), services=frozenset({ServiceRef("shop", "cart")}),
                  workloads=frozenset({WorkloadRef("shop", "web-v1")}))
    history, raw = fetch([row("web-v1", "cart", "200")], phase="scoped", scope=scope)
    assert len(history) == len(HISTORY_QUERIES)
    assert all('destination_service_name=~"cart"' in q for q in history)
    assert [q.startswith("histogram_quantile") for q in history if 'source_workload=~"web-v1"' not in q] == [True]
    payloads = [p for p in raw.payloads if p.key.startswith("history:")]  # type: ignore[attr-defined]
    assert [p.key for p in payloads] == [f"history:{n}" for n in HISTORY_QUERIES]
    assert all(p.params["end"] - p.params["start"] == 3600 and p.params["step"] == 15 for p in payloads)
