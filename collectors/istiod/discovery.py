"""Which istiod replicas to ask: the ones listed in the config, or istiod's pods in Kubernetes.

Kubernetes discovery lists the pods of istiod's namespace that carry its label (``app=istiod``
on every revision) in one request, and reaches each pod's ports through the port-forward API
the Envoy collector uses. The list is recorded as the ``pods`` payload, so a bundle shows which
replicas there were and replays their revision, version and readiness.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from meshobs.raw import Payload, iso, utc_now

from ..envoy.discovery import Target
from .fetch import READY_PATH, Replica


def static_replicas(entries: list[dict[str, Any]]) -> list[Replica]:
    """``sources.istiod.targets``: ``url`` serves /debug/syncz, ``ready_url`` (default
    ``<url>/ready``) answers readiness."""
    out = []
    for e in entries:
        url = str(e["url"]).rstrip("/")
        pod = str(e.get("pod") or urlsplit(url).netloc or url)
        ns = str(e.get("namespace") or "istio-system")
        ready_url = str(e.get("ready_url") or "").rstrip("/")
        out.append(Replica(pod=pod, namespace=ns, debug=Target(ns, pod, url),
                           ready=Target(ns, pod, ready_url or url), ready_path="" if ready_url else READY_PATH))
    return out


def running_istiod_pods(doc: Any) -> list[dict[str, Any]]:
    """The running, not terminating pods of a PodList."""
    items = doc.get("items") if isinstance(doc, dict) else None
    out = []
    for pod in items if isinstance(items, list) else []:
        md = pod.get("metadata") if isinstance(pod, dict) else None
        status = pod.get("status") if isinstance(pod, dict) else None
        if not isinstance(md, dict) or not isinstance(status, dict):
            continue
        if isinstance(md.get("name"), str) and md["name"] and status.get("phase") == "Running" \
                and not md.get("deletionTimestamp"):
            out.append(pod)
    return sorted(out, key=lambda p: str(p["metadata"]["name"]))


def replicas_of(pods: list[dict[str, Any]], ready_port: int, debug_port: int) -> list[Replica]:
    """A Replica per pod, reached by port-forward to its readiness and debug ports."""
    out = []
    for pod in pods:
        md = pod["metadata"]
        ns, name = str(md.get("namespace") or ""), str(md["name"])

        def target(port: int, ns: str = ns, name: str = name) -> Target:
            return Target(ns, name, f"portforward://{ns}/{name}:{port}", port=port)

        out.append(Replica(pod=name, namespace=ns, debug=target(debug_port), ready=target(ready_port)))
    return out


class KubernetesDiscovery:
    """Lists istiod's pods through the Kubernetes API (one request) when asked."""

    def __init__(self, configuration: Any, namespace: str, selector: str, ready_port: int,
                 debug_port: int) -> None:
        self.configuration, self.namespace, self.selector = configuration, namespace, selector
        self.ready_port, self.debug_port = ready_port, debug_port

    def __call__(self, timeout_s: float) -> tuple[list[Replica], Payload]:
        from ..k8s_import import lazy_kubernetes

        lazy_kubernetes()
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        from ..kubernetes import _connection_reason, describe_api_error

        server = str(self.configuration.host).rstrip("/")
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        payload = Payload(key="pods", url=server + path, params={"labelSelector": self.selector},
                          fetched_at=iso(utc_now()))
        start = time.perf_counter()
        api = client.ApiClient(self.configuration)
        try:
            resp = client.CoreV1Api(api).list_namespaced_pod(
                self.namespace, label_selector=self.selector, _preload_content=False, _request_timeout=timeout_s)
            payload.body, payload.status = resp.data.decode("utf-8"), int(resp.status)
        except ApiException as exc:
            payload.status = int(exc.status or 0)
            payload.body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
            payload.error = describe_api_error(payload.status, payload.body, server, "pods", self.namespace)
        except Exception as exc:  # urllib3 / socket errors: the server was not reached
            payload.error = (f"cannot reach the Kubernetes API at {server} to find istiod's pods: "
                             f"{_connection_reason(exc)}; check sources.kubernetes.kubeconfig/context")
        finally:
            api.close()
        payload.elapsed_s = time.perf_counter() - start
        if not payload.ok:
            return [], payload
        try:
            pods = running_istiod_pods(json.loads(payload.body or "{}"))
        except json.JSONDecodeError:
            payload.error = f"the Kubernetes API at {server} answered the pod list with a body that is not JSON"
            return [], payload
        # Kept: what normalize reads (a pod's env and annotations may hold anything).
        payload.body = json.dumps({"kind": "PodList", "apiVersion": "v1", "items": [minimal_pod(p) for p in pods]})
        return replicas_of(pods, self.ready_port, self.debug_port), payload


def minimal_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """What a bundle keeps of an istiod pod: name, namespace, its istio labels, the discovery
    container's image (the version), phase and Ready condition."""
    md, status = pod.get("metadata") or {}, pod.get("status") or {}
    labels = {k: v for k, v in (md.get("labels") or {}).items() if k in ("app", "istio", "istio.io/rev")}
    return {"metadata": {"name": md.get("name"), "namespace": md.get("namespace"), "labels": labels},
            "spec": {"containers": [{"name": c.get("name"), "image": c.get("image")}
                                    for c in (pod.get("spec") or {}).get("containers") or []]},
            "status": {"phase": status.get("phase"),
                       "conditions": [{"type": c.get("type"), "status": c.get("status")}
                                      for c in status.get("conditions") or [] if c.get("type") == "Ready"]}}
