"""Which security policies apply to a workload, and what its proxies counted of them.

AuthorizationPolicy and RequestAuthentication are scoped alike: a policy applies to the workloads
of its own namespace (all of them, or those its ``selector.matchLabels`` picks), and one in the
root namespace to every namespace's. The server's sidecar enforces both with an HTTP filter that
answers refused requests itself, without a response flag: RBAC with 403, the JWT filter with 401,
each counted per listener (``http.<listener>.rbac.denied``, ``http.<listener>.jwt_authn.denied``).
"""

from __future__ import annotations

from collections.abc import Mapping

from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, MeshSnapshot, WorkloadRef

from .config import workload_labels
from .inventory import selects
from .meshconfig import root_namespace

AUTHORIZATION_POLICY = "AuthorizationPolicy"
REQUEST_AUTHENTICATION = "RequestAuthentication"
# The status each filter answers a refused request with (no response flag), and the policy kind
# behind the filter.
FILTERS = {"403": ("rbac", AUTHORIZATION_POLICY), "401": ("jwt_authn", REQUEST_AUTHENTICATION)}


def action_of(policy: ConfigResource) -> str:
    """An AuthorizationPolicy's action, ALLOW when it sets none (as Istio reads it)."""
    return str(policy.spec.get("action") or "ALLOW").upper()


def selector_of(policy: ConfigResource) -> dict[str, str] | None:
    """A policy's ``selector.matchLabels`` (None: the whole namespace)."""
    block = policy.spec.get("selector")
    labels = block.get("matchLabels") if isinstance(block, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) and labels else None


def policies_for(snapshot: MeshSnapshot, workload: WorkloadRef,
                 kind: str = AUTHORIZATION_POLICY) -> list[ConfigResource]:
    """The policies of ``kind`` applying to ``workload``: in its namespace or the root namespace,
    without a selector or selecting its labels."""
    w = snapshot.workload(workload)
    labels = workload_labels(w) if w is not None else {}
    root = root_namespace(snapshot)
    out: list[ConfigResource] = []
    for p in pick_resources(snapshot, kind):
        selector = selector_of(p)
        matches = not selector or (w is not None and selects(selector, labels))
        if (p.namespace == workload.namespace or p.namespace == root) and matches:
            out.append(p)
    return out


def filter_counters(snapshot: MeshSnapshot, workload: WorkloadRef, http_filter: str) -> dict[str, int]:
    """``<filter>.<stat>`` counters (``rbac.denied``, ``jwt_authn.allowed``...) summed over the
    workload's proxies."""
    out: dict[str, int] = {}
    for p in snapshot.proxies_of(workload):
        for k, v in p.http_counters.items():
            if k.startswith(http_filter + "."):
                out[k] = out.get(k, 0) + int(v)
    return out
