"""One drift check: load the three layers, compare them pairwise, apply the ignore rules.

Layers come from: ``--intended`` paths (through the manifests collector, layer ``intended``);
the snapshot's ``live`` configuration (Kubernetes API, manifests-as-live, App Mesh); the
snapshot's proxies (Envoy config dumps). Pairs checked: intended-live and live-effective; when
there is no live layer, intended-effective instead. A layer that was configured but could not be
read makes the run incomplete (its pairs are not checked and their earlier drift is kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from meshobs.model import ConfigResource, Layer, Mesh, MeshSnapshot, SourceState

from .compare import INTENDED_EFFECTIVE, INTENDED_LIVE, LIVE_EFFECTIVE, Drift, Severity, compare_resources
from .effective import compare_effective
from .ignore import IgnoreRule, apply
from .tls import proxy_labels

if TYPE_CHECKING:
    # The state directory's record: filled by `meshobs drift --state-dir` only (meshobs.cli.drift
    # imports the store); diagnose runs a comparison per question and never reads or writes one.
    from .state import RunRecord

LIVE_SOURCE_KINDS = ("kubernetes", "manifests", "appmesh")


@dataclass
class LayerState:
    """Whether a layer could be read, how many resources (or proxies) it has, and from where."""

    name: str
    available: bool
    count: int = 0
    origin: str = ""
    error: str | None = None
    configured: bool = True  # False: nothing asked for this layer (not a failure)
    # Resources left out because of their shape (MSH0003): the layer was compared without them,
    # so the run is incomplete and says which.
    items: tuple[str, ...] = ()


@dataclass
class DriftRun:
    """Everything one check found (``record`` is filled once the state directory saw it)."""

    checked_at: datetime
    layers: dict[str, LayerState]
    checked: list[str]
    drifts: list[Drift]
    problems: list[str] = field(default_factory=list)
    record: RunRecord | None = None

    @property
    def active(self) -> list[Drift]:
        return [d for d in self.drifts if d.ignored is None]

    @property
    def ignored(self) -> list[Drift]:
        return [d for d in self.drifts if d.ignored is not None]

    @property
    def complete(self) -> bool:
        return not self.problems and bool(self.checked)

    @property
    def partly_checked(self) -> list[str]:
        """The checked pairs one of whose layers was compared without part of it (proxies,
        a live source or resources that could not be read, ``LayerState.items``)."""
        left_out = {name for name, state in self.layers.items() if state.items}
        return [pair for pair in self.checked if left_out & set(pair.split("-"))]

    def worst(self) -> Severity | None:
        return max((d.severity for d in self.active), key=lambda s: s.weight, default=None)


def mesh_config(resources: Iterable[ConfigResource]) -> list[ConfigResource]:
    """The mesh configuration among ``resources``: Namespaces and Secrets ride along in the
    model (their labels and public facts feed the analyzers) but are not what drift compares."""
    return [r for r in resources if not (r.mesh is Mesh.UNKNOWN and r.kind in ("Namespace", "Secret"))]


def intended_from_paths(paths: list[str], time: datetime) -> tuple[list[ConfigResource], LayerState]:
    """Read the Git manifests (``--intended``) as the intended layer."""
    from meshobs.collectors.base import NormalizeContext
    from meshobs.collectors.manifests import normalize, read_manifest_tree

    raw = read_manifest_tree(paths, layer=Layer.INTENDED.value)
    origin = ", ".join(paths)
    if raw.error:
        return [], LayerState("intended", False, origin=origin, error=raw.error)
    try:
        part = normalize(raw, NormalizeContext(time=time, window_s=0))
    except ValueError as exc:
        return [], LayerState("intended", False, origin=origin, error=str(exc))
    resources = mesh_config(r for r in part.config if r.layer is Layer.INTENDED)
    errors = [s.message for s in part.sources if s.state is SourceState.ERROR]
    items = tuple(p for s in part.sources for p in s.problems)
    if errors:
        return resources, LayerState("intended", False, len(resources), origin, "; ".join(errors), items=items)
    return resources, LayerState("intended", True, len(resources), origin, items=items)


def live_layer(snapshot: MeshSnapshot) -> tuple[list[ConfigResource], LayerState]:
    resources = mesh_config(snapshot.config_of(layer=Layer.LIVE))
    sources = [s for s in snapshot.sources if s.kind in LIVE_SOURCE_KINDS]
    origin = ", ".join(s.name for s in sources)
    if not sources:
        if resources:
            return resources, LayerState("live", True, len(resources), snapshot.origin)
        return [], LayerState("live", False, origin="", configured=False,
                              error="no live source (configure sources.kubernetes or sources.appmesh)")
    failed = [s for s in sources if s.state is SourceState.ERROR]
    items = tuple(p for s in sources for p in s.problems)
    if failed and len(failed) == len(sources):
        return [], LayerState("live", False, len(resources), origin, "; ".join(s.message for s in failed),
                              items=items)
    # One live source of several that could not be read (a second cluster's API down): what it
    # holds was not compared, so the run is incomplete and says which, as for Envoy proxies.
    items = tuple(f"{s.name}: {s.message}" for s in failed) + items
    return resources, LayerState("live", True, len(resources), origin,
                                 "; ".join(s.message for s in failed) or None, items=items)


_SHOWN = 3  # proxies that could not be read, named one by one


def effective_layer(snapshot: MeshSnapshot) -> LayerState:
    proxies = [p for p in snapshot.proxies if p.routes or p.clusters]
    sources = snapshot.sources_of_kind("envoy")
    if proxies:
        # A proxy that could not be read is not one that agrees: compared without it, the run
        # is incomplete and names what it left out (a few, then how many more).
        failed = [s for s in sources if s.state is SourceState.ERROR]
        items = tuple(f"{s.name}: {s.message}" for s in failed[:_SHOWN])
        if len(failed) > _SHOWN:
            items += (f"{len(failed) - _SHOWN} more Envoy proxies that could not be read",)
        return LayerState("effective", True, len(proxies), "Envoy config dumps", items=items)
    if not sources:
        return LayerState("effective", False, error="no Envoy source (configure sources.envoy)",
                          configured=False)
    failed = [s for s in sources if s.state is SourceState.ERROR]
    return LayerState("effective", False, error="; ".join(s.message for s in failed[:3])
                      or "the Envoy proxies returned no routes or clusters")


EFFECTIVE = "effective"  # live-effective, or intended-effective when there is no live layer


def check(intended: list[ConfigResource] | None, intended_state: LayerState | None, snapshot: MeshSnapshot,
          *, rules: list[IgnoreRule], now: datetime, all_namespaces: bool = False,
          pairs: tuple[str, ...] = (INTENDED_LIVE, EFFECTIVE)) -> DriftRun:
    """Compare the layers that could be read; ``intended=None`` when no --intended was given
    (the snapshot's own intended layer is used, if it has one). ``pairs`` narrows what is
    compared (``diagnose`` asks for the configuration pair and the Envoy pair separately: the
    first needs no proxies)."""
    if intended is None:
        from_snapshot = mesh_config(snapshot.config_of(layer=Layer.INTENDED))
        intended = from_snapshot or None
        intended_state = (LayerState("intended", True, len(from_snapshot), snapshot.origin) if from_snapshot
                          else LayerState("intended", False, error="no intended layer (--intended DIR)",
                                          configured=False))
    assert intended_state is not None
    live, live_state = live_layer(snapshot)
    layers = {"intended": intended_state, "live": live_state}
    if EFFECTIVE in pairs:
        layers["effective"] = effective_layer(snapshot)
    problems = [f"{s.name}: {s.error}" for s in layers.values() if s.configured and not s.available]
    problems += [f"{s.name}: left out: {item}" for s in layers.values() for item in s.items]
    drifts: list[Drift] = []
    checked: list[str] = []
    has_intended = intended is not None and intended_state.available
    if INTENDED_LIVE in pairs and has_intended and live_state.available:
        scope = None if all_namespaces else {r.namespace for r in intended or []}
        drifts += compare_resources(intended or [], live, INTENDED_LIVE, right_scope=scope)
        checked.append(INTENDED_LIVE)
    eff_state = layers.get("effective")
    if eff_state is not None and live_state.available and eff_state.available:
        drifts += compare_effective(live, snapshot.proxies, LIVE_EFFECTIVE, proxy_labels(snapshot))
        checked.append(LIVE_EFFECTIVE)
    elif eff_state is not None and has_intended and eff_state.available and not live_state.available:
        drifts += compare_effective(intended or [], snapshot.proxies, INTENDED_EFFECTIVE, proxy_labels(snapshot))
        checked.append(INTENDED_EFFECTIVE)
    return DriftRun(now, layers, checked, apply(drifts, rules), problems)
