"""The parcel-dispatch scenarios (meshobs/demo/scenarios/parcels.py), beyond the grid's verdict
(tests/test_scenarios.py): the evidence and the kind of hint their findings carry."""

from __future__ import annotations

from meshobs.checks.base import Finding, Settings
from meshobs.checks.routing import uncaught
from meshobs.engine import diagnose
from meshobs.model import ConfigResource, Layer, ServiceRef, freeze
from tests.support.scenarios import snapshot

DISPATCH = ServiceRef("dispatch", "dispatch-api")


def _findings(name: str) -> list[Finding]:
    return diagnose(snapshot(name), DISPATCH, Settings()).findings


def test_a_sidecar_no_route_names_the_matches_that_leave_requests_unrouted() -> None:
    (nr,) = [f for f in _findings("parcels-eta-no-route") if f.code == "MSH0416"]
    assert list(nr.evidence["claimed_by"]) == ["routing/eta-service"]
    assert {k: list(v) for k, v in nr.evidence["routes_only_matching"].items()} == {
        "routing/eta-service": ["uri prefix /v2/"]}
    assert nr.evidence["no_route_rps"] == 15.2


def _vs(http: list[object]) -> ConfigResource:
    return ConfigResource("VirtualService", "routing", "eta", freeze({"hosts": ["eta"], "http": http}), Layer.LIVE)


def test_uncaught_only_when_every_http_route_has_a_match() -> None:
    v2 = {"match": [{"uri": {"prefix": "/v2/"}}, {"headers": {"x-fleet": {"exact": "ev"}}}], "route": []}
    assert uncaught(_vs([v2])) == ["uri prefix /v2/", "headers x-fleet"]
    assert uncaught(_vs([v2, {"route": []}])) is None  # a catch-all route
    assert uncaught(_vs([])) is None  # no http routes: not this check's business


def test_callers_hanging_up_point_at_latency_not_at_the_callee_failing() -> None:
    found = _findings("parcels-engine-disconnects")
    first = found[0]
    assert (first.code, first.subject) == ("MSH0409", "Workload routing/routing-engine-v7")
    assert first.evidence["p99_ms"] > 3 * first.evidence["other_versions_p99_ms"]
    assert list(first.evidence["by_flag"]) == ["DC"]
    # The service-wide symptom carries the same flag; the hint is the one for a hung-up caller.
    from meshobs.checks.traffic import _ERROR_HINT, _HUNG_UP_HINT

    service = next(f for f in found if (f.code, f.subject) == ("MSH0401", "Service routing/routing-engine"))
    assert service.hint == _HUNG_UP_HINT
    caller = next(f for f in found if (f.code, f.subject) == ("MSH0401", "Service dispatch/dispatch-api"))
    assert caller.hint == _ERROR_HINT  # its own 504s: no flag
