"""Istio CRD schema validation: real resources pass; each kind of mistake is reported at its path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshobs.istio_schema import SchemaSet, load_crds, supports, validate, vendored
from meshobs.istio_schema.semantic import duration_seconds

VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
    "metadata": {"name": "orders", "namespace": "billing"},
    "spec": {"hosts": ["orders"], "http": [{
        "match": [{"uri": {"prefix": "/v2"}, "method": {"exact": "POST"}}],
        "route": [{"destination": {"host": "orders", "subset": "blue", "port": {"number": 9090}}, "weight": 75},
                  {"destination": {"host": "orders", "subset": "green"}, "weight": 25}],
        "timeout": "2.5s", "retries": {"attempts": 4, "perTryTimeout": "600ms", "retryOn": "5xx,reset,429"}}]},
}
DR: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
    "metadata": {"name": "orders", "namespace": "billing"},
    "spec": {"host": "orders", "trafficPolicy": {
        "tls": {"mode": "ISTIO_MUTUAL"},
        "connectionPool": {"tcp": {"maxConnections": 50, "connectTimeout": "250ms"},
                           "http": {"http2MaxRequests": 200}},
        "outlierDetection": {"consecutive5xxErrors": 7, "interval": "30s", "baseEjectionTime": "1m",
                             "maxEjectionPercent": 40}},
        "subsets": [{"name": "blue", "labels": {"track": "blue"}}]},
}


def _with(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return out


def _rules(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(i.path, i.rule, i.severity) for i in validate(doc)}


def test_valid_resources_have_no_issue() -> None:
    assert validate(VS) == [] and validate(DR) == []


def test_every_istio_resource_in_the_corpus_is_valid(corpus: Path) -> None:
    checked = 0
    for path in sorted((corpus / "istio-config").glob("*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or not str(doc.get("apiVersion", "")).split("/")[0].endswith("istio.io"):
                continue
            issues = [i for i in validate(doc) if i.severity == "error"]
            assert issues == [], (path.name, doc["metadata"]["name"], issues)
            checked += 1
    assert checked >= 30


@pytest.mark.parametrize(("doc", "expected"), [
    (_with(VS, "spec.http.0.retryPolicy", {"attempts": 1}), ("spec.http[0].retryPolicy", "unknown-field", "error")),
    (_with(VS, "metadata.lables", {"a": "b"}), ("metadata.lables", "unknown-field", "error")),
    (_with(VS, "spec.http.0.route.0.destination.port.number", "9090"),
     ("spec.http[0].route[0].destination.port.number", "type", "error")),
    (_with(VS, "spec.hosts", "orders"), ("spec.hosts", "type", "error")),
    (_with(DR, "spec.trafficPolicy.tls.mode", "STRICT"), ("spec.trafficPolicy.tls.mode", "enum", "error")),
    (_with(DR, "spec.trafficPolicy.loadBalancer", {"simple": "FASTEST"}),
     ("spec.trafficPolicy.loadBalancer.simple", "enum", "error")),
    (_with(VS, "spec.http.0.match.0.uri", {"prefix": "/a", "regex": "/b.*"}),
     ("spec.http[0].match[0].uri", "one-of", "error")),
    (_with(VS, "spec.http.0.timeout", "2.5 seconds"), ("spec.http[0].timeout", "duration", "error")),
    (_with(VS, "spec.http.0.timeout", "0s"), ("spec.http[0].timeout", "duration", "error")),
    (_with(VS, "spec.http.0.retries.perTryTimeout", "100us"),
     ("spec.http[0].retries.perTryTimeout", "duration", "error")),
    (_with(DR, "spec.trafficPolicy.outlierDetection.baseEjectionTime", "30"),
     ("spec.trafficPolicy.outlierDetection.baseEjectionTime", "duration", "error")),
    (_with(VS, "spec.http.0.route.1.weight", 35), ("spec.http[0].route", "weights", "warning")),
    (_with(_with(VS, "spec.http.0.route.1.weight", 0), "spec.http.0.route.0.weight", 0),
     ("spec.http[0].route", "weights", "error")),
    (_with(_with(VS, "spec.http.0.route.1.weight", -25), "spec.http.0.route.0.weight", 125),
     ("spec.http[0].route[1].weight", "range", "error")),
    (_with(VS, "spec.http.0.retries.retryOn", "5xx,server-error"),
     ("spec.http[0].retries.retryOn", "retry-on", "error")),
    (_with(VS, "spec.http.0.retries.attempts", -1), ("spec.http[0].retries.attempts", "range", "error")),
    (_with(DR, "spec.trafficPolicy.outlierDetection.maxEjectionPercent", 140),
     ("spec.trafficPolicy.outlierDetection.maxEjectionPercent", "range", "error")),
])
def test_each_mistake_is_reported_at_its_path(doc: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert expected in _rules(doc)
    # ... and nothing else is wrong with the resource.
    assert len(_rules(doc)) == 1, validate(doc)


def test_missing_required_field_and_suggestion() -> None:
    doc = _with(DR, "metadata.ownerReferences", [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner"}])
    issues = validate(doc)
    assert [(i.path, i.rule) for i in issues] == [("metadata.ownerReferences[0].uid", "required")]
    typo = validate(_with(VS, "spec.http.0.retries", {"atempts": 2}))
    assert [(i.path, i.rule) for i in typo] == [("spec.http[0].retries.atempts", "unknown-field")]
    assert "attempts" in typo[0].message


def test_versions_and_kinds() -> None:
    # networking v1 is validated with the v1beta1 schema, and says its own apiVersion.
    assert supports("networking.istio.io/v1", "VirtualService")
    assert supports("security.istio.io/v1", "PeerAuthentication")
    assert supports("telemetry.istio.io/v1", "Telemetry")
    assert supports("networking.istio.io/v1alpha3", "EnvoyFilter")
    assert not supports("networking.istio.io/v1", "EnvoyFilter")  # Istio serves EnvoyFilter as v1alpha3 only
    for kind in ("VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry"):
        assert supports("networking.istio.io/v1beta1", kind), kind
    for kind in ("PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"):
        assert supports("security.istio.io/v1beta1", kind), kind
    (unknown,) = validate({"apiVersion": "networking.istio.io/v2", "kind": "VirtualService", "metadata": {}})
    assert (unknown.rule, unknown.severity) == ("unsupported", "warning")
    assert [i.rule for i in validate(["not", "an", "object"])] == ["not-an-object"]


def test_issues_sort_by_path_with_numeric_indexes() -> None:
    doc = copy.deepcopy(VS)
    doc["spec"]["http"] = [copy.deepcopy(VS["spec"]["http"][0]) for _ in range(11)]
    doc["spec"]["http"][10]["timeout"] = "soon"
    doc["spec"]["http"][9]["timeout"] = "later"
    assert [i.path for i in validate(doc)] == ["spec.http[9].timeout", "spec.http[10].timeout"]


def test_schemas_from_a_clusters_crds() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "spec": {"group": "networking.istio.io", "names": {"kind": "VirtualService"}, "versions": [
               {"name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                   "spec": {"type": "object", "properties": {
                       "hosts": {"type": "array", "items": {"type": "string"}},
                       "http": {"type": "array", "items": {
                           "type": "object", "x-kubernetes-preserve-unknown-fields": True,
                           "properties": {"name": {"type": "string"}}}},
                       "exportTo": {"type": "array", "nullable": True, "items": {"type": "string"}}}},
                   "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
    schemas = load_crds([{"kind": "List", "items": [crd]}], "test CRDs")
    assert isinstance(schemas, SchemaSet) and schemas.kinds() == [("networking.istio.io/v1", "VirtualService")]
    ok = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "x"},
          "spec": {"hosts": ["x"], "exportTo": None, "http": [{"name": "a", "anything": 1}]}}
    assert validate(ok, schemas) == []
    bad = _with(ok, "spec.gateways", ["mesh"])
    assert [(i.path, i.rule) for i in validate(bad, schemas)] == [("spec.gateways", "unknown-field")]
    with pytest.raises(ValueError, match="no CustomResourceDefinition"):
        load_crds([{"kind": "ConfigMap"}])


def test_vendored_set_covers_the_issue_kinds() -> None:
    kinds = {k for _v, k in vendored().kinds()}
    assert {"VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry",
            "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication", "Telemetry",
            "EnvoyFilter"} <= kinds


@pytest.mark.parametrize(("text", "seconds"), [("1.5s", 1.5), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0),
                                               ("10", None), ("-1s", None), ("", None), ("1.5 s", None)])
def test_durations(text: str, seconds: float | None) -> None:
    assert duration_seconds(text) == seconds
