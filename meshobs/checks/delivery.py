"""Configuration delivery per proxy: did the proxy get, accept and acknowledge what istiod sent?

istioctl proxy-status compares, per xDS type, the nonce istiod *sent* a proxy with the nonce
the proxy *acknowledged* (istiod's ``/debug/syncz``). That is the only sound notion of "stale":
several istiod replicas number their pushes independently and a scoped push reaches only the
proxies it concerns, so two healthy proxies routinely hold different version strings. This
check never compares one proxy's version with another's when syncz is there.

Signals, strongest first (each finding's evidence says which it used):

- istiod's syncz: STALE (sent != acked) for longer than ``xds_unacked_after``;
- rejects: Envoy's ``update_rejected`` per type, istiod's ``pilot_xds_<type>_reject{node}``;
  a NACK is current when syncz shows the type unacknowledged, or (without syncz) when the
  type's version is stuck behind the proxy's other types;
- Envoy's own ``control_plane.connected_state``;
- without syncz, the last resort: the proxy's config is much older than what its workload's
  other proxies received (identical pods get identical pushes, whatever replica or scope).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from meshobs.catalogue import Category
from meshobs.istio_config import envoy_filter_patches, envoy_filter_selects, pick_resources
from meshobs.model import (
    MeshSnapshot,
    Pod,
    Proxy,
    ServiceRef,
    Workload,
    XdsReject,
    XdsSync,
)
from meshobs.model.controlplane import NEVER_ACKED, STALE, SYNCED, XDS_TYPES, push_time, push_version
from meshobs.model.gateway import EGRESS, INGRESS

from .base import CouldNotCheck, Finding, Settings, check, finding, now_of
from .config import workload_labels
from .dataplane import gateway_kind_of

# Per-resource types (eds) legitimately differ between identical proxies; the last-resort peer
# comparison only uses the mesh-wide ones.
PEER_COMPARABLE = ("cds", "lds", "rds")
SYNCZ_SIGNAL, ENVOY_SIGNAL = "istiod syncz (sent vs acknowledged)", "the proxy's own xDS state (Envoy admin)"


@dataclass
class ProxyView:
    """Everything known about one proxy's configuration delivery."""

    id: str  # "<pod>.<namespace>"
    workload: Workload
    envoy: Proxy | None = None
    pod: Pod | None = None
    syncs: list[XdsSync] = field(default_factory=list)
    rejects: list[XdsReject] = field(default_factory=list)

    def synced(self, xds: str) -> bool:
        """Acknowledged everything some replica sent (a proxy listed twice, during a reconnect,
        counts as synced when one replica says so)."""
        return any(s.status(xds) == SYNCED for s in self.syncs)


def proxy_views(snapshot: MeshSnapshot, service: ServiceRef) -> Iterator[ProxyView]:
    """The service's proxies as Envoy and istiod see them (either may be missing)."""
    cp = snapshot.control_plane
    for w in snapshot.workloads_of(service):
        views: dict[str, ProxyView] = {}
        for p in snapshot.proxies_of(w.ref):
            views[p.id] = ProxyView(p.id, w, envoy=p)
        for pod in snapshot.pods_of(w.ref):
            if pod.has_sidecar:
                pid = f"{pod.name}.{pod.namespace}"
                views.setdefault(pid, ProxyView(pid, w)).pod = pod
        for v in views.values():
            v.syncs, v.rejects = cp.syncs_of(v.id), cp.rejects_of(v.id)
        yield from (views[k] for k in sorted(views))


def _ago(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _envoy_versions(p: Proxy | None) -> dict[str, dict[str, str | None]]:
    if p is None:
        return {}
    return {x.type: {"version": x.version, "last_updated": x.last_updated.isoformat() if x.last_updated else None}
            for x in p.xds}


def _stuck(p: Proxy | None, xds: str) -> float | None:
    """How far (seconds) the proxy's ``xds`` lags behind the newest of its other types; None
    when the versions do not say."""
    if p is None or (mine := p.xds_version(xds)) is None or mine.last_updated is None:
        return None
    others = [x.last_updated for x in p.xds if x.type != xds and x.type in PEER_COMPARABLE and x.last_updated]
    return max((o - mine.last_updated).total_seconds() for o in others) if others else None


def _gateway(snapshot: MeshSnapshot, view: ProxyView, labels: dict[str, object]) -> bool:
    """An ingress or egress gateway (EnvoyFilter's ``GATEWAY`` context: Envoy's node type
    "router"), judged as every check judges it (:func:`~.dataplane.gateway_kind_of`), with the
    proxy type istiod reports."""
    types = [f"{s.proxy_type}~" for s in view.syncs if s.proxy_type]  # node ids begin "<type>~"
    return gateway_kind_of(snapshot, labels, view.workload.ref, types) in (INGRESS, EGRESS)


def _culprits(snapshot: MeshSnapshot, view: ProxyView, xds: str) -> list[tuple[str, list[str]]]:
    """EnvoyFilters that patch what this proxy rejects: they apply to its workload and patch
    objects of that xDS type. (name, applyTo of the patches)."""
    labels = {**workload_labels(view.workload), **(dict(view.pod.labels) if view.pod else {})}
    out = []
    gateway = _gateway(snapshot, view, labels)
    for ef in pick_resources(snapshot, "EnvoyFilter"):
        if envoy_filter_selects(ef, view.workload.namespace, labels):
            patches = envoy_filter_patches(ef, xds, gateway)
            if patches:
                out.append((f"{ef.namespace}/{ef.name}", sorted(set(patches))))
    return sorted(out)


def _nack(snapshot: MeshSnapshot, view: ProxyView, xds: str, service: ServiceRef) -> Finding | None:
    """A current NACK of ``xds``: the proxy or istiod counted a reject, and the type is still
    unacknowledged (syncz) or stuck behind the proxy's other types (Envoy)."""
    envoy_count = int(view.envoy.update_rejected.get(xds, 0) or 0) if view.envoy else 0
    istiod = [r for r in view.rejects if r.xds == xds]
    if envoy_count <= 0 and not istiod:
        return None
    signals: list[str] = []
    if envoy_count:
        signals.append(f"Envoy counted {envoy_count} rejected")
    if istiod:
        signals.append("istiod recorded a reject" + (f" ({istiod[0].error})" if istiod[0].error else ""))
    if view.syncs:
        if view.synced(xds):
            return None  # acknowledged since: a past rejection, not a current one
        row = view.syncs[0]
        signals.append(f"syncz {row.status(xds)}: sent {push_version(str(row.sent.get(xds))) or 'a newer push'}, "
                       f"acknowledged {push_version(str(row.acked.get(xds))) or 'none'}")
    else:
        lag = _stuck(view.envoy, xds)
        if lag is not None and lag <= 0:
            return None  # the type is as current as the others: accepted since
        if lag is not None:
            signals.append(f"its {xds} is {_ago(lag)} older than its other types")
    culprits = _culprits(snapshot, view, xds)
    culprit = ("; " + ", ".join(f"EnvoyFilter {name} patches its {'/'.join(kinds)}" for name, kinds in culprits)
               if culprits else "")
    return finding(
        "MSH0107", "proxy.config_stale", f"Proxy {view.id}", service=service, workloads=(view.workload.ref,),
        proxy=view.id, xds_type=xds, signals=", ".join(signals), culprit=culprit,
        evidence={"signal": SYNCZ_SIGNAL if view.syncs else ENVOY_SIGNAL,
                  "update_rejected": dict(view.envoy.update_rejected) if view.envoy else None,
                  "istiod_rejects": [{"istiod": r.istiod, "error": r.error} for r in istiod],
                  "syncz": _sync_evidence(view.syncs, xds), "xds_versions": _envoy_versions(view.envoy),
                  "envoy_filters": {name: kinds for name, kinds in culprits}},
        magnitude=max(envoy_count, 1),
        hint=(f"the proxy keeps its previous {xds.upper()} and ignores every newer one: "
              + (f"check EnvoyFilter {culprits[0][0]} (istioctl analyze; its patch is what Envoy refuses)" if culprits
                 else "the istio-proxy log ('gRPC config for ... rejected') names the resource and the reason")
              + "; kubectl logs -c istio-proxy and istioctl proxy-status confirm it"))


def _sync_evidence(syncs: Iterable[XdsSync], xds: str) -> list[dict[str, str]]:
    return [{"istiod": s.istiod, "status": s.status(xds), "sent": str(s.sent.get(xds) or ""),
             "acked": str(s.acked.get(xds) or "")} for s in syncs]


def _unacked(view: ProxyView, xds: str, service: ServiceRef, now: datetime, settings: Settings,
             ) -> Finding | None:
    """istiod sent ``xds`` long enough ago and the proxy has not acknowledged it (no reject)."""
    if not view.syncs or view.synced(xds):
        return None
    row = next((s for s in view.syncs if s.status(xds) in (STALE, NEVER_ACKED)), None)
    if row is None:
        return None  # NOT SENT: nothing to acknowledge
    sent_at = push_time(str(row.sent.get(xds) or ""))
    age = (now - sent_at).total_seconds() if sent_at else None
    warming = xds == "cds" and view.envoy is not None and (view.envoy.warming_clusters > 0 or any(
        c.warming for c in view.envoy.clusters))
    if age is None and not warming:
        return None  # a push in flight looks the same; without its time, no verdict
    if age is not None and age < settings.xds_unacked_after_s:
        return None
    return finding(
        "MSH0105", "proxy.config_stale", f"Proxy {view.id}", service=service, workloads=(view.workload.ref,),
        proxy=view.id, xds_type=xds, istiod=row.istiod, status=row.status(xds),
        sent_ago=_ago(age) if age is not None else "some time",
        evidence={"signal": SYNCZ_SIGNAL, "syncz": _sync_evidence(view.syncs, xds),
                  "sent_s_ago": round(age) if age is not None else None, "warming_clusters": warming,
                  "threshold_s": settings.xds_unacked_after_s, "xds_versions": _envoy_versions(view.envoy)},
        magnitude=age or 0.0,
        hint="istioctl proxy-status shows it STALE: the proxy has not applied this push. A cluster still "
             "warming (waiting for endpoints or a secret) holds CDS back; otherwise check the proxy's "
             "connection to istiod and its log")


def _peer_lag(snapshot: MeshSnapshot, view: ProxyView, xds: str) -> tuple[float, float] | None:
    """(age, lag) of ``xds`` vs the newest the workload's other proxies received."""
    mine = view.envoy.xds_version(xds) if view.envoy else None
    if mine is None or mine.last_updated is None:
        return None
    peers = [x.last_updated for p in snapshot.proxies_of(view.workload.ref) if p.id != view.id
             for x in p.xds if x.type == xds and x.last_updated is not None]
    if not peers:
        return None
    return (now_of(snapshot) - mine.last_updated).total_seconds(), (max(peers) - mine.last_updated).total_seconds()


@check("proxy.config_stale", Category.PROXY, ("proxies|control_plane",), ("MSH0105", "MSH0106", "MSH0107", "MSH0108"),
       uses=("pods", "config"))
def config_stale(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The service's proxies did not get, accept or acknowledge what istiod sent (istioctl
    proxy-status's STALE, rejected pushes, disconnected): from istiod's syncz, else the proxies'
    own xDS state, never by comparing version strings across proxies."""
    views = list(proxy_views(snapshot, service))
    if not views:
        raise CouldNotCheck(f"no proxy of {service} in the proxy, pod or control-plane data")
    now = now_of(snapshot)
    judged = False
    for view in views:
        if view.envoy is None and not view.syncs and not view.rejects:
            continue
        judged = True
        if view.envoy is not None and view.envoy.control_plane_connected is False:
            yield finding("MSH0108", "proxy.config_stale", f"Proxy {view.id}", service=service,
                          workloads=(view.workload.ref,), proxy=view.id,
                          evidence={"control_plane_connected": False, "signal": ENVOY_SIGNAL}, magnitude=1,
                          hint="check istiod is running and reachable from the pod on port 15012; "
                               "istioctl proxy-status lists disconnected proxies")
        for xds in XDS_TYPES:
            nack = _nack(snapshot, view, xds, service)
            if nack is not None:
                yield nack
                continue
            unacked = _unacked(view, xds, service, now, settings)
            if unacked is not None:
                yield unacked
                continue
            if not view.syncs and xds in PEER_COMPARABLE and (lag := _peer_lag(snapshot, view, xds)):
                age, behind = lag
                # Old alone is normal in a quiet mesh; old while identical pods got newer pushes is not.
                if age > settings.xds_stale_after_s and behind > settings.xds_stale_after_s:
                    yield finding("MSH0106", "proxy.config_stale", f"Proxy {view.id}", service=service,
                                  workloads=(view.workload.ref,), proxy=view.id, xds_type=xds, age_s=round(age),
                                  threshold_s=round(settings.xds_stale_after_s),
                                  evidence={"signal": ENVOY_SIGNAL + ", against the workload's other proxies",
                                            "age_s": round(age), "behind_workload_peers_s": round(behind)},
                                  hint="the proxy stopped receiving pushes its identical peers got: istioctl "
                                       "proxy-status, and istiod's logs for this proxy's id")
    if not judged:
        failed = sorted(st.name for st in snapshot.sources_of_kind("envoy") if not st.ok)
        raise CouldNotCheck(f"no proxy data for {service}" + (f" ({', '.join(failed[:2])} failed, see Sources)"
                                                               if failed else "")
                            + " and istiod's syncz lists none of its proxies")
