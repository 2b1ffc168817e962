"""assemble's merges hand back the first object when the second adds nothing, and otherwise
what dataclasses.replace made before (every field, the ones == ignores included)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from meshobs.assemble import _merge_service, _merge_workload
from meshobs.model import Mesh, Service, ServiceRef, Workload, WorkloadRef
from meshobs.model.frozen import FrozenDict

W = WorkloadRef("shop", "till-v1")
S = ServiceRef("shop", "till")


def _fields(x: object) -> tuple[object, ...]:
    return tuple(getattr(x, f.name) for f in fields(x))  # type: ignore[arg-type]


def _old_workload(a: Workload, b: Workload) -> Workload:
    return replace(a, mesh=a.mesh if a.mesh is not Mesh.UNKNOWN else b.mesh,
                   services=tuple(dict.fromkeys(a.services + b.services)), app=a.app or b.app,
                   version=a.version or b.version, labels=a.labels or b.labels,
                   service_account=a.service_account or b.service_account,
                   meshed=a.meshed if a.meshed is not None else b.meshed,
                   annotations=a.annotations or b.annotations, proxy_image=a.proxy_image or b.proxy_image,
                   location=a.location or b.location)


RICH = Workload(ref=W, mesh=Mesh.ISTIO, services=(S,), app="till", labels=FrozenDict({"app": "till"}))
WORKLOADS = [
    (RICH, Workload(ref=W, mesh=Mesh.ISTIO, services=(S,))),  # adds nothing
    (RICH, Workload(ref=W)),
    (RICH, Workload(ref=W, services=(ServiceRef("shop", "till-canary"),))),  # a second service
    (RICH, Workload(ref=W, meshed=True, annotations=FrozenDict({"sidecar.istio.io/status": "{}"}))),
    (Workload(ref=W), RICH),  # an implied workload first
    (Workload(ref=W, services=(S, S)), Workload(ref=W)),  # duplicates are merged away, as before
]


@pytest.mark.parametrize(("a", "b"), WORKLOADS)
def test_a_workload_merge_is_what_replace_made(a: Workload, b: Workload) -> None:
    merged = _merge_workload(a, b)
    assert _fields(merged) == _fields(_old_workload(a, b))
    if _fields(merged) == _fields(a):
        assert merged is a


def test_a_service_merge_adds_hosts_once_and_keeps_the_first_origin() -> None:
    a = Service(ref=S, mesh=Mesh.ISTIO, hosts=("till.shop.svc.cluster.local",), origin="kubernetes")
    assert _merge_service(a, Service(ref=S, hosts=("till.shop.svc.cluster.local",))) is a
    merged = _merge_service(a, Service(ref=S, hosts=("till",), origin="prometheus", ports=(8080,)))
    assert merged.hosts == ("till.shop.svc.cluster.local", "till")
    assert (merged.ports, merged.origin) == ((8080,), "kubernetes")
    assert _merge_service(Service(ref=S), a).origin == "kubernetes"
