"""The contract every collector follows.

* ``fetch(ctx) -> list[RawSource]`` does all the I/O and returns payloads exactly as received
  (failures recorded as payloads with ``error``), never raising for expected failures.
* ``normalize(raw, ctx) -> SnapshotPart`` is pure: raw payloads in, model objects out, plus a
  ``SourceStatus`` for the source. It may raise ``ValueError`` for malformed payloads; the
  assembly turns that into a SourceStatus error for that source only.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from meshobs.config import Config
from meshobs.model import ServiceRef, SnapshotPart, WorkloadRef
from meshobs.raw import RawSource

from .silence import ServerRecords


@dataclass(frozen=True)
class Scope:
    """What a question needs collected: the neighbourhood of the service being diagnosed.

    A collector that can narrow its requests does so; one that cannot collects mesh-wide as
    before. ``None`` in a FetchContext means mesh-wide (``snapshot``, ``--all``, the
    dashboard). ``target`` is the service the question is about; ``services`` are the target and
    every service the root-cause walk reaches downstream (meshobs.neighbourhood); ``workloads``
    their workloads plus every workload that calls one of them. What each collector is expected
    to do with it in the "scoped" phase:

    * Prometheus: every query of a snapshot (request rates, latency, TCP, security, history)
      filtered in PromQL to edges into one of ``services`` or from one of ``workloads``; the
      graph phase asked mesh-wide only who calls whom (``promql.GRAPH_QUERIES``).
    * Jaeger / X-Ray: traces of ``target`` (they carry the downstream spans), not the first N
      services; X-Ray's service graph stays mesh-wide (graph phase).
    * Envoy admin: only the pods of ``workloads`` (done in collectors/envoy); those of a workload
      outside ``asked_in_full`` for their configuration dump only.
    * Kubernetes: pods and mesh configuration in ``namespaces`` (plus the root namespace); the
      service, namespace and deployment lists are the graph phase's (done in kubernetes.py).
    * CloudWatch (App Mesh's graph): everything in the graph phase, nothing in the scoped one.
    """

    target: ServiceRef | None = None
    services: frozenset[ServiceRef] = field(default_factory=frozenset)
    workloads: frozenset[WorkloadRef] = field(default_factory=frozenset)
    # (namespace, labelSelector) narrowing each namespace's pod list to the pods of the
    # neighbourhood's Services and workloads (None: the whole namespace); empty: every
    # namespace of the scope listed whole. Computed with the scope (meshobs.neighbourhood).
    pod_selectors: tuple[tuple[str, str | None], ...] = ()
    # The workloads whose proxies the checks read whole (readiness, the clusters' counters,
    # breakers and ejections); the other workloads' proxies are read for their configuration
    # dump only (the timeline's xDS and certificate changes, the mesh's hosts and trust
    # domains). None: every proxy whole. Computed with the scope (meshobs.neighbourhood).
    asked_in_full: frozenset[WorkloadRef] | None = None

    def in_full(self, ref: WorkloadRef) -> bool:
        """Are ``ref``'s proxies asked for everything, not only their configuration dump?"""
        return self.asked_in_full is None or ref in self.asked_in_full

    def has_service(self, ref: ServiceRef) -> bool:
        return ref in self.services

    def has_workload(self, ref: WorkloadRef) -> bool:
        return ref in self.workloads

    @property
    def namespaces(self) -> frozenset[str]:
        return frozenset(s.namespace for s in self.services) | frozenset(w.namespace for w in self.workloads)


@dataclass(frozen=True)
class FetchContext:
    time: datetime  # evaluation time
    window_s: float
    config: Config
    scope: Scope | None = None  # None: collect mesh-wide
    deadline: float | None = None  # time.monotonic() by which every fetch must have returned
    # "all": everything, mesh-wide (scope is None). A scoped question runs in two phases:
    # "graph" fetches only the cheap mesh-wide part the neighbourhood is computed from (the
    # request-rate query, the service and deployment lists; other collectors return []), then
    # "scoped" fetches the rest narrowed to ``scope`` (skipping what "graph" already has). The
    # orchestrator appends the scoped payloads to the graph-phase RawSource of the same name,
    # so one normalize call sees both.
    phase: str = "all"
    # What the command reads, in meshobs.engine.inputs' words ("proxies", "certs", "edges", ...,
    # plus "effective" for drift's Envoy configuration); None = everything. A collector may
    # skip requests whose data feeds none of these (Envoy asks drift's proxies for their
    # config dump only).
    needs: frozenset[str] | None = None
    # Set when no bundle is being recorded: a collector returning many sources (Envoy, one per
    # proxy) may pass each finished RawSource through it; it comes back normalised, bodies
    # dropped, so a big mesh's payloads are never all in memory at once.
    digest: Callable[[RawSource], RawSource] | None = None
    # Per server URL, whether it stopped answering (meshobs.collectors.silence): shared by the
    # phases of the run (``dataclasses.replace`` keeps it) and by every reader of a server.
    servers: ServerRecords = field(default_factory=ServerRecords, compare=False, repr=False)

    def runs(self, part: str) -> bool:
        """Does this phase fetch ``part`` ("graph": the cheap mesh-wide part; "scoped": the rest)?
        Phase "all" fetches both."""
        return self.phase in ("all", part)

    def remaining_s(self, default: float = float("inf")) -> float:
        """Seconds left before the whole-run deadline (``default`` when there is none)."""
        if self.deadline is None:
            return default
        return max(0.0, self.deadline - _time.monotonic())


@dataclass(frozen=True)
class NormalizeContext:
    time: datetime
    window_s: float


class Collector(Protocol):
    kind: str

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        """All I/O for this source; returns raw payloads (errors recorded, not raised)."""
        ...


class Normalizer(Protocol):
    def __call__(self, raw: RawSource, ctx: NormalizeContext) -> SnapshotPart: ...
