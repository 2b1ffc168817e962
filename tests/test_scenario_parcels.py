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
