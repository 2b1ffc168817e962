"""The live Kubernetes API: pods, services, namespaces and the Istio / App Mesh custom resources.

Payload keys (one RawSource named ``kubernetes``): ``pods``, ``services``, ``namespaces``,
``deployments`` (workloads scaled to zero still exist) and ``crd/<group>/<version>/<plural>``.
With ``sources.kubernetes.namespaces`` set, one payload per namespace with ``@<ns>`` appended
(``pods@shop``; ``namespace@shop`` reads the Namespace itself). Bodies are the list JSON
as the API server sent it, minus what no normaliser reads (:mod:`k8s_minimise`: container env
values, last-applied copies, managedFields). A custom resource that is not installed answers
404 and is recorded as such: "not installed" is not an error.

Credentials (tokens, client keys, kubeconfig contents) never enter a payload or meta.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.collectors.http import TooLarge, mb, read_capped
from meshobs.collectors.k8s_import import lazy_kubernetes
from meshobs.collectors.k8s_meshconfig import kept_fields
from meshobs.collectors.k8s_minimise import minimise_body, minimise_document
from meshobs.collectors.k8s_minimise_typed import minimised_page
from meshobs.collectors.k8s_objects import (
    ALL_NAMESPACES,
    flatten_objects,
    objects_to_part,
    pod_from_object,
    workloads_from_pods,
)
from meshobs.collectors.netbound import DeadlineExceeded, current_run, install, watch
from meshobs.collectors.workers import fan_out
from meshobs.config import Config
from meshobs.durations import parse_duration, seconds
from meshobs.model import Layer, Mesh, Pod, SnapshotPart, SourceState, SourceStatus, WorkloadRef
from meshobs.raw import Payload, RawSource, iso, utc_now
from meshobs.shape import dumps_compact, loads_standard

KIND = "kubernetes"
ISTIO_CRDS = (
    ("networking.istio.io", "virtualservices"), ("networking.istio.io", "destinationrules"),
    ("networking.istio.io", "gateways"), ("networking.istio.io", "serviceentries"),
    ("networking.istio.io", "sidecars"), ("security.istio.io", "peerauthentications"),
    ("security.istio.io", "authorizationpolicies"), ("security.istio.io", "requestauthentications"),
)
ISTIO_VERSIONS = ("v1", "v1beta1")
# Kinds served at other versions than the networking/security ones: (group, plural, versions
# tried in order). The Gateway API's kinds are listed with Istio's: Istio implements them.
ISTIO_OTHER_CRDS = (
    ("networking.istio.io", "envoyfilters", ("v1alpha3",)),
    ("telemetry.istio.io", "telemetries", ("v1", "v1alpha1")),
    ("extensions.istio.io", "wasmplugins", ("v1alpha1",)),
    ("gateway.networking.k8s.io", "gateways", ("v1", "v1beta1")),
    ("gateway.networking.k8s.io", "httproutes", ("v1", "v1beta1")),
)
APPMESH_GROUP, APPMESH_VERSION = "appmesh.k8s.aws", "v1beta2"
APPMESH_CRDS = ("meshes", "virtualservices", "virtualrouters", "virtualnodes", "virtualgateways",
                "gatewayroutes")
CLUSTER_SCOPED_CRDS = {(APPMESH_GROUP, "meshes")}
# (name, namespace) of Istio's mesh config, and its payload key and API path.
MESH_CONFIGMAP = ("istio", "istio-system")
MESH_CONFIGMAP_KEY = f"configmap/{MESH_CONFIGMAP[1]}/{MESH_CONFIGMAP[0]}"
MESH_CONFIGMAP_PATH = f"/api/v1/namespaces/{MESH_CONFIGMAP[1]}/configmaps/{MESH_CONFIGMAP[0]}"
WEBHOOKS_KEY = "mutatingwebhookconfigurations"
WEBHOOKS_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
# Payload keys whose 404 means "not installed" (a CRD, Istio's mesh config, the webhooks), not an error.
OPTIONAL_KEYS = ("crd/", "configmap/", WEBHOOKS_KEY)
CONCURRENCY = 4
PAGE_SIZE = 500  # objects per list page, as kubectl asks
MAX_PAGES = 10_000  # a bound on a server that keeps answering with a continue token
ROOT_NAMESPACE = "istio-system"  # where mesh-wide policies live (Istio's default root namespace)
SCOPED_NAMESPACES_MAX = 3  # more namespaces than this: one cluster-wide list per kind is cheaper
# A scoped question's pods, listed per namespace up to this many namespaces: each list costs a
# request, but a cluster-wide one costs every pod of the mesh (7,415 at 5,000 services).
SCOPED_POD_NAMESPACES_MAX = 8
HINT = "check sources.kubernetes.kubeconfig/context"


class KubeConfigError(Exception):
    """The kubeconfig (or in-cluster config) could not be loaded."""


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "name or service not known" in low or "nodename nor servname" in low or "resolution" in low:
        return "host name not found"
    if "ssl" in low or "certificate" in low:
        return "TLS error (" + text.split("] ")[-1][:160] + ")"
    return text.split("] ")[-1][:200] or type(exc).__name__


def _api_message(body: Any) -> str:
    try:
        doc = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return ""
    return str(doc.get("message", "")) if isinstance(doc, dict) else ""


def describe_api_error(status: int, body: Any, server: str, resource: str, namespace: str | None) -> str:
    """An actionable sentence for an HTTP error from the API server."""
    scope = f"in namespace {namespace}" if namespace else "cluster-wide"
    detail = _api_message(body)
    suffix = f" ({detail})" if detail else ""
    if status == 401:
        return (f"unauthorized: the Kubernetes API at {server} rejected the credentials{suffix}; "
                f"{HINT} and that the token or certificate is still valid")
    if status == 403:
        return (f"forbidden: the service account needs list on {resource} {scope}{suffix}; "
                f"grant it with a Role/ClusterRole or narrow sources.kubernetes.namespaces")
    if status == 410:
        # Relisted once already (KubernetesCollector._read): the objects change faster than
        # the list can be paged.
        return (f"listing {resource} {scope} at {server} failed: the API server expired the list's "
                f"continue token again after a fresh list (HTTP 410 Gone{suffix}); the objects change "
                "faster than they can be paged, run again")
    return f"listing {resource} {scope} at {server} failed with HTTP {status}{suffix}"


def load_configuration(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """(``kubernetes.client.Configuration``, context name) the way kubectl picks them.

    ``kubeconfig`` (or ``$KUBECONFIG``, else ``~/.kube/config``) when that file exists; else the
    in-cluster service account when running in a pod. Raises :class:`KubeConfigError` with a
    message that names the file and never quotes credentials. Shared by the Kubernetes
    collector and the Envoy port-forward transport so both pick the same cluster.
    """
    lazy_kubernetes()  # the library without its model classes (k8s_import): 0.2 s of every run
    from kubernetes import client
    from kubernetes import config as kconfig
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    path = os.path.expanduser(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
    exists = any(Path(p).expanduser().is_file() for p in path.split(os.pathsep) if p)
    try:
        if not exists and not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kconfig.load_incluster_config(client_configuration=cfg)
            name = "in-cluster"
        elif not exists:
            raise KubeConfigError(f"no kubeconfig at {path} and not running in a pod; "
                                  f"set sources.kubernetes.kubeconfig or $KUBECONFIG")
        else:
            kconfig.load_kube_config(config_file=path, context=context,
                                     client_configuration=cfg, persist_config=False)
            _, active = kconfig.list_kube_config_contexts(config_file=path)
            name = context or (active or {}).get("name", "")
    except yaml.YAMLError as exc:
        # Not the parser's message: it quotes the offending line, which may hold a token.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KubeConfigError(f"cannot load kubeconfig {path}: not valid YAML{where}; {HINT}") from None
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        # The loaders' messages name keys and files, never credential values.
        raise KubeConfigError(f"cannot load kubeconfig {path}: {exc}; {HINT}") from None
    cfg.retries = 0  # an unreachable server should fail now, not after urllib3's retries
    return cfg, name


class _TimedOut(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


@dataclass(frozen=True)
class Request:
    key: str
    path: str
    resource: str
    namespace: str | None
    call: Callable[..., Any]
    args: tuple[Any, ...] = ()
    paged: bool = True  # a list (limit/continue); False for a single object (read_namespace)
    selector: str | None = None  # labelSelector narrowing the list


@dataclass
class KubernetesCollector:
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: list[str] = field(default_factory=list)
    timeout_s: float = 10.0
    mesh: str = "auto"  # istio | appmesh | auto: whose CRDs to ask for
    kind: str = KIND
    # Hand each list's decoded objects to the normaliser (Payload.decoded) when this run
    # normalises them soon; not when it only records a bundle (snapshot): they would be held
    # beside the body until the process ends.
    hand_over: bool = field(default=False, init=False)

    # -- configuration -------------------------------------------------------------------
    def load(self) -> tuple[Any, str, str]:
        """(ApiClient, context name, server URL) the way kubectl picks them."""
        lazy_kubernetes()
        from kubernetes import client

        cfg, context = load_configuration(self.kubeconfig, self.context)
        api = client.ApiClient(cfg)
        install(api.rest_client.pool_manager)  # total time bounds (see meshobs.collectors.netbound)
        return api, context, str(cfg.host)

    # -- fetching ------------------------------------------------------------------------
    def _requests(self, api: Any, core_scopes: list[str | None] | None,
                  crd_scopes: list[str | None] | None,
                  pod_scopes: list[tuple[str | None, str | None]] | None = None,
                  ) -> tuple[list[Request], list[list[Request]]]:
        """(core requests, CRD chains) for these namespaces (None: cluster-wide; an argument of
        None: none of that kind). The core lists are services, namespaces and deployments; pods
        are listed in ``pod_scopes`` ((namespace, labelSelector) pairs; after every other
        request: a scoped question's probe is the mesh config). A chain is tried in order while
        the server says 404."""
        from kubernetes import client

        core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        admission = client.AdmissionregistrationV1Api(api)
        reqs: list[Request] = []
        chains: list[list[Request]] = []
        for ns in core_scopes or []:
            at = f"@{ns}" if ns else ""
            if ns:
                reqs.append(Request(f"services{at}", f"/api/v1/namespaces/{ns}/services", "services", ns,
                                    core.list_namespaced_service, (ns,)))
                reqs.append(Request(f"namespace{at}", f"/api/v1/namespaces/{ns}", "namespaces", ns,
                                    core.read_namespace, (ns,), paged=False))
                reqs.append(Request(f"deployments{at}", f"/apis/apps/v1/namespaces/{ns}/deployments",
                                    "deployments", ns, apps.list_namespaced_deployment, (ns,)))
            else:
                reqs.append(Request("services", "/api/v1/services", "services", None,
                                    core.list_service_for_all_namespaces))
                reqs.append(Request("namespaces", "/api/v1/namespaces", "namespaces", None, core.list_namespace))
                reqs.append(Request("deployments", "/apis/apps/v1/deployments", "deployments", None,
                                    apps.list_deployment_for_all_namespaces))
        if core_scopes and self.mesh in ("istio", "auto"):
            # Cluster-scoped: is Istio's sidecar injector there? (one request, whatever the filter)
            reqs.append(Request(WEBHOOKS_KEY, WEBHOOKS_PATH, "mutatingwebhookconfigurations", None,
                                admission.list_mutating_webhook_configuration))
        scopes = crd_scopes or []
        for ns in scopes:
            at = f"@{ns}" if ns else ""
            if ns == scopes[0] and self.mesh in ("istio", "auto"):
                # Istio's mesh config (outboundTrafficPolicy, rootNamespace), with the rest of the
                # mesh configuration: one object; absent (404) means Istio's defaults, not an error.
                reqs.append(Request(MESH_CONFIGMAP_KEY, MESH_CONFIGMAP_PATH, "configmaps", MESH_CONFIGMAP[1],
                                    core.read_namespaced_config_map, MESH_CONFIGMAP, paged=False))
            crds: list[tuple[str, str, tuple[str, ...]]] = []
            if self.mesh in ("istio", "auto"):
                crds += [(g, p, ISTIO_VERSIONS) for g, p in ISTIO_CRDS] + list(ISTIO_OTHER_CRDS)
            if self.mesh in ("appmesh", "auto"):
                crds += [(APPMESH_GROUP, p, (APPMESH_VERSION,)) for p in APPMESH_CRDS]
            for group, plural, versions in crds:
                cluster = (group, plural) in CLUSTER_SCOPED_CRDS
                if cluster and ns != scopes[0]:
                    continue  # cluster-scoped: one request whatever the namespace filter
                chain = []
                for v in versions:
                    if ns and not cluster:
                        chain.append(Request(f"crd/{group}/{v}/{plural}{at}",
                                             f"/apis/{group}/{v}/namespaces/{ns}/{plural}", plural, ns,
                                             custom.list_namespaced_custom_object, (group, v, ns, plural)))
                    else:
                        chain.append(Request(f"crd/{group}/{v}/{plural}", f"/apis/{group}/{v}/{plural}",
                                             plural, None, custom.list_cluster_custom_object, (group, v, plural)))
                chains.append(chain)
        for ns, selector in pod_scopes or []:
            if ns:
                reqs.append(Request(f"pods@{ns}", f"/api/v1/namespaces/{ns}/pods", "pods", ns,
                                    core.list_namespaced_pod, (ns,), selector=selector))
            else:
                reqs.append(Request("pods", "/api/v1/pods", "pods", None, core.list_pod_for_all_namespaces))
        return reqs, chains

    def _get(self, req: Request, server: str) -> Payload:
        """One list, within the source's timeout in total (and the run's deadline), capped in size."""
        from kubernetes.client.exceptions import ApiException

        start = time.perf_counter()
        payload = Payload(key=req.key, url=server.rstrip("/") + req.path, fetched_at=iso(utc_now()),
                          params={"labelSelector": req.selector} if req.selector else {})
        try:
            with watch(self.timeout_s) as w:
                try:
                    if w.expired:
                        raise DeadlineExceeded("the run's deadline had passed")
                    body, status, decoded = self._read(req, w)
                    if w.expired:  # cut mid-body: a body that ends with the connection ends quietly
                        raise _TimedOut(w.seconds)
                    payload.body, payload.status = body, status
                    payload.decoded = decoded if self.hand_over else None
                except ApiException:
                    raise
                except Exception as exc:
                    if w.expired or isinstance(exc, DeadlineExceeded):
                        raise _TimedOut(w.seconds) from exc
                    raise
        except _TimedOut as exc:
            payload.error = (f"the Kubernetes API at {server} did not answer {req.path} within "
                             f"{seconds(exc.seconds)} s (timed out); {HINT} or raise sources.kubernetes.timeout")
        except TooLarge as exc:
            payload.error = (f"the Kubernetes API's answer to {req.path} is larger than {mb(exc.max_bytes)} MB, "
                             "not read (the limit is max_response_mb); narrow sources.kubernetes.namespaces")
        except ApiException as exc:
            payload.status = int(exc.status or 0)
            payload.body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
            if exc.status != 404 or not req.key.startswith(OPTIONAL_KEYS):
                payload.error = describe_api_error(payload.status, payload.body, server, req.resource,
                                                   req.namespace)
        except ValueError as exc:  # a page too large to scrub
            payload.body, payload.error = None, f"{req.key}: {exc}"
        except Exception as exc:  # urllib3 / socket errors: the server was not reached
            payload.error = f"cannot reach the Kubernetes API at {server}: {_connection_reason(exc)}; {HINT}"
        payload.elapsed_s = time.perf_counter() - start
        if payload.body is not None and payload.error is None and not req.paged:
            try:
                # Only what the normalisers read is kept: no env values, no last-applied copies.
                payload.body = minimise_body(payload.body)
            except ValueError as exc:
                payload.body, payload.error = None, f"{req.key}: {exc}"
        return payload

    def _read(self, req: Request, w: Any) -> tuple[str, int, Any]:
        """(body, status, decoded) of ``req``: a list is read page by page (``limit``/``continue``,
        as kubectl does), each page minimised as it arrives, so a big cluster's pods are never held
        whole in their raw form; the pages' items make one list body. The size cap counts every
        page's raw bytes. ``decoded`` is the merged list the body was written from (None when the
        body is kept as it came): the normaliser reads it instead of decoding the body again
        (the 5,000 Services and 7,415 Deployments of a big mesh: 4.6 MB, 0.1 s of CPU).

        A continue token the server has expired (410 Gone: etcd compacted the list's revision
        while it was being paged) restarts the list once from its first page, as client-go's
        pager relists; a second 410 is that list's error."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self._read_pages(req, w)
        except ApiException as exc:
            if exc.status != 410 or not req.paged:
                raise
        return self._read_pages(req, w)

    def _read_pages(self, req: Request, w: Any) -> tuple[str, int, Any]:
        cap = current_run().max_bytes
        used = 0
        narrow: dict[str, Any] = {"label_selector": req.selector} if req.selector else {}
        kwargs: dict[str, Any] = {"limit": PAGE_SIZE, **narrow} if req.paged else {}
        items: list[Any] = []
        first: dict[str, Any] | None = None
        standard = True  # every page was standard JSON: written back with msgspec
        for _page in range(MAX_PAGES):
            step = max(w.remaining_s(), 0.001)
            resp = req.call(*req.args, _preload_content=False, _request_timeout=(step, step), **kwargs)
            try:
                if used >= cap:
                    raise TooLarge(cap)
                data = read_capped(resp, cap - used)
            except TooLarge:
                raise TooLarge(cap) from None
            finally:
                resp.release_conn()
            # Decoded to text only when the page is kept as it came (a parsed page is minimised
            # and re-encoded: its text, megabytes of pods, would be thrown away).
            status = int(resp.status)
            if not req.paged:
                return data.decode("utf-8", "replace"), status, None
            used += len(data)
            typed = minimised_page(data, req.resource)  # Services, Deployments, Pods: in C
            if typed is not None:
                doc, token = typed
            else:
                try:
                    doc, exact = loads_standard(data)  # msgspec: a fifth of json's time on 1,500 pods' pages
                    standard = standard and exact
                except (ValueError, RecursionError):
                    return data.decode("utf-8", "replace"), status, None  # not JSON: the normaliser says so
                if (not isinstance(doc, dict) or doc.get("kind") == "Status"
                        or not isinstance(doc.get("items"), list)):
                    return data.decode("utf-8", "replace"), status, None
                token = (doc.get("metadata") or {}).get("continue")
                doc = minimise_document(doc)
            items.extend(doc.get("items") or [])
            first = first or doc
            if not token:
                break
            kwargs = {"limit": PAGE_SIZE, "_continue": token, **narrow}
        assert first is not None
        merged = {**first, "items": items, "metadata": {k: v for k, v in (first.get("metadata") or {}).items()
                                                         if k != "continue"}}
        return dumps_compact(merged, standard), 200, merged

    def _chain(self, chain: list[Request], server: str) -> list[Payload]:
        out = []
        for req in chain:
            p = self._get(req, server)
            out.append(p)
            if p.status != 404:
                break
        return out

    def _crd_scopes(self, ctx: FetchContext, root: str = ROOT_NAMESPACE) -> list[str | None]:
        """Namespaces to list mesh config in: all (or the configured ones), or for a scoped
        question the namespaces involved plus the root namespace ``root`` (mesh-wide policies),
        unless they are so many that one cluster-wide list per kind is cheaper."""
        everywhere: list[str | None] = list(self.namespaces) or [None]
        if ctx.phase != "scoped" or ctx.scope is None:
            return everywhere
        wanted = sorted(ctx.scope.namespaces | {root})
        if self.namespaces:
            wanted = [n for n in wanted if n in self.namespaces]
        return everywhere if len(wanted) > SCOPED_NAMESPACES_MAX else list(wanted)

    def _pod_scopes(self, ctx: FetchContext,
                    root: str = ROOT_NAMESPACE) -> list[tuple[str | None, str | None]] | None:
        """(namespace, labelSelector) to list pods in: all (or the configured namespaces) in
        phase "all"; none in the graph phase (the neighbourhood is found from the Services,
        Deployments and edges); for a scoped question the namespaces involved, each narrowed
        to the neighbourhood's pods where the scope says how (``Scope.pod_selectors``), plus
        the root namespace whole (istiod's pods: the control plane's readiness). Cluster-wide
        when more than SCOPED_POD_NAMESPACES_MAX namespaces would be listed whole."""
        everywhere: list[tuple[str | None, str | None]] = [(n, None) for n in self.namespaces] or [(None, None)]
        if ctx.phase == "graph":
            return None
        if ctx.phase != "scoped" or ctx.scope is None:
            return everywhere
        narrowed = dict(ctx.scope.pod_selectors)
        wanted = sorted(ctx.scope.namespaces | {root, ROOT_NAMESPACE})
        if self.namespaces:
            wanted = [n for n in wanted if n in self.namespaces]
        pairs: list[tuple[str | None, str | None]] = [
            (n, None if n in (root, ROOT_NAMESPACE) else narrowed.get(n)) for n in wanted]
        whole = sum(1 for _, selector in pairs if selector is None)
        return everywhere if whole > SCOPED_POD_NAMESPACES_MAX else pairs

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        """List everything (phase "all"); the services, namespaces and deployments only (phase
        "graph"); or the pods and mesh configuration of the namespaces involved (phase
        "scoped"). The first request doubles as a reachability probe."""
        raw = RawSource(name=KIND, kind=KIND, meta={"context": "", "namespaces": list(self.namespaces)})
        self.hand_over = ctx.phase == "graph" or ctx.digest is not None
        core: list[str | None] | None = None if ctx.phase == "scoped" else (list(self.namespaces) or [None])
        crds = None if ctx.phase == "graph" else self._crd_scopes(ctx)
        pods = self._pod_scopes(ctx)
        with raw.timed():
            try:
                api, context, server = self.load()
            except KubeConfigError as exc:
                raw.error = str(exc)
                return [raw]
            raw.meta["context"] = context
            try:
                reqs, chains = self._requests(api, core, crds, pods)
                probe: Payload | None = None
                if reqs:
                    # The probe is the cheapest list (the namespaces): the pods, the longest
                    # (four pages in a row at 1,500 pods), then run beside the others.
                    first = next((r for r in reqs if r.resource == "namespaces"), reqs[0])
                    probe = self._get(first, server)
                    if probe.error and (probe.status is None or probe.status == 401):
                        raw.add(probe)
                        return [raw]  # nothing else can succeed; one clear error beats sixteen
                if probe is not None and probe.key == MESH_CONFIGMAP_KEY and ctx.phase == "scoped":
                    # A scoped question's probe is the mesh config: mesh-wide policies live in
                    # its rootNamespace, the namespace to list beside the question's own.
                    root = _root_namespace(probe)
                    if root != ROOT_NAMESPACE:
                        more, chains = self._requests(api, None, self._crd_scopes(ctx, root),
                                                      self._pod_scopes(ctx, root))
                        # The probe again (same key), then the pods of the namespaces with the root's.
                        reqs = [r for r in reqs if r.resource != "pods"] + [r for r in more if r.resource == "pods"]
                late = [Payload(key="late", error="not asked: the run's deadline (--timeout) passed")]
                work: list[list[Request]] = [[r] for r in reqs if probe is None or r is not first] + chains
                groups = fan_out(lambda c: self._chain(c, server), work, workers=CONCURRENCY,
                                 deadline=ctx.deadline, name="kubernetes",
                                 late=lambda c, _started: [replace(late[0], key=c[0].key)],
                                 failed=lambda c, exc: [_unexpected(c[0], server, exc)])
                if probe is not None:  # payloads in plan order, whatever answered first
                    groups.insert(next(i for i, r in enumerate(reqs) if r is first), [probe])
                for group in groups:
                    for p in group:
                        raw.add(p)
            finally:
                api.close()
        return [raw]


def _unexpected(req: Request, server: str, exc: Exception) -> Payload:
    """A list whose fetch raised something unexpected: that list's failure, not the source's."""
    from meshobs.redact import redact_text

    return Payload(key=req.key, url=server.rstrip("/") + req.path, fetched_at=iso(utc_now()),
                   error=f"listing {req.resource} failed unexpectedly: {type(exc).__name__}: "
                         f"{redact_text(str(exc))[:300]}")


def _root_namespace(payload: Payload) -> str:
    """``rootNamespace`` of the mesh config in ``payload`` (Istio's default when the ConfigMap
    is absent, unreadable or does not set it)."""
    if payload.status != 200 or payload.error or not payload.body:
        return ROOT_NAMESPACE
    try:
        doc = json.loads(payload.body)
        root = kept_fields((doc.get("data") or {}).get("mesh")).get("rootNamespace")
    except (ValueError, AttributeError, TypeError):
        return ROOT_NAMESPACE
    return root if isinstance(root, str) and root else ROOT_NAMESPACE


def from_config(config: Config, prior: list[RawSource]) -> KubernetesCollector | None:
    """A collector for ``sources.kubernetes`` (None when absent or when it only lists manifests)."""
    if "kubernetes" not in config.sources:
        return None
    section = config.section("sources", "kubernetes")
    if section and set(section) == {"manifests"}:
        return None
    timeout = parse_duration(section["timeout"]) if section.get("timeout") else 10.0
    return KubernetesCollector(kubeconfig=section.get("kubeconfig"), context=section.get("context"),
                               namespaces=list(section.get("namespaces") or []), timeout_s=timeout,
                               mesh=config.mesh)


# -- normalising ----------------------------------------------------------------------------

def _base(key: str) -> str:
    return key.split("@", 1)[0]


def _read_payloads(payloads: list[Payload], fatal: list[str], partial: list[str],
                   parse: bool = True) -> list[tuple[Mapping[str, Any], str]]:
    """The objects of ``payloads`` (none unless ``parse``), their failures sorted into ``fatal``
    (the topology: pods, services) and ``partial`` (the rest)."""
    objects: list[tuple[Mapping[str, Any], str]] = []
    for payload in payloads:
        base = _base(payload.key)
        is_crd = base.startswith(OPTIONAL_KEYS)
        if is_crd and payload.status == 404 and not payload.error:
            continue  # the CRD is not installed (or this version of it is not served); no mesh config
        reason = payload.failure()
        if reason:
            # Pods and services are the topology; without them the source is not usable.
            (fatal if base in ("pods", "services") else partial).append(
                reason if reason.startswith(("cannot", "forbidden", "unauthorized"))
                else f"{payload.key}: {reason}")
            continue
        if not parse:
            continue
        doc = payload.json()
        if not isinstance(doc, Mapping):
            raise ValueError(f"{payload.key}: expected a Kubernetes list object, got {type(doc).__name__}")
        # The cluster-wide Namespace list vouches that a namespace missing from it does not exist.
        origin = ALL_NAMESPACES if payload.key == "namespaces" else KIND
        objects.extend((o, origin) for o in flatten_objects(doc))
    return objects


def _with_status(raw: RawSource, part: SnapshotPart, fatal: list[str], partial: list[str],
                 problems: list[str]) -> SnapshotPart:
    part.webhooks_listed = any(_base(p.key) == WEBHOOKS_KEY and p.ok for p in raw.payloads)
    if partial and not any(_base(p.key) in ("pods", "services") or p.ok or (p.status == 404 and not p.error)
                           for p in raw.payloads):
        # Stopped at its probe (the namespace list: unreachable, unauthorized): the pods and
        # services were never asked, so the topology is missing as surely as if they had failed.
        fatal, partial = partial, []
    if fatal:
        state, message = SourceState.ERROR, "; ".join(dict.fromkeys(fatal + partial))
    elif not part.pods and not part.services and not part.config:
        state, message = SourceState.NO_DATA, "; ".join(partial) or "the API returned no pods, services or mesh config"
    else:
        state, message = SourceState.OK, "; ".join(dict.fromkeys(partial))
    part.sources.append(SourceStatus(raw.name, state, message, raw.duration_s, raw.kind, problems=tuple(problems),
                                     config_namespaces=listed_config_namespaces(raw.payloads)))
    return part


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Lists -> pods, workloads, services and live mesh configuration, plus the source status."""
    fatal: list[str] = []
    partial: list[str] = []
    objects = _read_payloads(raw.payloads, fatal, partial)
    problems: list[str] = []
    return _with_status(raw, objects_to_part(objects, Layer.LIVE, problems), fatal, partial, problems)


# The lists a scoped question reads in its graph phase: what every other object is read against.
TOPOLOGY = frozenset({"pods", "services", "namespaces", "namespace", "deployments"})


def normalize_added(raw: RawSource, earlier: SnapshotPart, known: int, ctx: NormalizeContext) -> SnapshotPart | None:
    """What :func:`normalize` makes of ``raw``, given ``earlier``: what it made of the first
    ``known`` payloads (a scoped question's graph phase: Services, Deployments, Namespaces, no
    pods). The payloads added since (the scoped phase's pods and mesh configuration) are read
    alone: a configuration object is read without the others, and a pod needs only the
    Namespaces' labels, so the 5,000 Services of a big mesh are not read twice (0.45 s). The
    pods' workloads replace the Deployments' of the same name, as a whole normalisation would
    make them. None when the result could differ (the added payloads list other topology, a
    pod belongs to no Deployment the graph phase saw, its labels or mesh differ from the
    template's where a Service selector could tell, a pod is malformed, or the earlier part is
    not a plain normalisation): then normalize the whole source."""
    added = raw.payloads[known:]
    mine = [s for s in earlier.sources if s.name == raw.name]
    if (len(earlier.sources) != 1 or len(mine) != 1 or mine[0].state == SourceState.ERROR
            or any(_base(p.key) in TOPOLOGY - {"pods"} for p in added)
            or any(_base(p.key) == "pods" for p in raw.payloads[:known])):
        return None
    fatal: list[str] = []
    partial: list[str] = []
    _read_payloads(raw.payloads[:known], fatal, partial, parse=False)
    problems = list(mine[0].problems)
    objects = _read_payloads(added, fatal, partial)
    # Where each workload of the graph phase is: the pods' workloads replace theirs in place
    # (the neighbourhood's few hundred, not a pass over 7,415 per step).
    position = {w.ref: i for i, w in enumerate(earlier.workloads)}
    if len(position) != len(earlier.workloads):
        return None  # not a plain normalisation: two workloads of one name
    pods = _added_pods(earlier, [o for o, _ in objects if o.get("kind") == "Pod"], position)
    if pods is None:
        return None
    more = objects_to_part([o for o in objects if o[0].get("kind") != "Pod"], Layer.LIVE, problems)
    if more.pods or more.workloads or more.services:
        return None
    workloads = list(earlier.workloads)
    changed: set[WorkloadRef] = set()
    for ref, derived in workloads_from_pods(pods).items():  # each one is in position (_added_pods)
        template = workloads[position[ref]]
        workloads[position[ref]] = replace(derived, services=template.services)
        if derived.mesh is not template.mesh:
            changed.add(ref)
    services = earlier.services
    if changed:
        # A Service's mesh is its first workload's that is known: the pods may know it where the
        # template did not (a gateway's sidecar is injected, not in its Deployment).
        meshes = {w.ref: w.mesh for w in workloads}
        services = [replace(svc, mesh=next((meshes[w] for w in svc.workloads if meshes.get(w, Mesh.UNKNOWN)
                                            is not Mesh.UNKNOWN), Mesh.UNKNOWN))
                    if changed.intersection(svc.workloads) else svc for svc in earlier.services]
    part = SnapshotPart.merge([replace(earlier, sources=[], pods=[p for p, _ in pods], workloads=workloads,
                                       services=services), more])
    return _with_status(raw, part, fatal, partial, problems)


def _added_pods(earlier: SnapshotPart, objects: list[Mapping[str, Any]],
                position: Mapping[WorkloadRef, int]) -> list[tuple[Pod, Mesh]] | None:
    """The pods of ``objects`` read against ``earlier``'s Namespaces, or None when adding them
    to ``earlier`` is not what normalising everything at once would give (see normalize_added).
    ``position``: where each of ``earlier``'s workloads is in its list."""
    ns_labels = {r.name: dict(r.labels) for r in earlier.config if r.kind == "Namespace"}
    pods: list[tuple[Pod, Mesh]] = []
    for obj in objects:
        try:
            pods.append(pod_from_object(obj, ns_labels))
        except Exception:  # a malformed pod is named in problems by the whole normalisation
            return None
    first: dict[WorkloadRef, Mapping[str, Any]] = {}
    for pod, _ in pods:
        if pod.workload is not None:
            first.setdefault(pod.workload, pod.labels)
    wanted = {ref.namespace for ref in first}
    selector_keys: dict[str, set[str]] = {}
    for svc in earlier.services:
        if svc.ref.namespace in wanted:
            selector_keys.setdefault(svc.ref.namespace, set()).update(map(str, svc.selector))
    for ref, labels in first.items():
        at = position.get(ref)
        template = earlier.workloads[at] if at is not None else None
        # Services were matched against the template's labels; a whole normalisation matches
        # them against the first pod's. Same answer when the pod carries the template's labels
        # and no Service of the namespace selects on a label only the pod has.
        if (template is None
                or any(labels.get(k) != v for k, v in template.labels.items())
                or (set(labels) - set(template.labels)) & selector_keys.get(ref.namespace, set())):
            return None
    return pods


def listed_config_namespaces(payloads: list[Payload]) -> tuple[str, ...] | None:
    """The namespaces whose mesh configuration these payloads list (None: every namespace, a
    cluster-wide list). Cluster-scoped kinds (App Mesh's meshes) say nothing of namespaces."""
    listed: set[str] = set()
    for p in payloads:
        base, _at, ns = p.key.partition("@")
        parts = base.split("/")
        if parts[0] != "crd" or len(parts) != 4 or (parts[1], parts[3]) in CLUSTER_SCOPED_CRDS:
            continue
        if not ns:
            return None
        listed.add(ns)
    return tuple(sorted(listed))
