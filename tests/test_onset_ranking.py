"""Onsets as ranking evidence: among findings the ranking cannot otherwise tell apart, the one
whose trouble began first ranks first; findings with no known start keep their places; a
symptom still ranks after the cause that explains it, however early it started."""

from __future__ import annotations

from meshobs.checks.base import Finding
from meshobs.engine.onsets import began
from meshobs.engine.ranking import Failures, rank
from meshobs.model import ServiceRef, frozen_map

T = ServiceRef("shop", "checkout")
A, B, C = ServiceRef("shop", "a"), ServiceRef("shop", "b"), ServiceRef("shop", "c")


def cause(code: str, service: ServiceRef, magnitude: float, **evidence: str) -> Finding:
    return Finding(code=code, check="test", subject=f"Service {service}", fields=frozen_map({"service": str(service)}),
                   evidence=frozen_map(evidence), service=service, magnitude=magnitude)


def ranked(*findings: Finding) -> list[str]:
    by_service: dict[ServiceRef, list[Finding]] = {T: []}
    for f in findings:
        by_service.setdefault(f.service or T, []).append(f)
    depth = {T: 0, A: 1, B: 1, C: 1}
    # The checkout calls a, b and c; all three show errors on its side.
    out = rank(T, by_service, depth, lambda s: [A, B, C] if s == T else [])
    return [f.subject for f in out]


def symptom() -> Finding:
    return Finding(code="MSH0401", check="test", subject=f"Service {T}", fields=frozen_map({"service": str(T)}),
                   service=T, magnitude=1.0, evidence=frozen_map({"errors_started": "2026-03-04T08:00:00+00:00"}))


def test_without_times_magnitude_decides() -> None:
    assert ranked(symptom(), cause("MSH0405", A, 5.0), cause("MSH0406", B, 9.0), cause("MSH0407", C, 1.0)) == \
        ["Service shop/b", "Service shop/a", "Service shop/c", "Service shop/checkout"]


def test_the_earliest_start_ranks_first_and_undated_findings_keep_their_place() -> None:
    early = cause("MSH0405", A, 5.0, errors_started="2026-03-04T08:10:00+00:00")
    late = cause("MSH0406", B, 9.0, errors_started="2026-03-04T08:12:30+00:00")
    undated = cause("MSH0407", C, 7.0)
    # Without times: b (9), c (7), a (5). c's slot stays; a and b swap by time.
    assert ranked(symptom(), early, late, undated) == \
        ["Service shop/a", "Service shop/c", "Service shop/b", "Service shop/checkout"]


def test_a_change_before_everything_begins_earliest() -> None:
    change = cause("MSH0290", A, 0.2, changed="2026-03-04T08:09:20+00:00", errors_started="2026-03-04T08:10:00+00:00")
    mechanism = cause("MSH0405", A, 20.0, errors_started="2026-03-04T08:10:00+00:00")
    order = ranked(symptom(), mechanism, change)
    assert order[:2] == ["Service shop/a", "Service shop/a"]
    first = rank(T, {T: [symptom()], A: [mechanism, change]}, {T: 0, A: 1}, lambda s: [A] if s == T else [])
    assert [f.code for f in first][:2] == ["MSH0290", "MSH0405"]
    assert began(change) == began(mechanism) - 40  # type: ignore[operator]


def test_an_early_symptom_still_ranks_after_its_cause() -> None:
    """The symptom started before anything else is dated, but it is explained: it stays last."""
    explained = symptom()
    out = ranked(explained, cause("MSH0405", A, 5.0, errors_started="2026-03-04T08:30:00+00:00"))
    assert out == ["Service shop/a", "Service shop/checkout"]


def test_before_the_history_is_earlier_than_any_time_in_it() -> None:
    old = cause("MSH0405", A, 1.0, errors_started="before 2026-03-04T08:00:00+00:00")
    new = cause("MSH0406", B, 9.0, errors_started="2026-03-04T08:00:00+00:00")
    assert ranked(symptom(), old, new)[:2] == ["Service shop/a", "Service shop/b"]
    assert began(cause("MSH0405", A, 1.0, errors_started="not a time")) is None


def test_a_cause_the_failures_point_at_stays_first_however_late_it_began() -> None:
    """A signature the failures carry is direct evidence; a start time only orders what is
    otherwise equal, so an earlier cause without the signature does not overtake it."""
    from dataclasses import replace

    from tests.test_ranking_signature import INTAKE, LEDGER, _causes, _symptom

    policy, ejected, _subset = _causes()
    policy = replace(policy, evidence=frozen_map({"errors_started": "2026-03-04T08:12:00+00:00"}))
    ejected = replace(ejected, evidence=frozen_map({"errors_started": "2026-03-04T08:02:00+00:00"}))
    out = rank(INTAKE, {INTAKE: [_symptom({"500": 8.0})], LEDGER: [policy, ejected]}, {INTAKE: 0, LEDGER: 1},
               lambda s: [LEDGER] if s == INTAKE else [], hop_failures=lambda _x, _c: Failures(8.0, {"403": 8.0}))
    assert [f.code for f in out] == ["MSH0255", "MSH0406", "MSH0401"]
