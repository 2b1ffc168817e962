"""``/ready`` and ``/server_info``, and who a proxy belongs to (pod, namespace, workload)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from meshobs.model import WorkloadRef
from meshobs.shape import describe, load_json

from .clusters import pick

# Kubernetes generated-name suffixes: "<rs-hash>-<pod-suffix>" for Deployments (the hash is the
# pod-template-hash, up to 10 chars), "-<suffix>" for DaemonSets/Jobs, "-<ordinal>" for StatefulSets.
_DEPLOYMENT_POD = re.compile(r"^(?P<base>.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$")
_SUFFIXED_POD = re.compile(r"^(?P<base>.+)-[a-z0-9]{5}$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[\w.]+)?$")


@dataclass(frozen=True)
class ServerInfo:
    version: str | None = None
    state: str | None = None
    uptime_s: float | None = None
    node: dict[str, Any] | None = None


# The states Envoy's ServerInfo.State enum has; /ready answers 200 "LIVE" or 503 with one of the
# others (source/server/admin/server_info_handler.cc).
ENVOY_STATES = frozenset({"LIVE", "DRAINING", "PRE_INITIALIZING", "INITIALIZING"})


def parse_server_info(text: str) -> ServerInfo:
    """Parse ``/server_info``; raises ValueError when it is not that shape.

    A field of the wrong type is read as absent (``state: 7`` says nothing about the state),
    so one odd field does not cost the proxy's identity and version.
    """
    try:
        typed = _DECODER.decode(text)
        return _server_info(typed.version, typed.state, typed.uptime_current_epoch, typed.node)
    except (msgspec.DecodeError, UnicodeError, RecursionError):  # read the general way, which says why
        pass
    doc = load_json(text, "server_info")
    if not isinstance(doc, dict):
        raise ValueError(f"server_info: expected a JSON object, got {describe(doc)}")
    return _server_info(doc.get("version"), doc.get("state"), pick(doc, "uptime_current_epoch"), doc.get("node"))


class _ServerInfoBody(msgspec.Struct):
    """The fields of ``/server_info`` read (the command line options and the rest are skipped
    undecoded); of any JSON type, judged as the general path judges them. The lowerCamelCase
    spelling fails the decode: the general path reads it (``pick``)."""

    version: Any = None
    state: Any = None
    uptime_current_epoch: Any = None
    node: Any = None
    uptimeCurrentEpoch: msgspec.UnsetType = msgspec.UNSET


_DECODER = msgspec.json.Decoder(_ServerInfoBody)


def _server_info(version: Any, state: Any, uptime: Any, node: Any) -> ServerInfo:
    return ServerInfo(
        version=short_version(version),
        state=state if isinstance(state, str) and state in ENVOY_STATES else None,
        uptime_s=_seconds(uptime),
        node=node if isinstance(node, dict) else None,
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def short_version(text: Any) -> str | None:
    """``sha/1.12.0-dev/Clean/RELEASE/BoringSSL`` -> ``1.12.0-dev``; other strings unchanged."""
    if not isinstance(text, str) or not text:
        return None
    for part in text.split("/"):
        if _SEMVER.match(part):
            return part
    return text


def node_version(node: dict[str, Any]) -> str | None:
    """The Envoy version a node announces (``user_agent_build_version`` or ``build_version``)."""
    build = pick(node, "user_agent_build_version")
    if isinstance(build, dict):
        v = build.get("version") or {}
        if isinstance(v, dict) and "major_number" in v:
            patch = v.get("patch", 0)
            return f"{v.get('major_number', 0)}.{v.get('minor_number', 0)}.{patch}"
    return short_version(pick(node, "build_version"))


def readiness(status: int | None, body: str | None) -> tuple[bool | None, str | None, str | None]:
    """(ready, state, why unknown) from a ``/ready`` answer.

    Only what Envoy itself says counts: 200 with ``LIVE`` is ready; 503 with the name of a
    server state (``PRE_INITIALIZING``, ``INITIALIZING``, ``DRAINING``) is not ready, in that
    state. Anything else (429 from a proxy in between, 500, 503 with an HTML page, 200 with
    garbage) says nothing about the proxy: readiness is unknown (None), with the reason.
    """
    text = (body or "").strip()
    if status == 200 and text == "LIVE":
        return True, "LIVE", None
    if status == 503 and text in ENVOY_STATES - {"LIVE"}:
        return False, text, None
    snippet = text.splitlines()[0][:60] if text else ""
    said = f"HTTP {status}" + (f" {snippet!r}" if snippet else " with an empty body")
    return None, None, f"could not check readiness: /ready answered {said}, not Envoy's state"


def is_ready(status: int | None, body: str | None) -> bool | None:
    """True/False when ``/ready`` says so, None when its answer is not Envoy's (see :func:`readiness`)."""
    return readiness(status, body)[0]


def pod_from_node_id(node_id: str | None) -> tuple[str, str] | None:
    """``sidecar~10.0.0.1~cart-v1-7bbd79f8fd-k6j79.default~default.svc.cluster.local`` -> (pod, ns)."""
    if not node_id or not isinstance(node_id, str):
        return None
    parts = node_id.split("~")
    if len(parts) != 4 or "." not in parts[2]:
        return None
    pod, ns = parts[2].split(".", 1)
    return pod, ns.split(".", 1)[0]


def workload_name_from_pod(pod: str) -> str:
    """Best guess of a pod's workload from its generated name (strips the ReplicaSet hash)."""
    for pattern in (_DEPLOYMENT_POD, _SUFFIXED_POD):
        m = pattern.match(pod)
        if m:
            return m.group("base")
    return pod


def workload_of(meta: dict[str, Any], node: dict[str, Any] | None, pod: str | None,
                namespace: str | None) -> WorkloadRef | None:
    """The proxy's workload: from the target's meta, Istio's node metadata, then the pod name."""
    if not namespace:
        return None
    if meta.get("workload"):
        return WorkloadRef(namespace, str(meta["workload"]))
    md = (node or {}).get("metadata") or {}
    if isinstance(md, dict) and md.get("WORKLOAD_NAME"):
        return WorkloadRef(namespace, str(md["WORKLOAD_NAME"]))
    if pod:
        return WorkloadRef(namespace, workload_name_from_pod(pod))
    return None
