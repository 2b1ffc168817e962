"""The meshobs.yaml model: one pydantic model is the schema, the validator, the defaults and the
documentation (``meshobs config schema`` prints it as a JSON Schema for editors).

How to add a key (one line, in the section it belongs to)::

    class Jaeger(_Http):
        ...
        service_limit: int = Field(100, ge=1, description="Services searched per run.")

- Pick the type from :mod:`meshobs.config_types` (``Text``, ``Url``, ``FilePath``, ``StrList``,
  ``PathList``, ``Duration``, ``PositiveDuration``, ``Time``) or a plain ``int``/``float``/``bool``
  /``Literal[...]``; put ranges on the ``Field`` (``ge=``, ``gt=``, ``le=``).
- The default is what the code does when the key is absent; say it in the description. Use
  ``None`` only when "absent" means "decided at run time" and say what decides.
- A key naming a file uses ``FilePath``/``PathList``: relative paths resolve against the config
  file's folder, with no list to update.
- A new threshold: add it to :class:`Thresholds` with the same name as the ``Settings`` field in
  ``meshobs/checks/base.py`` (a duration ``x`` fills ``Settings.x_s`` in seconds).
- Add it, commented, to ``config/meshobs.example.yaml``; tests validate every example.

``Config.raw`` / ``Config.section(...)`` still hand collectors plain dicts: the validated input
with only the keys the user wrote (strings expanded, paths resolved, durations as written), so a
collector's ``section.get("timeout")`` sees what it always saw. Collectors still apply their own
defaults for absent keys; ``tests/test_config_model.py`` checks those equal the defaults here.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .config_types import (
    Duration,
    FilePath,
    PathList,
    PositiveDuration,
    Seconds,
    Section,
    StrList,
    Text,
    Time,
    Url,
)


def _d(text: str) -> Seconds:
    """A duration default, written as a user would."""
    from .durations import parse_duration

    return Seconds(parse_duration(text), text)


# --- sources ---------------------------------------------------------------------------------

class _Tls(Section):
    """How a source's https:// servers are verified: one rule for every source
    (``meshobs.collectors.http.tls_verify``)."""

    verify_tls: bool = Field(True, description="Verify https:// servers' TLS certificates (false: no "
                                               "verification at all, whatever ca_file says).")
    ca_file: FilePath | None = Field(None, description="CA bundle to verify https:// servers with "
                                                        "(default: the system's; unused with "
                                                        "verify_tls: false).")


class _Http(_Tls):
    headers: dict[str, Text] = Field(default_factory=dict,
                                     description="HTTP headers sent with every request, e.g. "
                                                 "Authorization: \"Bearer ${TOKEN}\".")
    timeout: PositiveDuration = Field(_d("10s"), description="Per-request timeout.")

    @model_validator(mode="after")
    def _one_auth(self) -> _Http:
        """One way to authenticate per source: credentials in the URL and an Authorization
        header would have one silently win over the other."""
        from urllib.parse import urlsplit

        url = getattr(self, "url", None)
        parts = urlsplit(str(url)) if url else None
        if parts is not None and (parts.username or parts.password) and \
                "authorization" in {str(k).lower() for k in self.headers}:
            raise ValueError("credentials in the url (user:password@) and a headers.Authorization: "
                             "give one of them")
        return self


class Prometheus(_Http):
    """Istio's metrics: request rate, errors and latency per edge."""

    url: Url = Field("http://localhost:9090", description="Base URL of the Prometheus HTTP API.")
    timeout: PositiveDuration = Field(_d("10s"), description="Per query: a slow query costs only the "
                                                            "checks that need its data.")
    concurrency: int = Field(4, ge=1, description="Queries in flight at once (independent queries run "
                                                  "together).")
    recording_rules: Literal["auto", "off"] = Field(
        "auto", description="auto: read Istio's workload:* and meshobs's edge:* recorded series when the "
                            "server has them (config/prometheus-recording-rules.yaml); off: always the "
                            "raw metrics.")
    history: PositiveDuration | None = Field(None, description="How far back \"what changed\" reads the "
                                             "request, error and latency history (default: 1h, or 12 "
                                             "rate windows when the window is longer than 5m).")


class Jaeger(_Http):
    """Istio's traces, from the Jaeger query service (HTTP API, not the gRPC port 16685)."""

    url: Url = Field("http://localhost:16686", description="Base URL of the Jaeger query service "
                                                           "(its HTTP port, 16686 by default).")
    api: Literal["auto", "v3", "v1"] = Field("auto", description="auto: /api/v3 first, /api/v1 if absent.")
    limit: int = Field(20, ge=1, description="Traces asked for per service search (Jaeger's search depth); "
                                            "a search that returns this many is reported as truncated.")
    lookback: PositiveDuration | None = Field(None, description="How far back the searches reach "
                                                                "(default: the run's window, --window).")
    max_services: int = Field(50, ge=1, description="Services searched per run at most. A diagnosis searches "
                                                    "its service first, then its neighbourhood; a mesh-wide run "
                                                    "the busiest services first (Jaeger's dependency call counts). "
                                                    "What is left out is said in the source status.")
    concurrency: int = Field(4, ge=1, description="Searches sent at once.")


class EnvoyTarget(Section):
    """One Envoy admin endpoint (static discovery)."""

    url: Url = Field(description="Admin URL, e.g. http://127.0.0.1:15000 after kubectl port-forward.")
    namespace: Text = Field("", description="Namespace of the pod.")
    pod: Text = Field("", description="Pod name (default: the URL's host:port).")
    workload: Text = Field("", description="Workload the pod belongs to (default: from the pod).")


class Envoy(_Tls):
    """The sidecars' admin API: readiness, xDS state, clusters, routes, certificates."""

    discovery: Literal["kubernetes", "static"] | None = Field(
        None, description="kubernetes: find sidecars and reach their admin port through the port-forward "
                          "API (needs pods/portforward); static: the targets listed. Default: static when "
                          "targets are given, else kubernetes.")
    targets: list[EnvoyTarget] = Field(default_factory=list, description="Admin endpoints (static discovery).")
    port: int | None = Field(None, ge=1, le=65535, description="Admin port (default: from the pod, else 15000).")
    timeout: PositiveDuration = Field(_d("5s"), description="Per request, in total (a proxy gets at most three "
                                                             "times this for all its requests).")
    concurrency: int = Field(32, ge=1, description="Proxies queried at once.")
    namespaces: StrList = Field(default_factory=list, description="Only these namespaces (empty: all).")


class IstiodTarget(Section):
    """One istiod replica's HTTP endpoints (static discovery)."""

    url: Url = Field(description="Base URL serving /debug/syncz: the replica's monitoring port 15014 (or 8080), "
                                 "e.g. http://127.0.0.1:15014 after kubectl port-forward.")
    ready_url: Url | None = Field(None, description="Its readiness endpoint (default: <url>/ready; istiod "
                                                     "answers /ready on port 8080).")
    pod: Text = Field("", description="The replica's pod name (default: the URL's host:port).")
    namespace: Text = Field("istio-system", description="Namespace of the pod.")


class Istiod(_Http):
    """istiod: readiness, and what it sent each proxy and what the proxy acknowledged (/debug/syncz)."""

    discovery: Literal["kubernetes", "static"] | None = Field(
        None, description="kubernetes: find istiod's pods and reach them through the port-forward API "
                          "(needs pods/portforward in its namespace); static: the targets listed. Default: "
                          "static when targets are given, else kubernetes.")
    targets: list[IstiodTarget] = Field(default_factory=list, description="Replicas (static discovery).")
    namespace: Text = Field("istio-system", description="Where istiod runs (kubernetes discovery).")
    selector: Text = Field("app=istiod", description="Label selector of istiod's pods, every revision "
                                                     "(kubernetes discovery).")
    ready_port: int = Field(8080, ge=1, le=65535, description="Port of /ready (kubernetes discovery).")
    debug_port: int = Field(15014, ge=1, le=65535, description="Port of /debug/syncz (kubernetes discovery).")
    timeout: PositiveDuration = Field(_d("5s"), description="Per-request timeout.")


class Kubernetes(Section):
    """The Kubernetes API (pods, services, Istio and App Mesh resources) or manifests on disk."""

    kubeconfig: FilePath | None = Field(None, description="Default: $KUBECONFIG, ~/.kube/config, then "
                                                          "in-cluster.")
    context: Text | None = Field(None, description="kubeconfig context (default: the current one).")
    namespaces: StrList = Field(default_factory=list, description="Only these namespaces (empty: all).")
    manifests: PathList = Field(default_factory=list, description="YAML files or folders read instead of "
                                                                  "(or as well as) the API.")
    timeout: PositiveDuration = Field(_d("10s"), description="Per-request timeout.")


class _Aws(Section):
    region: Text | None = Field(None, description="AWS region (default: the boto3 default chain).")
    profile: Text | None = Field(None, description="Shared-config profile (default: the boto3 default chain).")
    endpoint_url: Url | None = Field(None, description="Another endpoint, e.g. a VPC endpoint or moto.")
    timeout: PositiveDuration = Field(_d("10s"), description="Connect and read timeout.")
    retry_mode: Literal["standard", "adaptive"] = Field("standard", description="botocore retry mode "
                                                                                "(throttling).")
    max_attempts: int = Field(5, ge=1, description="botocore attempts per call, the first included.")


class CloudWatch(_Aws):
    """App Mesh metrics: Envoy stats published to CloudWatch."""

    namespace: Text = Field("AppMeshEnvoy", description="CloudWatch namespace of the Envoy metrics.")


class XRay(_Aws):
    """App Mesh traces and service graph."""

    group: Text | None = Field(None, description="X-Ray group (its filter expression is used).")
    limit: int = Field(50, ge=0, description="Traces fetched (0: the service graph only). A diagnosis asks "
                                             "for traces through its service first, then its neighbourhood.")
    lookback: PositiveDuration | None = Field(None, description="How far back the trace search reaches "
                                                                "(default: the run's window, --window).")
    filter: Text | None = Field(None, description="Filter expression (overrides the group's).")


class AppMesh(_Aws):
    """App Mesh configuration: the API, or JSON exported earlier (the API was discontinued)."""

    mesh: Text | None = Field(None, description="Mesh name.")
    exported: PathList = Field(default_factory=list, description="Files or folders of exported JSON.")
    api: bool | None = Field(None, description="Call the App Mesh API (default: when mesh, region, "
                                               "profile or endpoint_url is set).")


class Sources(Section):
    """Where meshobs reads the mesh from; a source absent here is not queried."""

    prometheus: Prometheus | None = None
    jaeger: Jaeger | None = None
    envoy: Envoy | None = None
    istiod: Istiod | None = None
    kubernetes: Kubernetes | None = None
    cloudwatch: CloudWatch | None = None
    xray: XRay | None = None
    appmesh: AppMesh | None = None


# --- diagnosis -------------------------------------------------------------------------------

class Thresholds(Section):
    """Diagnosis thresholds (each field fills the ``Settings`` field of the same name)."""

    error_ratio: float = Field(0.01, ge=0, le=1, description="Fraction of requests failing above which "
                                                             "an edge or service is in error.")
    p99_ms: float = Field(1000.0, gt=0, description="p99 latency (ms) above which a service is slow.")
    latency_regression: float = Field(2.0, gt=1, description="p99 this many times the baseline's is "
                                                             "a regression.")
    root_cert_error_days: float = Field(7.0, ge=0, description="Root certificate expiring within this "
                                                               "many days: error.")
    root_cert_warning_days: float = Field(30.0, ge=0, description="... within this many days: warning.")
    workload_cert_warning_fraction: float = Field(0.2, gt=0, le=1, description="Workload certificate with "
                                                  "less than this fraction of its lifetime left: warning.")
    xds_stale_after: PositiveDuration = Field(_d("10m"), description="Without istiod's syncz: a proxy whose "
                                              "config is this much older than its workload's other proxies' "
                                              "is stale.")
    xds_unacked_after: PositiveDuration = Field(_d("1m"), description="A push istiod sent this long ago and the "
                                                "proxy has not acknowledged is stale (istioctl proxy-status: STALE).")
    uptime_fraction: float = Field(0.1, gt=0, le=1, description="A proxy up for less than this fraction of "
                                                                "its peers' median uptime restarted recently.")
    min_request_rate: float = Field(0.0, ge=0, description="Below this many requests per second an error "
                                                           "ratio is noise, not a finding.")
    restart_recent: PositiveDuration = Field(_d("1h"), description="A container restart (or a proxy much "
                                             "younger than its peers) older than this is history, not a finding.")
    change_lookback: PositiveDuration = Field(_d("10m"), description="A change (resource edit, rollout, "
                                              "restart, config push) at most this long before a symptom "
                                              "started is named as what preceded it.")

    @model_validator(mode="after")
    def _warning_before_error(self) -> Thresholds:
        if self.root_cert_warning_days < self.root_cert_error_days:
            raise ValueError(f"root_cert_warning_days ({self.root_cert_warning_days:g}) must be at least "
                             f"root_cert_error_days ({self.root_cert_error_days:g})")
        return self

    @classmethod
    def from_mapping(cls, thresholds: Mapping[str, object] | None) -> Thresholds:
        """The ``thresholds:`` section alone, with the same errors as the whole file."""
        from pydantic import ValidationError

        from .config import ConfigError
        from .config_types import problems

        try:
            return cls.model_validate(dict(thresholds or {}))
        except ValidationError as exc:
            lines = [f"thresholds.{line}" for line in problems(exc, cls)]
            raise ConfigError("\n".join(lines), lines) from None

    def settings_values(self) -> dict[str, float]:
        """Keyword arguments for ``Settings``: durations in seconds under ``<name>_s``."""
        out: dict[str, float] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            out[f"{name}_s" if isinstance(value, Seconds) else name] = float(value)
        return out


class Suppression(Section):
    """A known, accepted finding: still reported, but not counted for the status or exit code."""

    code: Text = Field(description="Finding code, or a pattern (MSH04*).")
    subject: Text = Field("*", description="The finding's subject, or a pattern (Edge shop/* -> *).")
    reason: Text = Field("", description="Why it is accepted (a ticket).")
    until: Time | None = Field(None, description="Stops applying after this time (RFC 3339).")

    @field_validator("code")
    @classmethod
    def _known_code(cls, code: str) -> str:
        from .catalogue import CATALOGUE

        if not any(fnmatchcase(c, code) for c in CATALOGUE):
            raise ValueError(f"{code!r} matches no finding code (codes look like MSH0402; "
                             "`meshobs explain` lists them)")
        return code


# --- drift -----------------------------------------------------------------------------------

class DriftIgnore(Section):
    """An expected difference (a controller manages the field), with the reason."""

    reason: Text = Field(description="Who changes the field and why.")
    kind: Text = Field("", description="Resource kind pattern.")
    namespace: Text = Field("", description="Namespace pattern.")
    name: Text = Field("", description="Resource name pattern.")
    path: Text = Field("", description="Field path; covers everything below it.")
    layers: Text = Field("", description="intended-live, live-effective, ... (pattern).")

    @field_validator("reason")
    @classmethod
    def _has_reason(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("every ignore rule needs a reason (say who changes the field and why)")
        return reason

    @model_validator(mode="after")
    def _not_everything(self) -> DriftIgnore:
        if not any((self.kind, self.namespace, self.name, self.path)):
            raise ValueError("set at least one of kind, namespace, name, path "
                             "(a rule matching everything would hide all drift)")
        return self


class Drift(Section):
    """``meshobs drift``: intended (Git) vs live (API) vs effective (Envoy)."""

    intended: PathList = Field(default_factory=list, description="Folders or files of the intended "
                                                                 "configuration (rendered YAML).")
    state_dir: FilePath | None = Field(None, description="Where first-seen times and history are kept.")
    textfile: FilePath | None = Field(None, description="node-exporter textfile (.prom) to write.")
    pushgateway: Url | None = Field(None, description="Pushgateway to push the metrics to.")
    fail_on: Literal["error", "warning", "never"] = Field("warning", description="Exit 1 on drift this "
                                                                                 "severe or worse.")
    all_namespaces: bool = Field(False, description="Report live-only resources in every namespace.")
    ignore: list[DriftIgnore] = Field(default_factory=list, description="Expected differences.")


# --- dashboard -------------------------------------------------------------------------------

class Dashboard(Section):
    """``meshobs dashboard``: key bindings and refresh."""

    keys: dict[str, Text] = Field(default_factory=dict, description="Rebind actions by id (docs/dashboard.md "
                                  "lists them), e.g. quit: \"ctrl+q\"; several keys comma-separated.")
    refresh: Duration = Field(_d("10s"), description="Live refresh interval (--refresh overrides it; 0s: "
                                                    "only on 'r').")


# --- the file --------------------------------------------------------------------------------

class MeshobsConfig(Section):
    """meshobs.yaml: where the sources are, the window, the evaluation time, thresholds."""

    model_config = ConfigDict(title="meshobs.yaml")

    mesh: Literal["istio", "appmesh", "auto"] = Field("auto", description="Which mesh; auto: both.")
    window: PositiveDuration = Field(_d("5m"), description="Rate window for request rate, error ratio "
                                                          "and latency quantiles.")
    time: Time | None = Field(None, description="Evaluation time (RFC 3339); default: now.")
    timeout: PositiveDuration = Field(_d("120s"), description="The whole run's deadline, collection "
                                      "included (--timeout overrides it): a source still answering then "
                                      "is reported \"could not check\" and the command prints what it has.")
    max_response_mb: float = Field(64.0, gt=0, description="Largest answer read from any one request, in "
                                   "MB (larger: \"could not check\").")
    sources: Sources = Field(default_factory=Sources, description="Where the mesh is read from.")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="Diagnosis thresholds.")
    suppress: list[Suppression] = Field(default_factory=list, description="Known, accepted findings.")
    drift: Drift = Field(default_factory=Drift, description="meshobs drift settings.")
    dashboard: Dashboard = Field(default_factory=Dashboard, description="meshobs dashboard settings.")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of meshobs.yaml (draft 2020-12), for editors and CI linters."""
    from pydantic.json_schema import GenerateJsonSchema

    class _Generator(GenerateJsonSchema):
        # ``key:`` with no value is refused (see Section), so no field accepts null in the file.
        def nullable_schema(self, schema: Any) -> Any:
            return self.generate_inner(schema["schema"])

        def encode_default(self, dft: Any) -> Any:
            return dft.text if isinstance(dft, Seconds) else super().encode_default(dft)

        def field_title_should_be_set(self, schema: Any) -> bool:
            return False  # "Endpoint Url" says nothing the key does not; descriptions do

    schema = MeshobsConfig.model_json_schema(mode="validation", schema_generator=_Generator)
    _drop_null_defaults(schema)
    return {"$schema": _Generator.schema_dialect, **schema}


def _drop_null_defaults(node: Any) -> None:
    if isinstance(node, dict):
        if "default" in node and node["default"] is None:
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)
