"""App Mesh configuration: exported describe-* JSON, and the App Mesh API for whoever still reaches it.

AWS discontinued the App Mesh API on 2026-09-30; sidecars keep running with their last
configuration, which now lives in the ``appmesh.k8s.aws/v1beta2`` CRDs (read by the Kubernetes
and manifests collectors), in Git, or in JSON saved earlier from the ``describe-*`` calls
(``sources.appmesh.exported``). The API path is kept for moto and for anyone with access.

Payload keys: ``exported:<path>`` (the file's text), and for the API ``ListMeshes/<n>``,
``DescribeMesh/<mesh>``, ``ListVirtualNodes/<mesh>/<n>``, ``DescribeVirtualNode/<mesh>/<node>``,
``ListVirtualRouters/...``, ``DescribeVirtualRouter/...``, ``ListRoutes/<mesh>/<router>/<n>``,
``DescribeRoute/<mesh>/<router>/<route>``, ``ListVirtualServices/...``, ``DescribeVirtualService/...``,
``ListVirtualGateways/...``, ``DescribeVirtualGateway/...``, ``ListGatewayRoutes/<mesh>/<gw>/<n>``,
``DescribeGatewayRoute/<mesh>/<gw>/<route>``. normalize turns every describe body and exported
document into ConfigResources through :mod:`appmesh_config` (layout ``spec["meshobs"]``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshobs.config import Config
from meshobs.model import Layer, SnapshotPart, SourceState, SourceStatus
from meshobs.raw import Payload, RawSource, iso, utc_now

from . import appmesh_config, aws
from .base import FetchContext, NormalizeContext

KIND = "appmesh"
PHASE = "scoped"  # configuration is not needed to find the neighbourhood (meshobs.collect)
MAX_PAGES = 100
DISCONTINUED = ("the App Mesh API was discontinued on 2026-09-30; read the configuration from the "
                "appmesh.k8s.aws CRDs (sources.kubernetes / manifests) or from JSON exported earlier "
                "with the describe-* calls (sources.appmesh.exported)")
# (list op, list key, describe op, describe key, name field, parent field or None)
_CHILDREN = (
    ("list_virtual_nodes", "virtualNodes", "describe_virtual_node", "virtualNodeName"),
    ("list_virtual_services", "virtualServices", "describe_virtual_service", "virtualServiceName"),
    ("list_virtual_routers", "virtualRouters", "describe_virtual_router", "virtualRouterName"),
    ("list_virtual_gateways", "virtualGateways", "describe_virtual_gateway", "virtualGatewayName"),
)


def _api_name(op: str) -> str:
    return "".join(p.capitalize() for p in op.split("_"))


@dataclass
class AppMeshCollector:
    section: dict[str, Any]
    use_api: bool
    kind: str = KIND

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        raw = RawSource(name=KIND, kind=KIND, meta={"api": self.use_api})
        with raw.timed():
            for path in self.section.get("exported") or []:
                raw.add(_read_exported(str(path)))
            if self.use_api:
                self._fetch_api(raw)
        return [raw]

    def _fetch_api(self, raw: RawSource) -> None:
        try:
            client = aws.make_client("appmesh", self.section)
        except aws.AwsSetupError as exc:
            raw.add(Payload(key="api", error=f"{exc} ({DISCONTINUED})"))
            return
        mesh = self.section.get("mesh")
        meshes = [str(mesh)] if mesh else self._names(raw, client, "list_meshes", "meshes", "meshName",
                                                      {}, "ListMeshes")
        if meshes is None:
            return
        for m in meshes:
            if not self._describe(raw, client, "describe_mesh", f"DescribeMesh/{m}", {"meshName": m}):
                return  # the mesh (or the API) is not there: no point asking for its children
            for list_op, list_key, describe_op, name_field in _CHILDREN:
                names = self._names(raw, client, list_op, list_key, name_field, {"meshName": m},
                                    f"{_api_name(list_op)}/{m}") or []
                for name in names:
                    self._describe(raw, client, describe_op, f"{_api_name(describe_op)}/{m}/{name}",
                                   {"meshName": m, name_field: name})
                    if list_op == "list_virtual_routers":
                        self._children(raw, client, m, "virtualRouterName", name, "list_routes", "routes",
                                       "describe_route", "routeName")
                    elif list_op == "list_virtual_gateways":
                        self._children(raw, client, m, "virtualGatewayName", name, "list_gateway_routes",
                                       "gatewayRoutes", "describe_gateway_route", "gatewayRouteName")

    def _children(self, raw: RawSource, client: Any, mesh: str, parent_field: str, parent: str,
                  list_op: str, list_key: str, describe_op: str, name_field: str) -> None:
        base = {"meshName": mesh, parent_field: parent}
        for name in self._names(raw, client, list_op, list_key, name_field, base,
                                f"{_api_name(list_op)}/{mesh}/{parent}") or []:
            self._describe(raw, client, describe_op, f"{_api_name(describe_op)}/{mesh}/{parent}/{name}",
                           {**base, name_field: name})

    def _names(self, raw: RawSource, client: Any, op: str, list_key: str, name_field: str,
               params: dict[str, Any], key: str) -> list[str] | None:
        names: list[str] = []
        for payload, body in aws.pages(client, op, key, params, service="appmesh", max_pages=MAX_PAGES):
            raw.add(_explained(payload))
            if body is None:
                return None
            names.extend(str(item[name_field]) for item in body.get(list_key) or [] if item.get(name_field))
        return names

    def _describe(self, raw: RawSource, client: Any, op: str, key: str, params: dict[str, Any]) -> bool:
        payload, body = aws.call(client, op, key, params, service="appmesh")
        raw.add(_explained(payload))
        return body is not None


def _explained(payload: Payload) -> Payload:
    """Connection-level failures of the App Mesh API get the discontinuation hint."""
    if payload.error and ("cannot reach" in payload.error or "could not connect" in payload.error.lower()
                          or payload.meta.get("error_code") in (None, "UnrecognizedClientException")):
        payload.error = f"{payload.error} ({DISCONTINUED})"
    return payload


def _read_exported(path: str) -> Payload:
    fetched_at = iso(utc_now())
    start = time.perf_counter()
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        return Payload(key=f"exported:{path}", error=f"cannot read exported App Mesh JSON {p} "
                       f"({exc.strerror or exc}): check sources.appmesh.exported", url=str(p),
                       fetched_at=fetched_at)
    return Payload(key=f"exported:{path}", body=text, status=200, url=str(p), fetched_at=fetched_at,
                   elapsed_s=time.perf_counter() - start)


def from_config(config: Config, prior: list[RawSource]) -> AppMeshCollector | None:
    """A collector when ``sources.appmesh`` is configured. The API is used when ``api: true``, or
    by default when a mesh, region, profile or endpoint_url is set."""
    section = config.sources.get("appmesh")
    if section is None:
        return None
    section = dict(section or {})
    default_api = any(section.get(k) for k in ("mesh", "region", "profile", "endpoint_url"))
    return AppMeshCollector(section=section, use_api=bool(section.get("api", default_api)))


def documents(text: str, origin: str) -> list[Any]:
    """The documents of an exported file: JSON, or YAML (one or several documents).

    ``${VAR}`` templates are filled from the environment (or raise TemplateError naming them)."""
    if appmesh_config.placeholders(text):
        text = appmesh_config.fill_template(text, origin=origin)
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ValueError(f"{origin}: neither JSON nor YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ValueError(f"{origin}: nested too deeply to read") from None


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Describe bodies and exported files -> ConfigResources (live layer for the API, intended for
    exported files: they are what was configured, not what runs now)."""
    part = SnapshotPart()
    problems: list[str] = []
    items: list[str] = []  # single resources left out: the rest of the payload is used
    for payload in raw.payloads:
        if payload.failure():
            problems.append(f"{payload.key}: {payload.failure()}")
            continue
        if payload.key.startswith("exported:"):
            origin = payload.key[len("exported:"):]
            try:
                docs = documents(payload.body or "", origin)
                found = [r for d in docs for r in appmesh_config.from_document(d, Layer.INTENDED, origin, items)]
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if not found:
                problems.append(f"{origin}: no App Mesh resource found (expected describe-* output, "
                                f"create-* input JSON or appmesh.k8s.aws manifests)")
            part.config.extend(found)
        elif payload.key.startswith("Describe"):
            try:
                part.config.extend(appmesh_config.from_document(payload.json(), Layer.LIVE, "appmesh-api", items))
            except ValueError as exc:  # one describe answer is one resource
                items.append(f"{payload.key}: {exc}")
    # The API's first failure usually repeats for every later call: report distinct reasons.
    unique = list(dict.fromkeys(problems))
    if unique:
        state = SourceState.OK if part.config else SourceState.ERROR
        message = ("partial: " if part.config else "could not check: ") + "; ".join(unique[:4])
        if len(unique) > 4:
            message += f"; and {len(unique) - 4} more"
    else:
        state = SourceState.OK if part.config else SourceState.NO_DATA
        message = "" if part.config else "no App Mesh configuration found"
    part.sources.append(SourceStatus(raw.name, state, message, raw.duration_s, KIND, problems=tuple(items)))
    return part
