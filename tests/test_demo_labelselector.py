"""The demo Kubernetes API applies ``?labelSelector=`` as the API server does: equality- and
set-based requirements, ANDed; ``!=`` and ``notin`` match objects without the label; an
unparsable selector is a 400, not the whole list."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshobs.demo.labelselector import SelectorError, parse_selector
from meshobs.demo.serve import _kubernetes_route
from meshobs.raw import Payload, RawSource


def _pod(ns: str, name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels}}


PODS = [_pod("quay", "booking-1", app="berth-booking", version="v3"),
        _pod("quay", "tides-1", app="tide-tables", version="v5"),
        _pod("quay", "stray"),
        _pod("yard", "hoist-1", app="hoist-control", version="v4", tier="ops")]


@pytest.mark.parametrize(("selector", "names"), [
    ("", {"booking-1", "tides-1", "stray", "hoist-1"}),
    ("app=tide-tables", {"tides-1"}),
    ("app==tide-tables", {"tides-1"}),
    ("app!=tide-tables", {"booking-1", "stray", "hoist-1"}),  # no label: matches !=
    ("app in (berth-booking, hoist-control)", {"booking-1", "hoist-1"}),
    ("app notin (berth-booking,hoist-control)", {"tides-1", "stray"}),  # no label: matches notin
    ("tier", {"hoist-1"}),
    ("!app", {"stray"}),
    ("app in (berth-booking,tide-tables,hoist-control),version!=v5", {"booking-1", "hoist-1"}),
    ("app, !tier, version in (v3)", {"booking-1"}),
])
def test_selectors_match_as_the_api_server_does(selector: str, names: set[str]) -> None:
    match = parse_selector(selector)
    assert {p["metadata"]["name"] for p in PODS if match(p["metadata"]["labels"])} == names


@pytest.mark.parametrize("bad", ["app in ()", "app in (a", "=x", "app=a=b", "app >< b"])
def test_an_unparsable_selector_is_refused(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(bad)


def _route() -> Any:
    raw = RawSource("kubernetes", "kubernetes", payloads=[
        Payload("pods", url="/api/v1/pods", status=200, body=json.dumps({"kind": "PodList", "items": PODS}))])
    return _kubernetes_route(raw)


def test_the_demo_api_narrows_cluster_and_namespaced_lists() -> None:
    route = _route()

    def names(path: str, selector: str | None) -> set[str]:
        status, _ctype, body = route(path, {"labelSelector": [selector]} if selector is not None else {})
        assert status == 200
        return {o["metadata"]["name"] for o in json.loads(body)["items"]}

    assert names("/api/v1/pods", None) == {"booking-1", "tides-1", "stray", "hoist-1"}
    assert names("/api/v1/pods", "app in (tide-tables,hoist-control)") == {"tides-1", "hoist-1"}
    assert names("/api/v1/namespaces/quay/pods", None) == {"booking-1", "tides-1", "stray"}
    assert names("/api/v1/namespaces/quay/pods", "app in (tide-tables,hoist-control)") == {"tides-1"}
    assert names("/api/v1/namespaces/yard/pods", "app=berth-booking") == set()
    # The unfiltered answer is still the cached whole list after a filtered one.
    assert names("/api/v1/pods", "") == {"booking-1", "tides-1", "stray", "hoist-1"}


def test_the_demo_api_answers_an_unparsable_selector_with_400() -> None:
    status, _ctype, body = _route()("/api/v1/namespaces/quay/pods", {"labelSelector": ["app in ("]})
    assert status == 400 and json.loads(body)["reason"] == "BadRequest"
