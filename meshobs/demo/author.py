"""The authoring API: describe a mesh unlike the demo's, in the mesh's own words, and get a
:class:`Scenario` every renderer (Kubernetes, Envoy admin, Prometheus with history, Jaeger,
istiod) turns into the payloads real sources serve.

    m = Mesh("retries-mask-ledger", "…", cause="…")
    m.namespace("payments")
    api = m.workload("payments", "payments-api", replicas=2)
    db = m.workload("ledger", "ledger-db", "v3", replicas=3)
    m.retried_call(api, db, rps=40, first_attempt_failure=0.3, retries=3, p50=9, p99=32, caller_p99=110)
    m.apply(resource("VirtualService", "payments", "ledger-db", {...}), changed_s_ago=1240)
    scenario = m.build(Expectation("retries-masking", target="payments/payments-api",
                                   subjects=("Service ledger/ledger-db",)))

Times are ages (seconds before the scenario time). Everything not said stays as a settled,
healthy mesh looks (see :mod:`meshobs.demo.state`).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from .expect import Expectation
from .scenario import TIME, WINDOW_S, CertSpec, Scenario, SlowSpan, WorkloadSpec
from .state import IstiodSpec, PodState, ProxyState, StatRate
from .traffic import EdgeTraffic, LatencyProfile, Phase, Reported, Responses

API_VERSIONS = {
    "VirtualService": "networking.istio.io/v1", "DestinationRule": "networking.istio.io/v1",
    "Gateway": "networking.istio.io/v1", "ServiceEntry": "networking.istio.io/v1",
    "Sidecar": "networking.istio.io/v1", "WorkloadEntry": "networking.istio.io/v1",
    "EnvoyFilter": "networking.istio.io/v1alpha3",
    "PeerAuthentication": "security.istio.io/v1", "AuthorizationPolicy": "security.istio.io/v1",
    "RequestAuthentication": "security.istio.io/v1", "Telemetry": "telemetry.istio.io/v1",
}


def resource(kind: str, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An Istio resource of ``kind`` as a manifest would hold it."""
    return {"apiVersion": API_VERSIONS[kind], "kind": kind,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def responses(*errors: tuple[str, str, float], ok: str = "200") -> Responses:
    """``ok`` responses for whatever fraction the ``errors`` (code, flags, fraction) leave."""
    rest = 1.0 - sum(f for _, _, f in errors)
    if rest < -1e-9:
        raise ValueError("error fractions add up to more than 1")
    head = ((ok, "-", rest),) if rest > 1e-12 else ()
    return head + tuple(errors)


def fqdn(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields(spec: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    """managedFields' FieldsV1 for the top-level spec keys (all of them when ``keys`` is None)."""
    return {"f:spec": {f"f:{k}": {} for k in (keys if keys is not None else spec)}}


class Mesh:
    """A mesh being described; :meth:`build` returns the :class:`Scenario`."""

    def __init__(self, name: str, description: str, cause: str, *, time: datetime = TIME,
                 window_s: float = WINDOW_S, seed: int = 11, traces: int = 40,
                 ingress_host: str | None = None) -> None:
        self.name, self.description, self.cause = name, description, cause
        self.time, self.window_s, self.seed, self.traces = time, window_s, seed, traces
        self.ingress_host = ingress_host
        self.workloads: list[WorkloadSpec] = []
        self.edges: list[EdgeTraffic] = []
        self.config: list[dict[str, Any]] = []
        self.intended: list[dict[str, Any]] | None = None
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.pod_states: dict[str, PodState] = {}
        self.proxy_states: dict[str, ProxyState] = {}
        self.certs: dict[str, CertSpec] = {}
        self.app_spans: dict[str, SlowSpan] = {}
        self.route_overrides: dict[str, dict[str, list[tuple[str, int]]]] = {}
        self.ejected: dict[str, set[str]] = {}
        self.istiod: IstiodSpec | None = IstiodSpec()
        self.mesh: dict[str, Any] = {}
        self.objects: list[dict[str, Any]] = []
        self.history_s = 3600.0
        self.metrics_end_s_ago = 0.0
        self._denied: dict[tuple[str, str], float] = {}  # (workload, filter) -> refused req/s
        self._applied = 0

    # -- namespaces and workloads ------------------------------------------------------------

    def namespace(self, name: str, *, injection: bool = True, ambient: bool = False,
                  labels: dict[str, str] | None = None) -> None:
        """A namespace: sidecar-injected (``istio-injection=enabled``), ambient
        (``istio.io/dataplane-mode=ambient``, no sidecars), or neither."""
        out: dict[str, str] = {}
        if ambient:
            out["istio.io/dataplane-mode"] = "ambient"
        elif injection:
            out["istio-injection"] = "enabled"
        out.update(labels or {})
        self.namespace_labels[name] = out

    def _meshed(self, namespace: str) -> bool:
        labels = self.namespace_labels.get(namespace, {"istio-injection": "enabled"})
        return labels.get("istio-injection") == "enabled" or "istio.io/rev" in labels

    def workload(self, namespace: str, service: str, version: str = "v1", *, replicas: int = 1,
                 service_account: str | None = None, port: int = 8080, name: str | None = None,
                 kind: str = "Deployment", sidecar: bool | None = None,
                 other_services: tuple[str, ...] = ()) -> WorkloadSpec:
        """A Deployment ``<service>-<version>`` (or ``name``) behind the Service ``service``
        (and the ``other_services``, selecting the same pods)."""
        if namespace not in self.namespace_labels:
            self.namespace(namespace)
        w = WorkloadSpec(namespace, name or f"{service}-{version}", service, version, replicas,
                         service_account or service, port,
                         sidecar=self._meshed(namespace) if sidecar is None else sidecar, kind=kind,
                         other_services=other_services)
        self.workloads.append(w)
        return w

    @staticmethod
    def through(w: WorkloadSpec, service: str) -> WorkloadSpec:
        """``w`` as a caller reaches it through another Service of it (one of its
        ``other_services``): the destination of :meth:`call` and the like."""
        if service not in w.other_services:
            raise ValueError(f"{w.name} is not behind a Service {service!r}")
        return replace(w, service=service)

    def ingress_gateway(self, *, namespace: str = "istio-system", name: str = "istio-ingressgateway",
                        replicas: int = 1) -> WorkloadSpec:
        """Istio's ingress gateway (a router proxy selected by ``istio: ingressgateway``)."""
        if namespace not in self.namespace_labels:
            self.namespace_labels[namespace] = {}
        w = WorkloadSpec(namespace, name, name, "latest", replicas, f"{name}-service-account", 8080,
                         gateway=True)
        self.workloads.append(w)
        return w

    # -- traffic ----------------------------------------------------------------------------

    def _edge(self, src: WorkloadSpec, dst: WorkloadSpec, rps: float, p50: float, p99: float,
              errors: tuple[tuple[str, str, float], ...], **kw: Any) -> EdgeTraffic:
        return EdgeTraffic(
            source_namespace=src.namespace, source_workload=src.name, source_service=src.service,
            source_version=src.version, destination_namespace=dst.namespace,
            destination_service=dst.service, destination_workload=dst.name,
            destination_version=dst.version, rps=rps, responses=responses(*errors),
            latency=LatencyProfile(p50, p99), source_service_account=src.service_account,
            destination_service_account=dst.service_account, **kw)

    def call(self, src: WorkloadSpec, dst: WorkloadSpec, rps: float, p50: float, p99: float,
             *errors: tuple[str, str, float], protocol: str = "http", mtls: bool = True,
             dest: Reported | None = None, onset_s_ago: float | None = None,
             before: Reported | None = None, before_dest: Reported | None = None,
             grpc_statuses: tuple[str, ...] = (), reporters: tuple[str, ...] | None = None,
             tcp_bps: tuple[float, float] = (0.0, 0.0), history: tuple[Phase, ...] = ()) -> EdgeTraffic:
        """``src`` calls ``dst``: ``rps`` requests per second, latency by p50/p99 (ms), the
        ``errors`` as (code, flags, fraction) and 200 for the rest. ``dest``: what the callee's
        proxy reports when it differs. ``onset_s_ago``: the edge looked like ``before`` (default:
        the same rate, no errors, the same latency) until then; ``history``: several earlier
        phases, oldest first (a batch job's runs)."""
        phases: tuple[Phase, ...] = history
        if onset_s_ago is not None:
            earlier = before or Reported(rps, responses(), LatencyProfile(p50, p99))
            phases = (Phase(onset_s_ago, earlier, before_dest),)
        edge = self._edge(src, dst, rps, p50, p99, errors, protocol=protocol, mtls=mtls,
                          destination_view=dest, phases=phases, grpc_statuses=grpc_statuses,
                          reporters=reporters, tcp_sent_bps=tcp_bps[0], tcp_received_bps=tcp_bps[1])
        self.edges.append(edge)
        return edge

    def job_calls(self, src: WorkloadSpec, dst: WorkloadSpec, rps: float, p50: float, p99: float,
                  started_s_ago: tuple[float, ...], idle_s: float, **kwargs: Any) -> EdgeTraffic:
        """A Job's bursts: ``src`` calls ``dst`` at ``rps`` from each of ``started_s_ago`` (seconds
        before the scenario time) on, and not at all for the ``idle_s`` before each start; a run
        lasts until the idle stretch before the next start. ``kwargs`` as :meth:`call`."""
        runs = [(age, rate) for start in started_s_ago for age, rate in ((start, 0.0), (start + idle_s, rps))]
        phases = tuple(Phase(age, Reported(rate, (("200", "-", 1.0),), LatencyProfile(p50, p99)))
                       for age, rate in sorted(runs, reverse=True))
        return self.call(src, dst, rps, p50, p99, history=phases, **kwargs)

    def unreached(self, src: WorkloadSpec, dst: WorkloadSpec, rps: float,
                  *errors: tuple[str, str, float], onset_s_ago: float | None = None,
                  version: str | None = None) -> EdgeTraffic:
        """Requests from ``src`` to ``dst``'s service that never reached a pod (503 UH to an
        empty subset, 503 UF...): only the caller reports them. They count on the caller's
        cluster of the subset selecting ``version`` (default ``dst.version``)."""
        phases: tuple[Phase, ...] = ()
        if onset_s_ago is not None:
            phases = (Phase(onset_s_ago, Reported(0.0)),)
        edge = replace(self._edge(src, dst, rps, 0.6, 3.0, errors), destination_workload=None,
                       responses=tuple(errors), phases=phases, destination_version=version or dst.version)
        self.edges.append(edge)
        return edge

    def external(self, src: WorkloadSpec, host: str, rps: float, p50: float, p99: float,
                 *errors: tuple[str, str, float], namespace: str = "unknown", label: str | None = None,
                 protocol: str = "http", tcp_bps: tuple[float, float] = (0.0, 0.0),
                 onset_s_ago: float | None = None) -> EdgeTraffic:
        """``src`` calls a host outside the mesh. ``label``: the destination_service Istio
        reports (the ServiceEntry host by default; ``BlackHoleCluster`` or
        ``PassthroughCluster`` when no ServiceEntry covers it); ``namespace``: the
        ServiceEntry's (``unknown`` for Black/Passthrough)."""
        shown = label or host
        phases = (Phase(onset_s_ago, Reported(0.0)),) if onset_s_ago is not None else ()
        edge = EdgeTraffic(
            source_namespace=src.namespace, source_workload=src.name, source_service=src.service,
            source_version=src.version, destination_namespace=namespace, destination_service=shown,
            destination_workload=None, destination_version="unknown", rps=rps,
            responses=responses(*errors), latency=LatencyProfile(p50, p99), protocol=protocol,
            source_service_account=src.service_account, destination_host=shown, phases=phases,
            tcp_sent_bps=tcp_bps[0], tcp_received_bps=tcp_bps[1])
        self.edges.append(edge)
        return edge

    def mirror(self, src: WorkloadSpec, shadow: WorkloadSpec, rps: float, p50: float, p99: float,
               *errors: tuple[str, str, float]) -> EdgeTraffic:
        """Traffic mirrored from ``src`` to ``shadow``: Envoy fires and forgets it, so only the
        shadow's proxy reports it (and its errors never reach a caller)."""
        edge = replace(self._edge(src, shadow, rps, p50, p99, errors), source_reported=False)
        self.edges.append(edge)
        return edge

    def retried_call(self, src: WorkloadSpec, dst: WorkloadSpec, rps: float, *,
                     first_attempt_failure: float, retries: int, p50: float, p99: float,
                     caller_p50: float, caller_p99: float, onset_s_ago: float | None = None,
                     overflow_per_s: float = 0.0) -> EdgeTraffic:
        """A call whose callee fails ``first_attempt_failure`` of attempts (its own 503s) and
        whose caller retries up to ``retries`` times: the caller reports ``p^(retries+1)`` of
        requests as 503 URX; the callee reports every attempt; the caller's Envoy counts
        ``upstream_rq_retry``, ``upstream_rq_retry_success``, ``upstream_rq_retry_limit_exceeded``
        (and ``upstream_rq_retry_overflow`` when the retry budget trips)."""
        p = first_attempt_failure
        attempts = sum(p ** k for k in range(retries + 1))  # expected attempts per request
        exhausted = p ** (retries + 1)
        dest = Reported(rps * attempts, responses(("503", "-", p)), LatencyProfile(p50, p99))
        before = Reported(rps, responses(), LatencyProfile(p50, p99)) if onset_s_ago is not None else None
        edge = self.call(src, dst, rps, caller_p50, caller_p99, ("503", "URX", exhausted), dest=dest,
                         onset_s_ago=onset_s_ago, before=before)
        cluster = f"cluster.outbound|{dst.port}||{fqdn(dst.service, dst.namespace)}."
        per_pod = rps / src.replicas
        for stat, per_request in (("upstream_rq_retry", attempts - 1), ("upstream_rq_retry_success", p - exhausted),
                                  ("upstream_rq_retry_limit_exceeded", exhausted)):
            self.count(src, cluster + stat, per_pod * per_request, onset_s_ago)
        self.count(src, cluster + "upstream_rq_retry_overflow", overflow_per_s / src.replicas, onset_s_ago)
        self.count(src, cluster + "upstream_rq_retry_backoff_exponential", per_pod * (attempts - 1), onset_s_ago)
        return edge

    def denied_call(self, src: WorkloadSpec, dst: WorkloadSpec, rps: float, p50: float = 1.2,
                    p99: float = 4.0, *, onset_s_ago: float | None = None, by: str = "rbac",
                    share: float = 1.0, served: tuple[float, float] = (8.0, 30.0)) -> EdgeTraffic:
        """A call the server's sidecar refuses, ``share`` of it (1: every request): ``by`` the
        RBAC filter (an AuthorizationPolicy: 403, ``rbac_access_denied_matched_policy[...]``) or
        the JWT filter (a RequestAuthentication: 401, ``jwt_authn_access_denied{...}``); no
        response flag, on both sides; counted as ``http.inbound_0.0.0.0_<port>.<by>.denied`` on
        the callee's sidecars. The rest is served in ``served`` (p50, p99) ms."""
        code = {"rbac": "403", "jwt_authn": "401"}[by]
        if share < 1.0:
            edge = self.call(src, dst, rps, *served, (code, "-", share), onset_s_ago=onset_s_ago)
        else:
            edge = self.call(src, dst, rps, p50, p99, (code, "-", 1.0), onset_s_ago=onset_s_ago)
        key = (dst.name, by)
        self._denied[key] = self._denied.get(key, 0.0) + rps * share
        self.count(dst, f"http.inbound_0.0.0.0_{dst.port}.{by}.denied", rps * share / dst.replicas, onset_s_ago)
        return edge

    # -- configuration ----------------------------------------------------------------------

    def apply(self, *resources: dict[str, Any], created_s_ago: float | None = None,
              changed_s_ago: float | None = None, changed_fields: tuple[str, ...] | None = None,
              editor: str = "kubectl-edit") -> None:
        """Live Istio resources. ``created_s_ago`` / ``changed_s_ago`` date them the way the API
        server does (``creationTimestamp``, ``metadata.generation``, ``managedFields`` times), so
        a change can be seen to precede a fault."""
        for r in resources:
            r = copy.deepcopy(r)
            self._applied += 1
            created = self.time - timedelta(seconds=created_s_ago if created_s_ago is not None
                                            else 12 * 86400 + 3600 * self._applied)
            meta = r["metadata"]
            meta["creationTimestamp"] = _ts(created)
            meta["generation"] = 1
            meta["managedFields"] = [{"manager": "kubectl-client-side-apply", "operation": "Update",
                                      "apiVersion": r["apiVersion"], "time": _ts(created), "fieldsType": "FieldsV1",
                                      "fieldsV1": _fields(r["spec"], None)}]
            if changed_s_ago is not None:
                meta["generation"] = 2
                meta["managedFields"].append({
                    "manager": editor, "operation": "Update", "apiVersion": r["apiVersion"],
                    "time": _ts(self.time - timedelta(seconds=changed_s_ago)), "fieldsType": "FieldsV1",
                    "fieldsV1": _fields(r["spec"], changed_fields)})
            self.config.append(r)

    def mesh_config(self, **fields: Any) -> None:
        """Fields of the mesh config (ConfigMap istio-system/istio), e.g.
        ``outboundTrafficPolicy={"mode": "REGISTRY_ONLY"}``."""
        self.mesh.update(fields)

    # -- state ------------------------------------------------------------------------------

    def pods(self, w: WorkloadSpec, state: PodState) -> None:
        self.pod_states[w.name] = state

    def proxy(self, w: WorkloadSpec, **changes: Any) -> None:
        """Change ``w``'s proxy state (fields of :class:`ProxyState`)."""
        self.proxy_states[w.name] = replace(self.proxy_states.get(w.name, ProxyState()), **changes)

    def count(self, w: WorkloadSpec, stat: str, per_s: float, since_s_ago: float | None = None) -> None:
        """An Envoy counter on ``w``'s sidecars growing ``per_s`` per pod since ``since_s_ago``."""
        state = self.proxy_states.get(w.name, ProxyState())
        self.proxy_states[w.name] = replace(state, counters=(*state.counters, StatRate(stat, per_s, since_s_ago)))

    def cert(self, w: WorkloadSpec, issued_h_ago: float, lifetime_h: float = 24.0) -> None:
        self.certs[w.name] = CertSpec(issued_h_ago, lifetime_h)

    def control_plane(self, spec: IstiodSpec | None) -> None:
        """istiod (None: no control plane rendered, as the classic demo)."""
        self.istiod = spec

    # -- the scenario -----------------------------------------------------------------------

    def build(self, expect: Expectation) -> Scenario:
        """The :class:`Scenario`, with ``expect`` as its machine-readable ground truth."""
        for (name, by), denied in self._denied.items():
            dst = next(w for w in self.workloads if w.name == name)
            served = sum(e.rps for e in self.edges if e.destination_workload == name) - denied
            self.count(dst, f"http.inbound_0.0.0.0_{dst.port}.{by}.allowed", served / dst.replicas)
        extra = {k: {"istio-injection": "enabled"} for k in {w.namespace for w in self.workloads}
                 if k not in self.namespace_labels}
        return Scenario(
            name=self.name, description=self.description, cause=self.cause, workloads=list(self.workloads),
            edges=list(self.edges), config=list(self.config), intended=self.intended, ejected=self.ejected,
            route_overrides=self.route_overrides, certs=self.certs, app_spans=self.app_spans, time=self.time,
            window_s=self.window_s, seed=self.seed, traces=self.traces, rich=True,
            namespace_labels={**extra, **self.namespace_labels}, pod_states=self.pod_states,
            proxy_states=self.proxy_states, istiod=self.istiod, mesh_config=self.mesh or None,
            objects=self.objects, expect=expect,
            ingress_host=self.ingress_host or "shop.example.com:8080", history_s=self.history_s,
            metrics_end_s_ago=self.metrics_end_s_ago)
