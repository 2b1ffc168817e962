"""The mesh config (ConfigMap ``istio-system/istio``, key ``mesh``) as the checks read it.

The Kubernetes collector keeps only the fields read here (as a ``MeshConfig`` resource); when it
was not read, Istio's defaults apply and the callers are told it is an assumption.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshobs.istio_config import ROOT_NAMESPACE
from meshobs.model import ConfigResource, MeshSnapshot

from .base import memo

MESH_CONFIG = "MeshConfig"
ALLOW_ANY, REGISTRY_ONLY = "ALLOW_ANY", "REGISTRY_ONLY"


def mesh_config(snapshot: MeshSnapshot) -> ConfigResource | None:
    """The mesh config read from the cluster (or a manifest), or None."""
    found = sorted(snapshot.config_of(MESH_CONFIG), key=lambda r: (r.layer != "live", r.namespace, r.name))
    return found[0] if found else None


def root_namespace(snapshot: MeshSnapshot) -> str:
    """``meshConfig.rootNamespace`` (default ``istio-system``): where mesh-wide policies live."""
    def read(s: MeshSnapshot) -> str:
        mc = mesh_config(s)
        return str(mc.spec.get("rootNamespace") or ROOT_NAMESPACE) if mc is not None else ROOT_NAMESPACE
    return memo(snapshot, "meshconfig.root_namespace", read)


def outbound_mode(resource: ConfigResource | None) -> str | None:
    """``outboundTrafficPolicy.mode`` of a mesh config or a Sidecar, upper case; None if unset."""
    if resource is None:
        return None
    policy = resource.spec.get("outboundTrafficPolicy")
    mode = policy.get("mode") if isinstance(policy, Mapping) else None
    return str(mode).upper() if mode else None
