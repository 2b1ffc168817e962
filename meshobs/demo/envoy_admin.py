"""The demo's Envoy admin API as a real Envoy answers it, and its proxies as a live run records them.

:func:`answer` is what the served demo's admin endpoints reply (``/stats?filter=`` applied the way
Envoy applies it: a regex searched in every stat name). :func:`recorded_proxies` runs the real
Envoy collector (:class:`meshobs.collectors.envoy.fetch.EnvoyCollector`: its plan, follow-ups and
minimisation) against those answers, so a generated bundle holds exactly what ``meshobs snapshot``
of the served demo would record: filtered stats, minimised config dumps and server info, no
``/clusters`` (the stats carry membership and ejections) and no ``/certs`` (SDS puts the
certificates in the config dump) -- not every endpoint's full answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace

from meshobs.collectors.envoy.discovery import Target
from meshobs.collectors.envoy.fetch import EnvoyCollector
from meshobs.raw import Payload, RawSource, iso
from meshobs.shape import loads

from .render_envoy import render_proxies
from .scenario import Scenario


def answer(raw: RawSource, key: str, params: Mapping[str, str]) -> Payload | None:
    """The rendered payload ``key`` of one proxy as Envoy answers it to ``params`` (None: no such
    endpoint). Only ``/stats``'s ``filter`` changes an answer; the rest is served as rendered."""
    payload = raw.get(key)
    pattern = params.get("filter")
    if payload is None or key != "stats" or not pattern or not payload.ok or not payload.body:
        return payload
    doc = loads(payload.body)  # msgspec: the rendered stats of thousands of proxies
    search = re.compile(pattern).search
    # Envoy filters stat and histogram names alike; the rendered stats carry no histograms.
    doc["stats"] = [s for s in doc.get("stats", []) if "name" not in s or search(str(s["name"]))]
    return replace(payload, body=json.dumps(doc, indent=1))


class _Rendered:
    """A transport that answers from one proxy's rendered payloads (no socket)."""

    def __init__(self, raw: RawSource, at: str) -> None:
        self.raw = raw
        self.at = at

    def get(self, path: str, key: str, params: dict[str, str], timeout_s: float) -> Payload:
        url = str(self.raw.meta["url"]) + path
        found = answer(self.raw, key, params)
        if found is None:
            return Payload(key=key, body="envoy admin: no such endpoint\n", status=404, url=url,
                           params=dict(params), fetched_at=self.at)
        return Payload(key=key, body=found.body, status=found.status or 200, url=url,
                       params=dict(params), fetched_at=self.at)

    def close(self) -> None:
        return None


def recorded_proxies(scenario: Scenario) -> list[RawSource]:
    """Every proxy of ``scenario`` as the live Envoy collector records it (deterministic: request
    times are the scenario's time, durations zero)."""
    rendered = {r.name: r for r in render_proxies(scenario)}
    targets = [Target(namespace=str(r.meta["namespace"]), pod=str(r.meta["pod"]), url=str(r.meta["url"]),
                      workload=r.meta.get("workload")) for r in rendered.values()]
    at = iso(scenario.time)
    collector = EnvoyCollector(targets, transport=lambda t: _Rendered(rendered[t.source_name], at))
    recorded = collector.fetch()
    for raw in recorded:
        raw.duration_s = 0.0
    return recorded
