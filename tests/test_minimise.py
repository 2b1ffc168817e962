"""Bundles keep what the normalisers read: minimised payloads normalise to the same model.

Real payloads (the shared corpus and every demo mesh) are normalised twice, as received and as
the collectors now keep them; the model must be identical. If a normaliser starts reading a new
field, these fail until the projection keeps it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from meshobs.collectors import kubernetes
from meshobs.collectors.base import NormalizeContext
from meshobs.collectors.envoy import discover_targets, pods_from_prior
from meshobs.collectors.envoy.minimise import minimise
from meshobs.collectors.envoy.normalize import normalize_proxy
from meshobs.collectors.k8s_minimise import minimise_body, minimise_object
from meshobs.collectors.k8s_objects import flatten_objects, objects_to_part
from meshobs.demo.catalog import load_demo
from meshobs.drift.normalise import canonical
from meshobs.model import Layer
from meshobs.raw import Payload, RawSource, utc_now

DEMOS = ("ecommerce", "healthy", "cert-expiry", "mtls-mismatch", "weight-drift", "ecommerce-appmesh", "migration")
CTX = NormalizeContext(utc_now(), 300)


def _minimised(raw: RawSource) -> RawSource:
    return replace(raw, payloads=[minimise(replace(p, meta=dict(p.meta))) for p in raw.payloads])


@pytest.mark.parametrize("demo", DEMOS)
def test_envoy_payloads_of_the_demos(demo: str) -> None:
    for raw in (s for s in load_demo(demo).sources if s.kind == "envoy"):
        small = _minimised(raw)
        assert sum(len(p.body or "") for p in small.payloads) < sum(len(p.body or "") for p in raw.payloads)
        assert normalize_proxy(small, CTX) == normalize_proxy(raw, CTX), raw.name


def test_envoy_config_dumps_of_the_corpus(corpus: Path) -> None:
    for path in sorted((corpus / "envoy-config-dump").rglob("*.json")):
        raw = RawSource("envoy:default/x", "envoy", meta={"namespace": "default", "pod": "x"}, payloads=[
            Payload("ready", body="LIVE", status=200),
            Payload("config_dump", body=path.read_text(encoding="utf-8"), status=200)])
        assert normalize_proxy(_minimised(raw), CTX) == normalize_proxy(raw, CTX), path.name


def test_envoy_header_values_and_keys_are_not_kept() -> None:
    dump = {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {
            "node": {"id": "sidecar~1~p.ns~ns.svc", "metadata": {"WORKLOAD_NAME": "p", "API_TOKEN": "tok-1"}},
            "tracing": {"http": {"typed_config": {"access_token": "tok-2"}}}}},
        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
            {"route_config": {"name": "80", "virtual_hosts": [{"name": "vh", "domains": ["*"], "routes": [
                {"match": {"prefix": "/", "headers": [{"name": "authorization", "exact_match": "Basic tok-3"}]},
                 "route": {"cluster": "c"},
                 "request_headers_to_add": [{"header": {"key": "x-api-key", "value": "tok-4"}}]}]}]}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", "dynamic_active_secrets": [
            {"name": "hmac", "secret": {"name": "hmac", "generic_secret": {"secret": {"inline_string": "tok-5"}}}},
            {"name": "default", "secret": {"name": "default", "tls_certificate": {
                "certificate_chain": {"inline_bytes": "Q0VSVA=="}, "private_key": {"inline_string": "tok-6"}}}}]},
    ]}
    p = minimise(Payload("config_dump", body=json.dumps(dump), status=200))
    for n in range(1, 7):
        assert f"tok-{n}" not in (p.body or ""), n
    assert "Q0VSVA==" in (p.body or "") and "WORKLOAD_NAME" in (p.body or "")


@pytest.mark.parametrize("demo", DEMOS)
def test_kubernetes_payloads_of_the_demos(demo: str) -> None:
    for raw in (s for s in load_demo(demo).sources if s.kind == "kubernetes"):
        small = replace(raw, payloads=[replace(p, body=minimise_body(p.body)) if p.body else p
                                       for p in raw.payloads])
        assert kubernetes.normalize(small, CTX) == kubernetes.normalize(raw, CTX)
        assert discover_targets(pods_from_prior([small])) == discover_targets(pods_from_prior([raw]))


def test_kubernetes_payloads_of_a_mesh_with_its_control_plane() -> None:
    """istiod's pods and its sidecar injector webhook (never the caBundle) replay the same."""
    from tests.support.scenarios import bundle

    (raw,) = [s for s in bundle("istiod-not-ready").sources if s.kind == "kubernetes"]
    hooks = raw.get("mutatingwebhookconfigurations")
    assert hooks is not None and hooks.body
    planted = json.loads(hooks.body)
    planted["items"][0]["webhooks"][0]["clientConfig"]["caBundle"] = "LS0tLS1CRUdJTi1zZWNyZXQ="
    hooks.body = json.dumps(planted)
    # (The mesh ConfigMap is a single object the minimiser does not keep yet: left as it is.)
    small = replace(raw, payloads=[replace(p, body=minimise_body(p.body)) if p.body and not p.key.startswith(
        "configmap/") else p for p in raw.payloads])
    assert kubernetes.normalize(small, CTX) == kubernetes.normalize(raw, CTX)
    assert kubernetes.normalize(small, CTX).injection_webhooks
    assert "caBundle" not in (small.get("mutatingwebhookconfigurations").body or "")  # type: ignore[union-attr]


def _objects(path: Path) -> list[dict[str, object]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return [dict(o) for d in docs for o in flatten_objects(d) if o.get("kind") and o.get("apiVersion")]


def test_manifests_of_the_corpus(corpus: Path) -> None:
    valid_mesh = Path(__file__).parent / "data" / "valid-mesh"  # Gateways with their TLS Secrets
    files = sorted((corpus / "istio-config").rglob("*.yaml")) + sorted(
        p for p in (corpus / "appmesh-config").rglob("*.yaml")) + sorted(valid_mesh.rglob("*.yaml"))
    assert len(files) > 10 and any("Secret" in p.read_text() for p in files)
    for path in files:
        objects = _objects(path)
        kept = [k for k in (minimise_object(o) for o in objects) if k is not None]
        before = objects_to_part([(o, str(path)) for o in objects], Layer.INTENDED, [])
        after = objects_to_part([(o, str(path)) for o in kept], Layer.INTENDED, [])
        assert after == before, path.name
        assert [canonical(r) for r in after.config] == [canonical(r) for r in before.config]


def test_what_kubernetes_objects_lose() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "namespace": "n", "managedFields": [{"manager": "kubectl"}],
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"password\": \"x\"}",
                        "sidecar.istio.io/inject": "true", "team-notes": "call bob"}},
        "spec": {"containers": [{"name": "app", "image": "i", "env": [
            {"name": "DB_URL", "value": "postgres://u:pw@db"}, {"name": "MODE", "value": "prod"},
            {"name": "ENVOY_ADMIN_ACCESS_PORT", "value": "9901"}], "args": ["--token=abc"]}]}}
    kept = minimise_object(pod)
    assert kept is not None
    text = json.dumps(kept)
    for gone in ("managedFields", "last-applied", "postgres", "prod", "--token", "team-notes"):
        assert gone not in text, gone
    assert kept["spec"]["containers"][0]["env"] == [{"name": "ENVOY_ADMIN_ACCESS_PORT", "value": "9901"}]
    assert kept["metadata"]["annotations"] == {"sidecar.istio.io/inject": "true"}
    secret = minimise_object({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
                              "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "t0k3n-value"}})
    assert secret is not None and "aHVudGVyMg==" not in json.dumps(secret) and "t0k3n" not in json.dumps(secret)
    assert secret["meshobs.io/public-facts"]["keys"] == ["password", "token"]  # names only, for the analyzers
    assert minimise_object({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}) is None
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "v"},
          "spec": {"http": [{"headers": {"request": {"set": {"Authorization": "Bearer abc", "x-team": "a"}}}}]}}
    spec = minimise_object(vs)["spec"]  # type: ignore[index]
    assert spec["http"][0]["headers"]["request"]["set"] == {"Authorization": "<redacted>", "x-team": "a"}


def test_dates_survive_and_field_values_do_not() -> None:
    """What "what changed" reads stays (when, who, how; a pod's start and last termination);
    the field sets managedFields carry (they can hold values) and a termination's message go."""
    dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {
        "name": "surge", "namespace": "fares", "generation": 2, "creationTimestamp": "2026-10-01T08:00:00Z",
        "managedFields": [
            {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-10-01T08:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:host": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-20T11:39:20Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {"f:secret-note": {}}}}}]},
        "spec": {"host": "surge"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
           "spec": {"containers": [{"name": "app", "image": "i"}]},
           "status": {"phase": "Running", "startTime": "2026-11-20T10:00:00Z", "containerStatuses": [
               {"name": "app", "ready": True, "restartCount": 1, "lastState": {"terminated": {
                   "finishedAt": "2026-11-20T11:00:00Z", "reason": "OOMKilled", "exitCode": 137,
                   "message": "password=hunter2 in the crash log"}}}]}}
    kept = [minimise_object(o) for o in (dr, pod)]
    text = json.dumps(kept)
    for gone in ("fieldsV1", "f:spec", "secret-note", "hunter2"):
        assert gone not in text, gone
    assert kept[0]["metadata"]["managedFields"][1] == {  # type: ignore[index]
        "manager": "kubectl-edit", "operation": "Update", "time": "2026-11-20T11:39:20Z"}
    before = objects_to_part([(o, "kubernetes") for o in (dr, pod)], Layer.LIVE, [])
    after = objects_to_part([(o, "kubernetes") for o in kept if o is not None], Layer.LIVE, [])
    assert after == before
    (resource,) = after.config
    assert resource.dates is not None and resource.dates.generation == 2
    assert [w.manager for w in resource.dates.writes] == ["kubectl-client-side-apply", "kubectl-edit"]
    assert resource.dates.changed is not None and resource.dates.changed.isoformat() == "2026-11-20T11:39:20+00:00"
    (p,) = after.pods
    (restarts,) = p.restart_history
    assert (p.started, restarts.reason, restarts.exit_code) == (before.pods[0].started, "OOMKilled", 137)
    assert restarts.last_at is not None and restarts.last_at.isoformat() == "2026-11-20T11:00:00+00:00"
