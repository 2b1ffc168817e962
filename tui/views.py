"""What the screens show beyond the overview's rows, worked out on demand from one load's model.

The overview needs only its rows; a service, its graph, a proxy or a YAML diff needs the whole
snapshot and its diagnosis. :class:`Views` answers those questions from a load (an
:class:`~.data.Analysis` holding the model) and its loader. With the load process
(``tui/load_process.py``) it runs there, asked for by name (:data:`ASKABLE`), and the UI
process never holds the model; with thread workers it runs in the app's own process. Either
way the screens call it from their worker threads (or, for the small graph and neighbourhood
views, from the UI thread) and only render what comes back.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from meshobs.model import Layer, ServiceRef

from .graph_model import GraphView, graph_view
from .proxy_model import ProxyView, findings_by_proxy, proxy_findings, proxy_list_rows, proxy_view
from .rows import TableRow
from .service_model import ServiceView, service_view
from .viewmodel import NeighbourRow, neighbourhood
from .yaml_model import YamlView, yaml_view

if TYPE_CHECKING:
    from .data import Analysis, Loader

# The questions a screen may ask the load process (the methods of ViewSource, by name).
ASKABLE = frozenset({"service", "graph", "neighbourhood", "proxy_rows", "proxy", "fetch_proxy", "yaml",
                     "save"})


class ViewSource(Protocol):
    """The views a screen asks for: :class:`Views` in this process, or the load process's."""

    def service(self, ref: ServiceRef) -> tuple[ServiceView, str]: ...

    def graph(self, centre: ServiceRef, health: dict[ServiceRef, str],
              previous: frozenset[ServiceRef] = frozenset()) -> GraphView: ...

    def neighbourhood(self, ref: ServiceRef, limit: int) -> tuple[list[NeighbourRow], int]: ...

    def proxy_rows(self) -> list[TableRow]: ...

    def proxy(self, namespace: str, pod: str) -> tuple[ProxyView | None, str]: ...

    def fetch_proxy(self, namespace: str, pod: str, now: datetime) -> tuple[ProxyView | None, str]: ...

    def yaml(self, key: Any) -> YamlView: ...

    def save(self, path: Path) -> Path: ...


class Views:
    """The views of one load, worked out from its snapshot and diagnosis (``analysis``)."""

    def __init__(self, analysis: Analysis, loader: Loader) -> None:
        self.analysis, self.loader = analysis, loader

    def service(self, ref: ServiceRef) -> tuple[ServiceView, str]:
        """The service screen's view, and how its verdict stands ("previous", "pending", the
        engine's error, or "" for this load's own diagnosis)."""
        a = self.analysis
        report = a.report_of(ref)
        view = service_view(a.snapshot, report, ref, a.links)
        verdict = ("previous" if a.from_previous and report is not None else
                   "pending" if a.pending else a.diagnosis_error)
        return view, verdict

    def graph(self, centre: ServiceRef, health: dict[ServiceRef, str],
              previous: frozenset[ServiceRef] = frozenset()) -> GraphView:
        return graph_view(self.analysis.snapshot, centre, health, previous)

    def neighbourhood(self, ref: ServiceRef, limit: int) -> tuple[list[NeighbourRow], int]:
        return neighbourhood(self.analysis.snapshot, ref, limit=limit)

    def proxy_rows(self) -> list[TableRow]:
        report = self.analysis.report
        return proxy_list_rows(self.analysis.snapshot, findings_by_proxy(report.findings if report else ()))

    def proxy(self, namespace: str, pod: str) -> tuple[ProxyView | None, str]:
        """The pod's proxy as the snapshot has it (None: it has no Envoy data for the pod), and
        a note when the engine's xDS findings are not this load's yet."""
        a = self.analysis
        snap = a.snapshot
        found = next((p for p in snap.proxies if p.pod == pod and p.namespace == namespace), None)
        if found is None:
            return None, ""
        mine = proxy_findings(list(a.report.findings) if a.report else [], found.id)
        # The xDS tab reads the engine's findings: say when they are not this load's yet.
        note = ("the engine's xDS findings are the previous refresh's: diagnosing…" if a.from_previous
                else "diagnosing…: the engine's xDS findings follow" if a.pending else "")
        return proxy_view(found, snap.certs_of(found.id), mine, snap.time), note

    def fetch_proxy(self, namespace: str, pod: str, now: datetime) -> tuple[ProxyView | None, str]:
        """The pod's admin endpoints, fetched now (None and why when that is not possible)."""
        access = self.loader.envoy_access()
        if access is None:
            return None, ("this snapshot has no Envoy data for the pod, and there is no Envoy source to "
                          "fetch it from (run with --config)")
        from .proxy_fetch import fetch_proxy

        got = fetch_proxy(access, namespace, pod, now)
        if got.proxy is None:
            return None, f"could not fetch the pod's Envoy: {got.problem}"
        return proxy_view(got.proxy, got.certs, [], now, origin="fetched now"), got.problem or ""

    def yaml(self, key: Any) -> YamlView:
        """The resource ``key``'s live and intended sides (read from ``drift.intended`` when the
        snapshot has no intended copy)."""
        snap = self.analysis.snapshot
        live = next((c for c in snap.config if c.layer is Layer.LIVE and c.key == key), None)
        intended = next((c for c in snap.config if c.layer is Layer.INTENDED and c.key == key), None)
        note = ""
        paths = self.loader.intended_paths()
        if intended is None and paths:
            from meshobs.drift.run import intended_from_paths

            resources, state = intended_from_paths(list(paths), snap.time)
            intended = next((c for c in resources if c.key == key), None)
            if intended is None:
                note = (f"not in the intended files ({', '.join(paths)})" if state.available
                        else f"could not read the intended files: {state.error}")
        return yaml_view(live, intended, snap.proxies, note)

    def save(self, path: Path) -> Path:
        """Writes the load's bundle to ``path`` (the written file: the name may change)."""
        from meshobs.bundle import write_bundle

        bundle = self.analysis.bundle
        if bundle is None:
            raise ValueError("nothing to save: this load has no bundle")
        return Path(write_bundle(bundle, path))
