"""A Prometheus that accepts queries and never answers them (a hung server, a proxy holding the
requests) costs a live ``diagnose SERVICE`` the graph phase's timeouts only: the scoped phase
does not send its queries too, wave after wave of them, each its own timeout again (it took five
timeouts, 50 s with the default 10 s, to say "no query answered"). Within one run, once two
queries ran out their timeout and none has been answered, the rest are not sent (a mesh-wide
run took four timeouts). A server that answered anything is asked as before. The run keeps one
record per server (meshobs.collectors.silence), which Envoy's query for the proxies' scraped
stats reads and feeds too: it no longer adds its own timeout to a hung server's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from meshobs.cli.diagnose import scoped_question
from meshobs.collect import _silent, build_snapshot, collect
from meshobs.collectors.base import FetchContext
from meshobs.collectors.envoy.scraped import PrometheusScrape
from meshobs.collectors.prometheus.fetch import SILENT_AFTER
from meshobs.collectors.silence import ServerRecords
from meshobs.config import validate
from meshobs.demo.serve import serve_scenario
from meshobs.engine import Report, diagnose, diagnose_all
from meshobs.model import ServiceRef, SourceState
from meshobs.raw import RawSource
from tests.support.faults import Fault, FaultServer
from tests.support.loopback import unused_port

TIMEOUT_S = 1.0


def _config(url: str) -> object:
    return validate({"sources": {"prometheus": {"url": url, "timeout": f"{TIMEOUT_S:g}s"}}})


def _keys(bundle: object) -> list[str]:
    return [p.key for s in bundle.sources for p in s.payloads]  # type: ignore[attr-defined]


def test_a_hung_prometheus_is_not_asked_again_by_the_scoped_phase() -> None:
    with FaultServer(lambda _path: Fault.hang()) as srv:
        start = time.monotonic()
        bundle = collect(_config(srv.url), deadline=start + 60,  # type: ignore[arg-type]
                         question=scoped_question("shop/cart-service", None))
        took = time.monotonic() - start
        asked = len(srv.paths)
    # The recording-rule detection, then the graph's edge queries together: two timeouts. The
    # scoped phase's dozen queries at a concurrency of 4 added three more.
    assert took < 3 * TIMEOUT_S + 1.0, took
    keys = _keys(bundle)
    assert "query:edges" in keys and "query:requests" not in keys and "query:controlplane" not in keys
    assert asked == len(keys)
    (source,) = bundle.sources
    assert source.meta["scoped_not_asked"]
    assert all(p.meta.get("no_answer") for p in source.payloads)


def test_a_prometheus_that_answers_anything_is_asked_by_the_scoped_phase() -> None:
    empty = '{"status": "success", "data": {"resultType": "vector", "result": []}}'

    def answer(path: str) -> Fault:
        # The recording-rule detection answers (none); every other query hangs.
        detection = "group by (__name__)" in unquote(path).replace("+", " ")
        return Fault.ok(empty) if detection else Fault.hang()

    with FaultServer(answer) as srv:
        start = time.monotonic()
        bundle = collect(_config(srv.url), deadline=start + 60,  # type: ignore[arg-type]
                         question=scoped_question("shop/cart-service", None))
    keys = _keys(bundle)
    assert "query:edges" in keys and "query:requests" in keys
    assert all("scoped_not_asked" not in s.meta for s in bundle.sources)
    errors = [p.error or "" for s in bundle.sources for p in s.payloads]
    assert not any(e.startswith("not sent") for e in errors), errors


def test_a_hung_prometheus_is_sent_no_more_once_two_queries_ran_out() -> None:
    with FaultServer(lambda _path: Fault.hang()) as srv:
        start = time.monotonic()
        bundle = collect(_config(srv.url), deadline=start + 60)  # type: ignore[arg-type]  # mesh-wide
        took = time.monotonic() - start
    # The rule detection alone, then the first wave: two timeouts (it was four).
    assert took < 2 * TIMEOUT_S + 1.0, took
    payloads = [p for s in bundle.sources for p in s.payloads]
    unanswered = [p for p in payloads if p.meta.get("no_answer")]
    not_sent = [p for p in payloads if (p.error or "").startswith("not sent: Prometheus")]
    assert len(unanswered) >= SILENT_AFTER and not_sent
    assert not any(p.ok for p in payloads)


URL = "http://prometheus.monitoring:9090"


def _source(url: str = URL, kind: str = "prometheus") -> RawSource:
    return RawSource(name=kind, kind=kind, meta={"url": url})


def test_silent_needs_two_unanswered_and_nothing_answered() -> None:
    """The scoped phase leaves out a Prometheus by the run's record of its server: two queries
    run out without a word and none answered (an answer of any kind, its own "timed out" too,
    is a live server), whichever reader sent them."""
    servers = ServerRecords()
    servers.of(URL).no_answer()
    assert _silent([_source()], servers) == {}  # one: the next wave may still be answered
    servers.of(URL + "/").no_answer()  # the same server
    assert set(_silent([_source()], servers)) == {"prometheus"}
    assert _silent([_source("http://other:9090")], servers) == {}
    assert _silent([_source(kind="jaeger")], servers) == {}
    servers.of(URL).heard()
    assert _silent([_source()], servers) == {}


# -- one record for every reader: Envoy's scraped stats too ----------------------------------------

TARGET = ServiceRef("shop", "cart-service")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The e-commerce demo served live (Kubernetes, every proxy's admin API, Jaeger), every
    source's timeout 1 s; Prometheus is the test's."""
    with serve_scenario("ecommerce", tmp_path_factory.mktemp("hung") / "demo", prometheus=False) as demo:
        raw = yaml.safe_load(demo.config_path.read_text())
        for section in raw["sources"].values():
            section["timeout"] = f"{TIMEOUT_S:g}s"
        yield raw


def _with_prometheus(raw: dict[str, Any], url: str) -> object:
    # Envoy reads the proxies' readiness and stats from this Prometheus when it has them.
    return validate({**raw, "sources": {**raw["sources"], "prometheus": {"url": url, "timeout": f"{TIMEOUT_S:g}s"}}})


def _unchecked(report: Report) -> set[str]:
    return {c.id for c in report.checks if c.could_not_check}


def _question(config: object, scoped: bool) -> tuple[float, dict[ServiceRef, Report]]:
    start = time.monotonic()
    bundle = collect(config, deadline=start + 30,  # type: ignore[arg-type]
                     question=scoped_question(str(TARGET), None) if scoped else None)
    took = time.monotonic() - start
    snap = build_snapshot(bundle)
    assert {s.kind: s.state for s in snap.sources}["envoy"] is SourceState.OK
    if scoped:
        return took, {TARGET: diagnose(snap, TARGET)}
    return took, {r.service: r for r in diagnose_all(snap).reports}


@pytest.mark.parametrize("scoped", [False, True], ids=["all", "service"])
def test_a_hung_prometheus_costs_two_timeouts_with_the_proxies_stats_scraped(live: dict[str, Any],
                                                                             scoped: bool) -> None:
    """diagnose --all and diagnose SERVICE with Envoy configured beside a hung Prometheus: the
    scraped-stats query is one more reader of the server. It was sent whatever the record said,
    and waited 10 s (its own timeout, not the configured one): a run took 10.7 s (--all) and
    12.5 s (SERVICE) at a 1 s timeout. It now ends within two timeouts, and exactly the checks
    that need Prometheus's data could not check: those of a Prometheus refusing connections, and
    beyond what could not check without Prometheus, only checks of its data (the proxies, asked
    through their admin API instead, are judged)."""
    with FaultServer(lambda _path: Fault.hang()) as srv:
        took, hung = _question(_with_prometheus(live, srv.url), scoped)
    assert took < 2 * TIMEOUT_S + 1.5, took
    _fast, down = _question(_with_prometheus(live, f"http://127.0.0.1:{unused_port()}"), scoped)
    assert hung.keys() == down.keys()
    for service, report in hung.items():
        assert _unchecked(report) == _unchecked(down[service]), service
    _fast, without = _question(validate(live), scoped)  # no Prometheus configured
    target = hung[TARGET]
    lines = {c.id: c for c in target.checks}
    needed = _unchecked(target) - _unchecked(without[TARGET])
    assert {"traffic.error_rate", "traffic.latency", "config.changed_before_onset"} <= needed
    assert all("prometheus" in lines[c].reason for c in needed), [lines[c].reason for c in needed]
    # The proxies' checks judged: the database's ejected endpoints are found from their stats.
    assert lines["proxy.not_ready"].status == "pass"
    assert any(f.code == "MSH0406" for f in target.findings), [f.code for f in target.findings]


def test_the_scraped_stats_query_keeps_the_runs_record() -> None:
    """Envoy's reader sends nothing to a server the run's record calls silent, and its own
    unanswered query counts for the Prometheus collector's next ones."""
    ctx = FetchContext(time=datetime(2026, 3, 4, 10, 0, tzinfo=UTC), window_s=300, config=validate({}))
    with FaultServer(lambda _path: Fault.hang()) as srv:
        scrape = PrometheusScrape({"url": srv.url, "timeout": "0.5s"})
        start = time.monotonic()
        assert scrape([], ctx) == {}
        assert 0.4 < time.monotonic() - start < 2.0
        record = ctx.servers.of(srv.url)
        assert (record.answered, record.unanswered) == (0, 1)
        record.no_answer()  # a query of the Prometheus collector's ran out too
        start = time.monotonic()
        assert scrape([], ctx) == {}
        assert time.monotonic() - start < 0.2
        assert len(srv.paths) == 1 and (scrape.last_error or "").startswith("not sent")


def test_a_hung_prometheus_leaves_a_mesh_with_a_waypoint_unknown(tmp_path: Path) -> None:
    """The ledger at night (an idle ingress gateway, an ambient waypoint) served live beside a hung
    Prometheus: two timeouts, then every service whose requests a check would judge is unknown
    and the waypoint, judged by its proxies alone, is no verdict on the mesh's requests: the mesh
    is unknown (exit 3, as the README promises for a Prometheus that cannot be read), not
    "degraded" by the MSH0002 about the source that failed."""
    with serve_scenario("ledger-night", tmp_path / "demo", prometheus=False) as demo:
        raw = yaml.safe_load(demo.config_path.read_text())
        for section in raw["sources"].values():
            section["timeout"] = f"{TIMEOUT_S:g}s"
        with FaultServer(lambda _path: Fault.hang()) as srv:
            config = _with_prometheus(raw, srv.url)
            start = time.monotonic()
            snap = build_snapshot(collect(config, deadline=start + 30))  # type: ignore[arg-type]
            took = time.monotonic() - start
    assert took < 2 * TIMEOUT_S + 1.5, took
    mesh = diagnose_all(snap)
    statuses = {str(r.service): r.status for r in mesh.reports}
    assert statuses.pop("statements/waypoint") not in ("healthy", "unknown")
    assert set(statuses.values()) == {"unknown"}, statuses
    assert mesh.status == "unknown"
