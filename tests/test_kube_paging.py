"""List paging (``limit``/``continue``) as the Kubernetes API server does it, in the demo's
Kubernetes API, and the collector reading a mesh of its own page by page from it: the same
objects as one page, each page asked with the opaque token the previous one gave, an expired
token relisted once and, expired again, that list's clear error rather than a traceback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from meshobs.collectors import kubernetes as kube
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.config import load_config
from meshobs.demo import serve
from meshobs.demo.author import Mesh
from meshobs.demo.expect import Expectation
from meshobs.demo.kube_paging import ListPager, PagingError, _decode, _status
from meshobs.demo.scenario import Scenario
from meshobs.demo.serve import LiveDemo, _kubernetes_route, serve_scenario
from meshobs.model import SourceState
from meshobs.raw import Payload, RawSource

PODS = [{"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": f"lantern-{i}", "namespace": "quay" if i % 3 else "yard",
                      "labels": {"app": "lantern" if i % 2 else "buoy"}}} for i in range(7)]


def _route(pager: ListPager) -> Any:
    raw = RawSource("kubernetes", "kubernetes", payloads=[Payload(
        "pods", url="/api/v1/pods", status=200,
        body=json.dumps({"kind": "PodList", "metadata": {"resourceVersion": "812"}, "items": PODS}))])
    return _kubernetes_route(raw, pager)


def _pages(route: Any, path: str, limit: int, **query: str) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    token = ""
    while True:
        q = {"limit": [str(limit)], **{k: [v] for k, v in query.items()}}
        if token:
            q["continue"] = [token]
        status, _ctype, body = route(path, q)
        assert status == 200
        pages.append(json.loads(body))
        token = pages[-1]["metadata"].get("continue", "")
        if not token:
            return pages


def test_lists_are_paged_with_opaque_tokens_and_a_remaining_count() -> None:
    route = _route(ListPager())
    pages = _pages(route, "/api/v1/pods", 3)
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p["items"]] == PODS
    assert [p["metadata"].get("remainingItemCount") for p in pages] == [4, 1, None]
    assert all(p["metadata"]["resourceVersion"] == "812" for p in pages)
    token = pages[0]["metadata"]["continue"]
    assert not token.isdigit()  # opaque, not the offset
    # No limit: the whole list, no token.
    status, _ctype, body = route("/api/v1/pods", {})
    assert status == 200 and json.loads(body)["items"] == PODS and "continue" not in json.loads(body)["metadata"]


def test_a_narrowed_list_is_paged_without_a_remaining_count() -> None:
    route = _route(ListPager())
    pages = _pages(route, "/api/v1/namespaces/quay/pods", 2, labelSelector="app=lantern")
    assert [i["metadata"]["name"] for p in pages for i in p["items"]] == ["lantern-1", "lantern-5"]
    assert all("remainingItemCount" not in p["metadata"] for p in pages)


def test_an_expired_token_is_410_gone_and_a_garbled_one_400() -> None:
    pager = ListPager()
    route = _route(pager)
    first = json.loads(route("/api/v1/pods", {"limit": ["2"]})[2])
    token = first["metadata"]["continue"]
    assert route("/api/v1/pods", {"limit": ["2"], "continue": [token]})[0] == 200
    pager.compact()  # etcd compacted the revision the token was issued at
    status, _ctype, body = route("/api/v1/pods", {"limit": ["2"], "continue": [token]})
    assert status == 410 and json.loads(body)["reason"] == "Expired" and json.loads(body)["code"] == 410
    nested = base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode()  # past json's depth
    for garbled in ("not-a-token", token[:-4], "eyJ2IjoxfQ", nested):
        status, _ctype, body = route("/api/v1/pods", {"limit": ["2"], "continue": [garbled]})
        assert status == 400 and json.loads(body)["reason"] == "BadRequest", garbled
    # A token of one list does not continue another.
    fresh = json.loads(route("/api/v1/pods", {"limit": ["2"]})[2])["metadata"]["continue"]
    assert route("/api/v1/namespaces/quay/pods", {"limit": ["2"], "continue": [fresh]})[0] == 400


# -- the collector against the demo API, on a mesh of our own ----------------------------------


def _lighthouse() -> Scenario:
    """Lighthouses along a coast: enough pods and services in three namespaces for pages of 3."""
    m = Mesh("lighthouse", "Lighthouses: beacons, a fog-horn and a keeper's log", "no fault")
    gw = m.ingress_gateway()
    beacon = m.workload("coast", "beacon-control", "v2", replicas=4)
    horn = m.workload("coast", "fog-horn", "v1", replicas=3)
    log = m.workload("keepers", "keeper-log", "v6", replicas=2)
    tide = m.workload("harbour", "tide-gauge", "v3", replicas=2)
    m.call(gw, beacon, 12.0, 20.0, 80.0)
    m.call(beacon, horn, 6.0, 5.0, 20.0)
    m.call(beacon, log, 3.0, 9.0, 40.0)
    m.call(horn, tide, 2.0, 4.0, 15.0)
    return m.build(Expectation("healthy", healthy=True))


@pytest.fixture
def lighthouse(tmp_path: Path) -> Iterator[LiveDemo]:
    with serve_scenario(_lighthouse(), tmp_path / "demo", prometheus=False) as demo:
        yield demo


def _fetch(demo: LiveDemo) -> RawSource:
    config = load_config(str(demo.config_path))
    assert config is not None
    collector = kube.from_config(config, [])
    assert collector is not None
    [raw] = collector.fetch(FetchContext(time=_lighthouse().time, window_s=300, config=config))
    return raw


def _lists(raw: RawSource) -> dict[str, Any]:
    return {p.key: p.json()["items"] for p in raw.payloads if p.status == 200 and "items" in (p.json() or {})}


def _continued(demo: LiveDemo, path: str) -> list[str]:
    return [r.path for r in demo.requests_to("kubernetes")
            if urlsplit(r.path).path == path and "continue" in parse_qs(urlsplit(r.path).query)]


def test_the_collector_pages_the_demo_api_and_reads_the_same_objects(
        lighthouse: LiveDemo, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _lists(_fetch(lighthouse))
    assert not _continued(lighthouse, "/api/v1/pods")  # one page each at the real page size
    monkeypatch.setattr(kube, "PAGE_SIZE", 3)
    raw = _fetch(lighthouse)
    paged = _lists(raw)
    assert paged == whole and len(paged["pods"]) > 3 * 3
    asked = _continued(lighthouse, "/api/v1/pods")
    assert len(asked) == -(-len(paged["pods"]) // 3) - 1  # every page after the first, once
    assert all("limit=3" in p for p in asked)
    assert "continue" not in raw.get("pods").json()["metadata"]


class _CompactingPager(ListPager):
    """Expires the pods list's continue tokens just before answering its first ``times``
    continued pages. A real compaction (:meth:`ListPager.compact`, tested above) expires every
    list's tokens; here only the pods list's, so that which lists fail does not depend on how
    the collector's concurrent lists interleave with it (the services list, paged at the same
    time, was sometimes caught by both compactions)."""

    times = 1

    def page(self, doc: dict[str, Any], path: str, query: dict[str, list[str]], *, selected: bool) -> dict[str, Any]:
        if query.get("continue") and path == "/api/v1/pods" and self.times:
            self.times -= 1
            with self._lock:
                self.revision += 1
                self.pods_compacted = self.revision
        token = (query.get("continue") or [""])[0]
        if token and path == "/api/v1/pods" and _decode(token).get("rv", 0) < getattr(self, "pods_compacted", 0):
            raise PagingError(410, _status(410, "Expired", "The provided continue parameter is too old to display "
                                           "a consistent list result. You can start a new list without the "
                                           "continue parameter."))
        return super().page(doc, path, query, selected=selected)


def test_an_expired_token_relists_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "PAGE_SIZE", 3)
    monkeypatch.setattr(serve, "ListPager", _CompactingPager)
    with serve_scenario(_lighthouse(), tmp_path / "demo", prometheus=False) as demo:
        raw = _fetch(demo)
        firsts = [r for r in demo.requests_to("kubernetes")
                  if urlsplit(r.path).path == "/api/v1/pods" and "continue" not in r.path]
    pods = raw.get("pods")
    assert pods.error is None and pods.status == 200 and len(firsts) == 2  # the list began again
    names = [p["metadata"]["name"] for p in pods.json()["items"]]
    assert len(names) == len(set(names)) > 9  # no page twice, none lost
    part = kube.normalize(raw, NormalizeContext(_lighthouse().time, 300))
    assert part.sources[0].state is SourceState.OK and not any(part.sources[0].inputs.values())


def test_a_token_expired_again_is_that_lists_error_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "PAGE_SIZE", 3)
    monkeypatch.setattr(_CompactingPager, "times", 2)
    monkeypatch.setattr(serve, "ListPager", _CompactingPager)
    with serve_scenario(_lighthouse(), tmp_path / "demo", prometheus=False) as demo:
        raw = _fetch(demo)
    pods = raw.get("pods")
    assert pods.status == 410 and pods.error and pods.error.startswith("listing pods cluster-wide")
    assert raw.error is None and raw.get("services").error is None  # only that list failed
    part = kube.normalize(raw, NormalizeContext(_lighthouse().time, 300))
    status = part.sources[0]
    assert status.state is not SourceState.OK or any(status.inputs.values())
