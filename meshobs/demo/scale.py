"""A generated mesh of any size, for the demo and the benchmarks.

The shape follows a typical microservice estate: a few frontends called from outside through the
ingress gateway, a broad middle tier, and data stores at the bottom (reached over TCP). Each
service runs one to three versions; every workload calls two or three services of a lower tier,
its requests split across the callee's versions. Most edges are healthy; a deterministic few
carry some 5xx or slow responses so a generated mesh is not suspiciously perfect.
"""

from __future__ import annotations

import random

from .traffic import EdgeTraffic, LatencyProfile

_TIERS = (("web", 0.1), ("svc", 0.6), ("db", 0.3))  # name prefix, share of the services


def _versions(rng: random.Random) -> tuple[str, ...]:
    roll = rng.random()
    if roll < 0.6:
        return ("v1",)
    if roll < 0.9:
        return ("v1", "v2")
    return ("v1", "v2", "v3")


def generated_traffic(n_services: int, seed: int = 1, namespaces: int = 10) -> list[EdgeTraffic]:
    """Traffic of a layered mesh of ``n_services`` services spread over ``namespaces`` namespaces.

    Deterministic for a given (n_services, seed, namespaces). Workloads are named
    ``<service>-<version>``; the ingress gateway (namespace ``istio-system``) calls every
    frontend. Data stores are TCP, everything else HTTP (a tenth of the middle tier gRPC).
    """
    if n_services < 1:
        raise ValueError("n_services must be at least 1")
    rng = random.Random(seed)
    n_ns = max(1, min(namespaces, n_services))
    tiers: list[list[tuple[str, str, tuple[str, ...], str]]] = [[] for _ in _TIERS]
    counts = [max(1, round(n_services * share)) for _, share in _TIERS]
    counts[1] = max(0, n_services - counts[0] - counts[2]) if n_services > 2 else 0
    if n_services <= 2:
        counts = [1, 0, n_services - 1]
    index = 0
    for tier, (prefix, _share) in enumerate(_TIERS):
        for i in range(counts[tier]):
            ns = f"ns-{index % n_ns:02d}"
            protocol = "tcp" if prefix == "db" else ("grpc" if rng.random() < 0.1 else "http")
            tiers[tier].append((ns, f"{prefix}-{i:04d}", _versions(rng), protocol))
            index += 1

    edges: list[EdgeTraffic] = []

    def call(src_ns: str, src_wl: str, src_svc: str, src_ver: str, rps: float,
             callee: tuple[str, str, tuple[str, ...], str]) -> None:
        dst_ns, dst_svc, versions, protocol = callee
        weights = [rng.uniform(0.5, 1.5) for _ in versions]
        total = sum(weights)
        for version, weight in zip(versions, weights, strict=True):
            share_rps = round(rps * weight / total, 3)
            p50 = round(rng.uniform(2.0, 30.0), 1)
            responses: tuple[tuple[str, str, float], ...] = (("200", "-", 1.0),)
            roll = rng.random()
            if protocol != "tcp" and roll < 0.03:  # a sick edge: 5xx from the upstream
                bad = round(rng.uniform(0.05, 0.3), 3)
                responses = (("200", "-", round(1 - bad, 3)), ("503", "UF", bad))
            elif protocol != "tcp" and roll < 0.3:  # background noise: a few 404s
                responses = (("200", "-", 0.995), ("404", "-", 0.005))
            edges.append(EdgeTraffic(
                source_namespace=src_ns, source_workload=src_wl, source_service=src_svc,
                source_version=src_ver, destination_namespace=dst_ns,
                destination_service=dst_svc, destination_workload=f"{dst_svc}-{version}",
                destination_version=version, rps=max(share_rps, 0.001), responses=responses,
                latency=LatencyProfile(p50, round(p50 * rng.uniform(2.5, 8.0), 1)),
                protocol=protocol, mtls=rng.random() > 0.02,
                source_service_account=src_svc, destination_service_account=dst_svc,
                tcp_sent_bps=round(rps * 2048, 1) if protocol == "tcp" else 0.0,
                tcp_received_bps=round(rps * 512, 1) if protocol == "tcp" else 0.0,
            ))

    for frontend in tiers[0]:
        call("istio-system", "istio-ingressgateway", "istio-ingressgateway", "latest",
             round(rng.uniform(20, 200), 1), frontend)
    mids, stores = tiers[1], tiers[2]
    for tier, services in ((0, tiers[0]), (1, mids)):
        for pos, (ns, svc, versions, _protocol) in enumerate(services):
            # Frontends call the middle tier (or stores when there is none); a mid-tier service
            # calls later mid-tier services or data stores, so the graph stays acyclic.
            candidates = (mids or stores) if tier == 0 else mids[pos + 1:] + stores
            if not candidates:
                continue
            for version in versions:
                k = min(len(candidates), rng.choice((2, 2, 3)))
                for callee in rng.sample(candidates, k):
                    call(ns, f"{svc}-{version}", svc, version, round(rng.uniform(1, 50), 2), callee)
    return edges
