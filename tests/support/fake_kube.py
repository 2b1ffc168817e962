"""A fake Kubernetes API server on loopback for tests of the Kubernetes collector.

It serves list JSON per path (as a real API server would), answers 404 with a Status for any
other path (an uninstalled CRD), 401 when the bearer token is wrong and 403 for paths marked
forbidden. The real ``kubernetes`` client talks to it through a kubeconfig written by
:meth:`FakeKube.write_kubeconfig`.

    with FakeKube(token="s3cr3t") as kube:
        kube.serve("/api/v1/pods", pod_list)
        path = kube.write_kubeconfig(tmp_path)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from meshobs.demo.httpserver import LoopbackHTTPServer, Request, Response
from meshobs.demo.kube_paging import ListPager, PagingError


def _json(code: int, body: Any) -> Response:
    return Response(code, json.dumps(body))


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class FakeKube:
    def __init__(self, token: str = "fake-token-123") -> None:
        self.token = token
        self.paths: dict[str, Any] = {}
        self.forbidden: set[str] = set()
        self.pager = ListPager()
        self._server = LoopbackHTTPServer(self._respond)

    def _respond(self, request: Request) -> Response:
        path = request.path_only
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json(401, status(401, "Unauthorized", "Unauthorized"))
        if path in self.forbidden:
            resource = path.rstrip("/").rsplit("/", 1)[-1]
            return _json(403, status(403, "Forbidden", f'{resource} is forbidden: User '
                                     f'"system:serviceaccount:meshobs:meshobs" cannot list '
                                     f'resource "{resource}" at the cluster scope'))
        if path in self.paths:
            return self._page(self.paths[path], request.path)
        return _json(404, status(404, "NotFound", "the server could not find the requested resource"))

    def _page(self, body: Any, full_path: str) -> Response:
        """A list paged as the API server pages it (the demo API's pager: ``limit`` items, an
        opaque ``continue`` token in the list's metadata while more remain)."""
        parts = urlsplit(full_path)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return _json(200, body)
        try:
            return _json(200, self.pager.page(body, parts.path, parse_qs(parts.query), selected=False))
        except PagingError as exc:
            return _json(exc.status, exc.body)

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        return [(r.path, r.headers) for r in self._server.requests]

    @property
    def url(self) -> str:
        return self._server.url

    def serve(self, path: str, body: Any) -> None:
        self.paths[path] = body

    def forbid(self, path: str) -> None:
        self.forbidden.add(path)

    def paths_requested(self) -> list[str]:
        return [p.split("?", 1)[0] for p, _ in self.requests]

    def write_kubeconfig(self, directory: Path, *, server: str | None = None, token: str | None = None,
                         context: str = "fake") -> Path:
        """A kubeconfig with one cluster, one token user and one context (plus a decoy)."""
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "decoy",
            "clusters": [{"name": "fake", "cluster": {"server": server or self.url}},
                         {"name": "decoy", "cluster": {"server": "http://127.0.0.1:1"}}],
            "users": [{"name": "fake", "user": {"token": token or self.token}},
                      {"name": "decoy", "user": {"token": "decoy-token"}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake"}},
                         {"name": "decoy", "context": {"cluster": "decoy", "user": "decoy"}}],
        }
        path = directory / "kubeconfig"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return path

    def __enter__(self) -> FakeKube:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


# -- recorded-shape objects -------------------------------------------------------------------

def _managed() -> list[dict[str, Any]]:
    return [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
             "time": "2026-11-20T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]


def pod(ns: str, name: str, *, owner: tuple[str, str] | None, labels: dict[str, str],
        sidecar: str | None = "istio-proxy", ready: bool = True, sidecar_ready: bool = True,
        restarts: int = 0, sidecar_restarts: int = 0, ip: str = "10.244.0.10",
        sa: str = "default", native: bool = False, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Pod as ``GET /api/v1/pods`` lists it (items carry no kind/apiVersion)."""
    containers = [{"name": "app", "image": "docker.io/istio/examples:1.0", "ports": [{"containerPort": 9080}]}]
    inits: list[dict[str, Any]] = [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.24.0"}]
    statuses = [{"name": "app", "ready": ready, "restartCount": restarts, "image": "x", "imageID": "",
                 "started": True, "state": {"running": {"startedAt": "2026-11-20T10:00:00Z"}}}]
    init_statuses: list[dict[str, Any]] = []
    if sidecar:
        image = "840364872350.dkr.ecr.us-west-2.amazonaws.com/aws-appmesh-envoy:v1.29" \
            if sidecar == "envoy" else "docker.io/istio/proxyv2:1.24.0"
        sc: dict[str, Any] = {"name": sidecar, "image": image, "ports": [{"containerPort": 15090}]}
        st = {"name": sidecar, "ready": sidecar_ready, "restartCount": sidecar_restarts, "image": image,
              "imageID": "", "started": True, "state": {"running": {"startedAt": "2026-11-20T10:00:00Z"}}}
        if native:
            inits.append({**sc, "restartPolicy": "Always"})
            init_statuses.append(st)
        else:
            containers.append(sc)
            statuses.append(st)
    meta: dict[str, Any] = {
        "name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": "12345",
        "creationTimestamp": "2026-11-20T10:00:00Z", "labels": labels,
        "annotations": annotations or {"sidecar.istio.io/status": '{"containers":["istio-proxy"]}'},
        "managedFields": _managed(),
    }
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": "owner-uid", "controller": True, "blockOwnerDeletion": True}]
    return {
        "metadata": meta,
        "spec": {"containers": containers, "initContainers": inits, "serviceAccountName": sa,
                 "serviceAccount": sa, "nodeName": "node-1"},
        "status": {"phase": "Running", "podIP": ip, "hostIP": "172.18.0.2",
                   "conditions": [{"type": "Ready", "status": "True" if ready and sidecar_ready else "False"},
                                  {"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": statuses, "initContainerStatuses": init_statuses},
    }


def service(ns: str, name: str, selector: dict[str, str], ports: list[int]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-svc-{name}", "resourceVersion": "7",
                         "labels": {"app": name}, "managedFields": _managed()},
            "spec": {"clusterIP": "10.96.0.20", "selector": selector, "type": "ClusterIP",
                     "ports": [{"name": f"http-{p}", "port": p, "protocol": "TCP", "targetPort": p} for p in ports]},
            "status": {"loadBalancer": {}}}


def k8s_list(kind: str, items: list[dict[str, Any]], api_version: str = "v1") -> dict[str, Any]:
    return {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "99999"}, "items": items}


def custom_list(docs: list[dict[str, Any]], kind: str, api_version: str) -> dict[str, Any]:
    """A custom-object list as the API serves it: items keep kind/apiVersion and gain server metadata."""
    items = []
    for d in docs:
        meta = {**d.get("metadata", {}), "uid": "uid-" + d["metadata"]["name"], "resourceVersion": "42",
                "generation": 3, "creationTimestamp": "2026-11-20T10:00:00Z", "managedFields": _managed()}
        meta.setdefault("namespace", "default")
        items.append({**d, "apiVersion": api_version, "metadata": meta, "status": {"observedGeneration": 3}})
    return {"apiVersion": api_version, "kind": kind + "List", "items": items,
            "metadata": {"continue": "", "resourceVersion": "99999"}}


def token_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig at ``path`` with one cluster at ``server``, one token user, one context
    (for servers that are not a FakeKube: fault servers, a closed port)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": server}}],
        "users": [{"name": "t", "user": {"token": "t"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}]}))
    return path
