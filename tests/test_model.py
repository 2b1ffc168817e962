from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from meshobs.assemble import assemble
from meshobs.model import (
    ConfigResource,
    Edge,
    Latency,
    MeshSnapshot,
    ResponseStat,
    Service,
    ServiceRef,
    SnapshotPart,
    Workload,
    WorkloadRef,
    freeze,
)
from meshobs.model.frozen import FrozenDict, frozen_map

T = datetime(2026, 11, 20, 12, tzinfo=UTC)
FRONT, CART, DB = (ServiceRef("shop", n) for n in ("frontend", "cart-service", "database-service"))


def _edge(src: str, src_svc: ServiceRef, dst: ServiceRef, dst_w: str | None, rps: float,
          errors: tuple[tuple[str, str, float], ...] = ()) -> Edge:
    ok = rps - sum(r for _c, _f, r in errors)
    responses = (ResponseStat("200", "-", ok), *(ResponseStat(c, f, r) for c, f, r in errors))
    return Edge(WorkloadRef("shop", src), dst, WorkloadRef("shop", dst_w) if dst_w else None,
                source_service=src_svc, request_rate=rps, responses=responses, latency=Latency(5, 20, 80))


def _snap() -> MeshSnapshot:
    part = SnapshotPart(edges=[
        _edge("frontend-v1", FRONT, CART, "cart-v1", 10, (("503", "UH", 1.0),)),
        _edge("cart-v1", CART, DB, "database-v1", 20, (("503", "UH", 2.0), ("0", "UF", 0.5))),
        _edge("cart-v1", CART, DB, None, 1, (("503", "NR", 1.0),)),
    ])
    return assemble(part, time=T, window_s=300)


def test_error_split_by_code_class_and_flag() -> None:
    e = _snap().edges[1]
    assert e.error_rate == pytest.approx(2.5)
    assert e.error_ratio == pytest.approx(0.125)
    assert e.rate_by_code_class() == {"2xx": 17.5, "5xx": 2.0, "0": 0.5}
    assert e.rate_by_flag(errors_only=True) == {"UH": 2.0, "UF": 0.5}


@pytest.mark.parametrize(("code", "grpc", "http", "klass", "error"), [
    ("200", "", "200", "2xx", False),  # HTTP, no gRPC status
    ("200", "0", "200", "2xx", False),  # OK
    # The statuses whose HTTP equivalent is a 5xx fail inside an HTTP 200.
    ("200", "2", "500", "5xx", True), ("200", "4", "504", "5xx", True), ("200", "12", "501", "5xx", True),
    ("200", "13", "500", "5xx", True), ("200", "14", "503", "5xx", True), ("200", "15", "500", "5xx", True),
    # The client-side ones are the 4xx analogues: counted as 4xx are, not errors.
    ("200", "1", "499", "4xx", False), ("200", "3", "400", "4xx", False), ("200", "5", "404", "4xx", False),
    ("200", "7", "403", "4xx", False), ("200", "8", "429", "4xx", False), ("200", "16", "401", "4xx", False),
    ("200", "99", "500", "5xx", True),  # outside the table: gRPC's UNKNOWN
    # An HTTP error or no response stands as it is, whatever the gRPC status says.
    ("503", "14", "503", "5xx", True), ("0", "14", "0", "0", True), ("404", "5", "404", "4xx", False),
    ("unknown", "14", "unknown", "unknown", False),
])
def test_a_grpc_status_is_judged_by_its_http_equivalent(code: str, grpc: str, http: str, klass: str,
                                                         error: bool) -> None:
    r = ResponseStat(code, "-", 1.0, grpc)
    assert (r.http_equivalent, r.code_class, r.is_error) == (http, klass, error)


def test_grpc_mapping_covers_every_status_once() -> None:
    from meshobs.model.traffic import GRPC_HTTP_EQUIVALENT

    assert sorted(map(int, GRPC_HTTP_EQUIVALENT)) == list(range(17))
    assert len({name for name, _http in GRPC_HTTP_EQUIVALENT.values()}) == 17


def test_evidence_names_a_grpc_status_next_to_the_http_code() -> None:
    e = Edge(WorkloadRef("clearing", "engine-v1"), ServiceRef("posting", "journal"), protocol="grpc",
             request_rate=10.0, responses=(ResponseStat("200", "-", 8.0, "0"), ResponseStat("200", "-", 1.5, "14"),
                                           ResponseStat("503", "UH", 0.5, "14")))
    assert e.error_rate == pytest.approx(2.0)
    assert e.rate_by_code(errors_only=True) == {"200 grpc-status 14 UNAVAILABLE": 1.5, "503": 0.5}
    assert e.rate_by_code_class() == {"2xx": 8.0, "5xx": 2.0}


def test_neighbours_and_lookups() -> None:
    s = _snap()
    assert {x.name for x in s.services} == {"frontend", "cart-service", "database-service"}
    assert s.callers(CART) == [FRONT]
    assert s.callees(CART) == [DB]
    assert s.callers(DB) == [CART]
    assert [w.ref.name for w in s.workloads_of(DB)] == ["database-v1"]
    assert len(s.edges_into(DB)) == 2
    assert [x.name for x in s.find_services("cart-service")] == ["cart-service"]
    assert s.find_services("cart-service.shop.svc.cluster.local")[0].ref == CART
    assert s.find_services("cart-service", namespace="other") == []


def test_never_reached_edge_keeps_no_destination_workload() -> None:
    reached = [e for e in _snap().edges_into(DB) if e.destination_workload is None]
    assert len(reached) == 1 and reached[0].rate_by_flag(True) == {"NR": 1.0}


def test_model_is_immutable() -> None:
    s = _snap()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.edges[0].request_rate = 1  # type: ignore[misc]
    spec = freeze({"hosts": ["cart"], "http": [{"route": []}]})
    cr = ConfigResource("VirtualService", "shop", "cart", spec)
    with pytest.raises(TypeError):
        cr.spec["hosts"] = []  # type: ignore[index]
    assert isinstance(cr.spec["hosts"], tuple)
    assert json.loads(json.dumps(cr.spec)) == {"hosts": ["cart"], "http": [{"route": []}]}


def test_frozen_specs_pickle_and_stay_frozen() -> None:
    """The dashboard's load process sends findings and views (which hold specs) pickled."""
    spec = freeze({"hosts": ["cart"], "http": [{"route": [{"weight": 90}]}]})
    back = pickle.loads(pickle.dumps(spec))
    assert back == spec and type(back) is type(spec) and type(back["http"][0]) is type(spec)
    with pytest.raises(TypeError):
        back["hosts"] = []


def test_freeze_makes_every_level_frozen_whatever_the_container_type() -> None:
    """The exact-type fast paths (a decoder's dict, list, str) and the general ones (a mapping
    or sequence of another type, a non-string key) freeze alike, to the bottom."""
    from collections import OrderedDict
    from enum import StrEnum

    class Kind(StrEnum):
        POD = "Pod"

    value = {"a": [1, 2.5, True, None, {"b": ("c", [{"d": Kind.POD}])}], 7: OrderedDict(e=["f"]),
             "g": (), "h": {}}
    frozen = freeze(value)
    assert frozen == {"a": (1, 2.5, True, None, {"b": ("c", ({"d": "Pod"},))}), "7": {"e": ("f",)},
                      "g": (), "h": {}}
    assert type(frozen) is FrozenDict and type(frozen["7"]) is FrozenDict
    assert type(frozen["a"]) is tuple and type(frozen["a"][4]) is FrozenDict
    assert type(frozen["a"][4]["b"][1][0]) is FrozenDict and frozen["a"][4]["b"][1][0]["d"] is Kind.POD
    assert value["a"][4] == {"b": ("c", [{"d": "Pod"}])}  # the input is left as it was
    assert freeze(frozen) is frozen and frozen_map(value) == frozen and frozen_map(value.items()) == frozen
    assert frozen_map(None) == {} and frozen_map({}) == {}


def test_assembly_merges_duplicate_nodes() -> None:
    part = SnapshotPart(
        services=[Service(CART, hosts=("a",)),
                  Service(CART, hosts=("b",), workloads=(WorkloadRef("shop", "cart-v1"),))],
        workloads=[Workload(WorkloadRef("shop", "cart-v1"), version="v1"),
                   Workload(WorkloadRef("shop", "cart-v1"), service_account="cart")],
    )
    snap = assemble(part, time=T, window_s=60)
    assert len(snap.services) == 1 and snap.services[0].hosts == ("a", "b")
    (w,) = snap.workloads
    assert (w.version, w.service_account, w.services) == ("v1", "cart", (CART,))


def test_dependency_edges_only_fill_gaps() -> None:
    metric = _edge("frontend-v1", FRONT, CART, "cart-v1", 10)
    dup = dataclasses.replace(metric, protocol="dependency", destination_workload=None)
    extra = Edge(WorkloadRef("shop", "frontend-v1"), ServiceRef("shop", "search"), source_service=FRONT,
                 protocol="dependency", request_rate=1)
    snap = assemble(SnapshotPart(edges=[metric, dup, extra]), time=T, window_s=60)
    assert sorted((e.destination.name, e.protocol) for e in snap.edges) == [("cart-service", "http"),
                                                                            ("search", "dependency")]


def test_configured_mesh_labels_nodes_no_source_could_place() -> None:
    from meshobs.model import Mesh

    part = SnapshotPart(edges=[_edge("frontend-v1", FRONT, CART, "cart-v1", 10)])
    assert {s.mesh for s in assemble(part, time=T, window_s=60).services} == {Mesh.UNKNOWN}
    labelled = assemble(part, time=T, window_s=60, mesh=Mesh.APPMESH)
    assert {s.mesh for s in labelled.services} == {Mesh.APPMESH}
    assert {w.mesh for w in labelled.workloads} == {Mesh.APPMESH}


def test_assembly_reads_edges_with_shared_ends_as_edges_with_equal_copies() -> None:
    """Assembly skips an edge whose ends it has seen as the very same objects (normalisers share
    one ref per name); what it makes must not depend on that sharing, nor lose what a later edge
    with the same ends adds (a mesh, another service)."""
    from meshobs.model import Mesh

    web, cart_v1, other = WorkloadRef("shop", "web-v1"), WorkloadRef("shop", "cart-v1"), ServiceRef("shop", "cart-b")
    shared = [
        Edge(web, CART, cart_v1, source_service=FRONT),
        Edge(web, CART, cart_v1, source_service=FRONT, protocol="tcp"),
        Edge(web, CART, cart_v1, source_service=FRONT, mesh=Mesh.ISTIO),
        Edge(web, other, cart_v1, source_service=FRONT),
        Edge(web, CART, cart_v1, source_service=FRONT, protocol="grpc"),
    ]

    def copy(ref: Any) -> Any:
        return None if ref is None else type(ref)(ref.namespace, ref.name)

    copies = [dataclasses.replace(e, source=copy(e.source), destination=copy(e.destination),
                                  destination_workload=copy(e.destination_workload),
                                  source_service=copy(e.source_service)) for e in shared]
    got = assemble(SnapshotPart(edges=shared), time=T, window_s=300.0)
    want = assemble(SnapshotPart(edges=copies), time=T, window_s=300.0)
    assert got == want
    (cart,) = [w for w in got.workloads if w.ref == cart_v1]
    assert cart.mesh is Mesh.ISTIO and cart.services == (CART, other)


@pytest.mark.parametrize(("code", "flags", "error"), [
    ("429", "RL", True), ("429", "UO,RL", True), ("429", "-", False), ("429", "RLSE", False),
    ("403", "RL", False), ("503", "RL", True)])
def test_a_refusal_of_the_proxys_local_rate_limit_is_an_error(code: str, flags: str, error: bool) -> None:
    # 429 with flag RL: the mesh refused the request; a 429 the application answered is the
    # caller's business, as every 4xx.
    assert ResponseStat(code, flags, 1.0).is_error is error


@pytest.mark.parametrize("code", ["", "0", "00", "0xx", "5", "5xx", "503", "4xx", "404", "200", "unknown",
                                  "not failed", "\u0665", " 5", "x5"])
def test_an_error_is_what_its_code_class_says(code: str) -> None:
    # is_error reads the code itself (a hot path); it must agree with code_class.
    stat = ResponseStat(code, "-", 1.0)
    assert stat.is_error == (stat.code_class in ("5xx", "0"))
