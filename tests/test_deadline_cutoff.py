"""A diagnosis that reaches the run's deadline reports what it judged (meshobs.cutoff): every
check not run by then says "could not check" with the deadline as its reason, the checks run
before say what they said in a run that was not cut, and the status never claims health."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator

import pytest

from meshobs import cutoff
from meshobs.checks.base import AnyCheck, Check, Finding
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import checklist, diagnose, diagnose_all
from meshobs.engine.report import HEALTHY, JUDGED, SKIPPED, CheckResult
from meshobs.model import MeshSnapshot, ServiceRef

WHY = cutoff.deadline_reason(3)
CUT = f"could not check: {WHY}"
CART = ServiceRef("shop", "cart-service")


@pytest.fixture(autouse=True)
def _resumed() -> Iterator[None]:
    cutoff.resume()
    yield
    cutoff.resume()  # the flag is the process's: never leave it set for the next test


@pytest.fixture(scope="module")
def snapshot() -> MeshSnapshot:
    return build_snapshot(load_demo("ecommerce"), origin="demo:ecommerce")


def _stopping_after(check_id: str, services: Iterable[ServiceRef] | None = None) -> list[AnyCheck]:
    """The checklist, with ``check_id`` setting the deadline flag once it has judged (for one of
    ``services``): what the CLI's timer does when it fires while that check runs."""
    wanted = None if services is None else set(services)

    def wrap(c: Check) -> Check:
        @functools.wraps(c.run)
        def run(snap: MeshSnapshot, service: ServiceRef, settings: object) -> list[Finding]:
            found = list(c.run(snap, service, settings))  # type: ignore[arg-type]
            if wanted is None or service in wanted:
                cutoff.stop(WHY)
            return found

        return dataclasses.replace(c, run=run)

    return [wrap(c) if c.id == check_id and isinstance(c, Check) else c for c in checklist()]


def _is_cut(line: CheckResult) -> bool:
    return line.reason == CUT


def test_one_service_cut_at_a_check_reports_what_was_judged(snapshot: MeshSnapshot) -> None:
    whole = diagnose(snapshot, CART)
    cut = diagnose(snapshot, CART, checks=_stopping_after("traffic.error_rate"))
    assert cutoff.reason == WHY
    ids = [c.id for c in whole.checks]
    assert [c.id for c in cut.checks] == ids
    at = ids.index("traffic.error_rate")
    # Up to and including the check the deadline came in: exactly what the whole run said.
    assert cut.checks[:at + 1] == whole.checks[:at + 1]
    after = list(zip(whole.checks[at + 1:], cut.checks[at + 1:], strict=True))
    # After it, every service check that ran in the whole run is "could not check", as a gap;
    # lines decided without running anything (an input missing, an analyzer judged before) stay.
    kinds = {c.id: c.kind for c in checklist()}
    for before, now in after:
        if kinds[now.id] == "check" and (before.status in JUDGED or before.could_not_check):
            assert _is_cut(now) and now.status == SKIPPED and now.could_not_check and now.missing_data, now
        else:
            assert now == before
    assert any(_is_cut(now) for _, now in after)
    # What the judged checks found is reported; the checks cut found nothing, and claim no health.
    judged_codes = {f.code for f in whole.findings if f.check in ids[:at + 1] and f.service == CART}
    assert judged_codes and judged_codes <= {f.code for f in cut.findings if f.service == CART}
    assert not any(f.check in ids[at + 1:] and kinds[f.check] == "check" for f in cut.findings)
    assert {f.identity for f in cut.findings} <= {f.identity for f in whole.findings}
    assert cut.status != HEALTHY


def test_a_healthy_service_cut_short_is_partial_never_healthy(snapshot: MeshSnapshot) -> None:
    product = ServiceRef("shop", "product-service")
    assert diagnose(snapshot, product).status == HEALTHY
    cut = diagnose(snapshot, product, checks=_stopping_after("certs.expiry"))
    assert any(_is_cut(c) for c in cut.checks)
    assert cut.status in ("partial", "unknown")


def test_all_services_cut_short_each_report_says_what_was_not_run(snapshot: MeshSnapshot) -> None:
    whole = diagnose_all(snapshot)
    first = whole.reports[0].service
    cut = diagnose_all(snapshot, checks=_stopping_after("proxy.not_ready", [first]))
    assert [r.service for r in cut.reports] == [r.service for r in whole.reports]
    kinds = {c.id: c.kind for c in checklist()}
    for was, now in zip(whole.reports[1:], cut.reports[1:], strict=True):
        # Reached after the deadline: no service check ran; the analyzers' lines, judged
        # before the deadline, and their findings about the service are still reported.
        for before, line in zip(was.checks, now.checks, strict=True):
            if kinds[line.id] == "check" and (before.status in JUDGED or before.could_not_check):
                assert _is_cut(line), (now.service, line)
            else:
                assert line == before, (now.service, line)
        analyzers = {f.identity for f in was.findings if kinds[f.check] == "analyzer" and f.service == now.service}
        assert analyzers <= {f.identity for f in now.findings}
        assert now.status != HEALTHY
    assert cut.analyzers == whole.analyzers
    assert cut.mesh_findings == whole.mesh_findings
    assert cut.status != HEALTHY


def test_a_run_not_cut_is_unchanged(snapshot: MeshSnapshot) -> None:
    # The flag clear (every run but one cut short): the same report as ever, no line cut.
    report = diagnose_all(snapshot)
    assert not any(_is_cut(c) for r in report.reports for c in r.checks)
    cutoff.stop(WHY)
    cutoff.resume()
    assert diagnose_all(snapshot) == report


def test_the_deadline_passing_is_said_only_when_a_check_was_left_unrun(snapshot: MeshSnapshot) -> None:
    # A drift or a snapshot runs no check: the CLI's line on stderr ("the checks not run by
    # then say 'could not check'") is for a run that did leave one.
    cutoff.stop(WHY)
    assert not cutoff.cut()
    report = diagnose(snapshot, CART)
    assert cutoff.cut() and any(_is_cut(c) for c in report.checks)
    cutoff.resume()
    assert not cutoff.cut() and cutoff.reason is None
