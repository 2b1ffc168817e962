"""The airline check-in scenarios (meshobs/demo/scenarios/checkin.py), beyond the grid's verdict
(tests/test_scenarios.py): a circuit breaker's overflow names the limits that shed the requests."""

from __future__ import annotations

from meshobs.checks.base import Settings
from meshobs.engine import diagnose
from meshobs.model import ServiceRef, thaw
from tests.support.scenarios import snapshot

CHECKIN = ServiceRef("checkin", "checkin-api")


def test_an_overflowing_breaker_carries_the_callers_destination_rule_pool() -> None:
    report = diagnose(snapshot("checkin-pending-overflow"), CHECKIN, Settings())
    first = report.findings[0]
    assert (first.code, first.subject) == ("MSH0405", "Service bags/bag-tags")
    pools = thaw(first.evidence["connection_pool"])
    assert pools["DestinationRule bags/bag-tags"]["http"]["http1MaxPendingRequests"] == 4
    assert first.evidence["uo_rps"] > 0


def test_the_breaker_names_the_rule_a_change_made_too_tight() -> None:
    # dr-change-onset: the edit ranks first; the overflow below it names the same rule's limits.
    report = diagnose(snapshot("dr-change-onset"), ServiceRef("rides", "booking-api"), Settings())
    (overflow,) = [f for f in report.findings if f.code == "MSH0405"]
    pools = thaw(overflow.evidence["connection_pool"])
    assert pools == {"DestinationRule fares/surge-calculator": {
        "http": {"http2MaxRequests": 40, "http1MaxPendingRequests": 8}, "tcp": {"maxConnections": 200}}}
