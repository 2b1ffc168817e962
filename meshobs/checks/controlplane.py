"""The control plane (``linkerd check`` / ``istioctl proxy-status`` for Istio): istiod ready and
pushing, proxies within the version skew Istio supports, a sidecar injector for the pods that
expect one. Mesh-level findings: they name no service; the ranking brings istiod's into a
service's diagnosis where it explains a proxy that lacks its configuration.

Each finding's evidence says which signal it used: istiod's own endpoints, its ``pilot_*``
metrics in Prometheus, or its pod in Kubernetes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.model import IstiodReplica, Mesh, MeshSnapshot, ServiceRef

from .base import CouldNotCheck, Finding, Settings, analyzer, finding
from .inventory import vouches_for_services

# Send errors below this share of a type's sends are the churn of proxies disconnecting mid-push.
SEND_ERROR_SHARE = 0.05
# Istio supports proxies up to this many minor versions older than istiod, and none newer.
SUPPORTED_OLDER_MINORS = 2
_VERSION = re.compile(r"^(\d+)\.(\d+)")


def control_plane_subject(replica: IstiodReplica | None = None, namespace: str = "istio-system",
                          revision: str | None = None) -> str:
    """``ControlPlane <namespace>/<istiod's Deployment name>``: ``istiod`` for the default
    revision, ``istiod-<rev>`` for a revisioned control plane."""
    rev = replica.revision if replica is not None else revision
    ns = replica.namespace if replica is not None else namespace
    return f"ControlPlane {ns}/" + ("istiod" if rev in (None, "", "default") else f"istiod-{rev}")


def _signals(r: IstiodReplica) -> dict[str, object]:
    return {"sources": list(r.sources), "ready_endpoint": r.ready, "ready_detail": r.ready_detail or None,
            "pod_ready": r.pod_ready, "connected_proxies": r.connected, "revision": r.revision, "version": r.version}


def _not_ready(r: IstiodReplica) -> tuple[str, str] | None:
    """(reason, signal) when the replica is not ready; /ready is istiod's own answer and wins
    over the pod's condition, which lags by a probe period."""
    if r.ready is False:
        return r.ready_detail or "/ready did not answer 200", "istiod's /ready"
    if r.ready is None and r.pod_ready is False:
        reason = "its pod is not Ready in Kubernetes (the readiness probe on /ready fails)"
        return reason + (f"; /ready could not be asked: {r.unreachable}" if r.unreachable else ""), \
            "the pod's Ready condition (Kubernetes)"
    return None


def _push_failures(r: IstiodReplica, window_s: float) -> list[str]:
    out = []
    for xds, errors in sorted(r.send_errors_per_s.items()):
        sent = float(r.pushes_per_s.get(xds, 0.0))
        if errors * window_s >= 1 and errors >= SEND_ERROR_SHARE * (sent + errors):
            out.append(f"{errors:.3g} failed {xds.upper()} sends/s ({100 * errors / (sent + errors):.0f}% of them)")
    if r.push_context_errors_per_s is not None and r.push_context_errors_per_s * window_s >= 1:
        out.append(f"{r.push_context_errors_per_s:.3g} push context errors/s (it cannot build the config to push)")
    return out


def _replicas(snapshot: MeshSnapshot) -> tuple[IstiodReplica, ...]:
    replicas = snapshot.control_plane.replicas
    if not replicas:
        raise CouldNotCheck("no istiod replica in the data (no answer from an istiod source, no pilot_* metrics "
                            "from Prometheus, no istiod pod in the Kubernetes data)")
    return replicas


@analyzer("proxy.istiod_ready", Category.PROXY, ("ControlPlane",), ("MSH0110",), mesh=Mesh.ISTIO,
          needs=("control_plane",))
def istiod_ready(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """An istiod replica is not ready: its /ready endpoint, else its pod's Ready condition, says so."""
    replicas = _replicas(snapshot)
    judged = False
    for r in replicas:
        problem = _not_ready(r)
        judged = judged or problem is not None or r.ready is True or r.pod_ready is True
        if problem is not None:
            reason, signal = problem
            yield finding("MSH0110", "proxy.istiod_ready", f"Pod {r.namespace}/{r.pod}",
                          istiod=f"{r.namespace}/{r.pod}", reason=reason,
                          evidence={"signal": signal, **_signals(r)}, magnitude=1 + (r.connected or 0),
                          hint="kubectl -n istio-system logs deploy/istiod and describe the pod: a lost "
                               "API-server watch, a bad mesh config or resource limits keep it unready; "
                               "while it is, new proxies get no configuration and others no updates")
    if not judged:
        reasons = sorted({r.unreachable for r in replicas if r.unreachable})
        raise CouldNotCheck("istiod's readiness is unknown: " + ("; ".join(reasons) if reasons else
                                                                  "neither /ready nor its pod says"))


@analyzer("proxy.istiod_pushes", Category.PROXY, ("ControlPlane",), ("MSH0111",), mesh=Mesh.ISTIO,
          needs=("control_plane",))
def istiod_pushes(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """An istiod replica fails to push configuration: failed sends, push context errors (its
    pilot_* metrics in Prometheus)."""
    measured = [r for r in _replicas(snapshot) if r.has_metrics]
    if not measured:
        raise CouldNotCheck("no istiod metrics (pilot_xds_pushes, pilot_xds_push_context_errors) from Prometheus: "
                            "not scraped, or not asked for")
    for r in measured:
        failures = _push_failures(r, snapshot.window_s)
        if failures:
            yield finding("MSH0111", "proxy.istiod_pushes", f"Pod {r.namespace}/{r.pod}",
                          istiod=f"{r.namespace}/{r.pod}", failures="; ".join(failures),
                          evidence={"signal": "istiod's pilot_* metrics (Prometheus)",
                                    "send_errors_per_s": dict(r.send_errors_per_s),
                                    "pushes_per_s": dict(r.pushes_per_s),
                                    "push_context_errors_per_s": r.push_context_errors_per_s,
                                    "window_s": snapshot.window_s, **_signals(r)},
                          magnitude=r.send_errors + (r.push_context_errors_per_s or 0.0),
                          hint="istiod's log says why (kubectl -n istio-system logs deploy/istiod | grep -i "
                               "error); pilot_xds_push_context_errors means it cannot compute the config "
                               "(an invalid resource); failed sends, that proxies do not take its pushes")


def _minor(version: str | None) -> tuple[int, int] | None:
    m = _VERSION.match(version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def _proxy_versions(snapshot: MeshSnapshot, r: IstiodReplica) -> tuple[Counter[str], str]:
    """The Istio versions of the proxies connected to ``r`` and the signal they came from."""
    rows = [s.istio_version for s in snapshot.control_plane.syncs if s.istiod == r.pod and s.istio_version]
    if rows:
        return Counter(rows), "istiod syncz (each proxy's ISTIO_VERSION)"
    counts: Counter[str] = Counter()
    for version, n in r.connected_by_version.items():
        if float(n) > 0 and version != "unknown":
            counts[version] += int(float(n))
    return counts, "istiod's pilot_xds{version} (Prometheus)"


@analyzer("proxy.version_skew", Category.PROXY, ("ControlPlane",), ("MSH0112",), mesh=Mesh.ISTIO,
          needs=("control_plane",))
def version_skew(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """Proxies run an Istio version outside what their istiod supports: newer than it, or more
    than two minor versions older (a canary upgrade's one-version lag is fine)."""
    judged = False
    for r in _replicas(snapshot):
        own = _minor(r.version)
        versions, signal = _proxy_versions(snapshot, r)
        if own is None or not versions:
            continue
        judged = True
        newer = {v: n for v, n in versions.items() if (m := _minor(v)) is not None and m > own}
        older = {v: n for v, n in versions.items()
                 if (m := _minor(v)) is not None and m[0] == own[0] and own[1] - m[1] > SUPPORTED_OLDER_MINORS}
        for bad, why in ((newer, "proxies newer than their control plane are not supported"),
                         (older, f"Istio supports proxies at most {SUPPORTED_OLDER_MINORS} minor versions older")):
            if bad:
                yield finding("MSH0112", "proxy.version_skew", control_plane_subject(r), count=sum(bad.values()),
                              proxy_versions=", ".join(sorted(bad)), istiod=f"{r.namespace}/{r.pod}",
                              version=r.version, why=why,
                              evidence={"signal": signal, "proxies_by_version": dict(versions),
                                        "istiod_version": r.version, "revision": r.revision},
                              magnitude=sum(bad.values()),
                              hint="istioctl proxy-status lists each proxy's version; restart the workloads "
                                   "(kubectl rollout restart) so they get the injector's current proxy, or "
                                   "upgrade istiod first")
    if not judged:
        raise CouldNotCheck("no istiod version together with its proxies' versions (syncz or pilot_xds)")


@analyzer("proxy.injector", Category.PROXY, ("ControlPlane", "Pod", "Service"), ("MSH0113", "MSH0114"),
          mesh=Mesh.ISTIO, needs=("pods",))
def injector(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """Pods expect Istio's sidecar injection but no injector webhook exists, or the webhook
    calls a Service that does not exist (the MutatingWebhookConfigurations, read from Kubernetes)."""
    webhooks = snapshot.control_plane.webhooks
    if webhooks is None:
        raise CouldNotCheck("the cluster's MutatingWebhookConfigurations were not listed (no Kubernetes API "
                            "source, no permission to list them, or a bundle recorded without them)")
    expecting = [p for p in snapshot.pods if p.sidecar_injection_expected]
    if expecting and not webhooks:
        namespaces = sorted({p.namespace for p in expecting})
        yield finding("MSH0113", "proxy.injector", control_plane_subject(), pods=len(expecting),
                      namespaces=", ".join(namespaces[:5]) + (" ..." if len(namespaces) > 5 else ""),
                      which="exists (no MutatingWebhookConfiguration has a *.sidecar-injector.istio.io webhook)",
                      evidence={"signal": "MutatingWebhookConfigurations (Kubernetes)",
                                "namespaces": namespaces, "pods_expecting_injection": len(expecting)},
                      magnitude=len(expecting),
                      hint="reinstall Istio's injector (istioctl install, or the istiod Helm chart's "
                           "sidecarInjectorWebhook); kubectl get mutatingwebhookconfigurations shows none")
    for hook in webhooks:
        if hook.service is None or "/" not in hook.service:
            continue
        ns, name = hook.service.split("/", 1)
        if not vouches_for_services(snapshot, ns) or snapshot.service(ServiceRef(ns, name)) is not None:
            continue
        refused = (hook.failure_policy or "Fail") == "Fail"
        yield finding("MSH0114", "proxy.injector", f"MutatingWebhookConfiguration {hook.configuration}",
                      webhook=hook.name, configuration=hook.configuration, target=hook.service,
                      consequence="is refused for the pods it selects (failurePolicy Fail)" if refused else
                      "goes ahead without a sidecar (failurePolicy Ignore)",
                      evidence={"signal": "MutatingWebhookConfigurations and Services (Kubernetes)",
                                "revision": hook.revision, "failure_policy": hook.failure_policy},
                      magnitude=1,
                      hint="a removed revision's webhook is still registered: delete it (istioctl tag / "
                           "istioctl uninstall --revision) or point it at the running istiod")
