"""Services, workloads and pods: the nodes of the service graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .config import SourceLocation
from .frozen import EMPTY, FrozenDict
from .refs import Mesh, ServiceRef, WorkloadRef


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Kubernetes Service as written: Istio reads the protocol from ``name``
    (``http-api``) or ``app_protocol``, and a gateway listens on ``target_port``."""

    port: int
    name: str = ""
    target_port: int | str | None = None  # a number, a container port name, or None (= port)
    protocol: str = "TCP"
    app_protocol: str | None = None

    @property
    def listens_on(self) -> int | None:
        """The port the selected pods listen on: the numeric target port, else the port; None
        for a named target port (resolved only from the pods' container ports)."""
        if self.target_port is None:
            return self.port
        if isinstance(self.target_port, int) or str(self.target_port).isdigit():
            return int(self.target_port)
        return None


@dataclass(frozen=True, slots=True)
class Service:
    """A service that callers address (Kubernetes Service / App Mesh virtual service)."""

    ref: ServiceRef
    mesh: Mesh = Mesh.UNKNOWN
    hosts: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    selector: FrozenDict = EMPTY
    workloads: tuple[WorkloadRef, ...] = ()
    # Where a Service object declared it ("kubernetes", a manifest path); empty when the service
    # is only implied (by traffic, by a VirtualService host). Configuration analyzers judge
    # "host not found" against declared services only.
    origin: str = field(default="", compare=False)
    # The ports with their names, target ports and protocols (empty when only numbers are known).
    port_specs: tuple[ServicePort, ...] = ()
    # ``type: ExternalName``: the DNS name the Service aliases (Istio cannot sniff its protocol).
    external_name: str | None = None
    # Where a manifest wrote it (file and field lines), so an analyzer finding names the line.
    location: SourceLocation | None = field(default=None, compare=False)

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def fqdn(self) -> str:
        return f"{self.ref.name}.{self.ref.namespace}.svc.cluster.local"


@dataclass(frozen=True, slots=True)
class Workload:
    """A set of pods running one version of a service (Deployment / App Mesh virtual node).

    ``version`` is the subset label (``version: v2``) a DestinationRule subset selects on.
    """

    ref: WorkloadRef
    mesh: Mesh = Mesh.UNKNOWN
    services: tuple[ServiceRef, ...] = ()
    app: str | None = None
    version: str | None = None
    labels: FrozenDict = EMPTY
    service_account: str | None = None
    # False when the workload's pods run without a sidecar; None when unknown.
    meshed: bool | None = None
    # The pod template's mesh annotations (``sidecar.istio.io/...``); others are not kept.
    annotations: FrozenDict = EMPTY
    # The image of its ``istio-proxy`` container when the template or its pods have one
    # (``auto`` asks the injector to fill it in: a gateway deployment).
    proxy_image: str | None = None
    location: SourceLocation | None = field(default=None, compare=False)

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    @property
    def name(self) -> str:
        return self.ref.name


@dataclass(frozen=True, slots=True)
class ContainerRestarts:
    """One container's restart history as its status tells it: how often, and how and when the
    previous run ended (``lastState.terminated``; else the current run's start), so a restart
    is judged by how recent it is, not by a count that never goes down."""

    container: str
    count: int
    last_at: datetime | None = None  # None: the status does not say when
    reason: str | None = None  # OOMKilled, Error, Completed ...
    exit_code: int | None = None
    waiting: str | None = None  # the container's current waiting reason (CrashLoopBackOff ...)
    sidecar: bool = False


@dataclass(frozen=True, slots=True)
class Pod:
    """One pod as the Kubernetes API reports it."""

    namespace: str
    name: str
    workload: WorkloadRef | None
    labels: FrozenDict = EMPTY
    has_sidecar: bool = False
    sidecar_injection_expected: bool | None = None
    ready: bool = False
    sidecar_ready: bool | None = None
    phase: str = "Unknown"
    restarts: int = 0
    sidecar_restarts: int = 0
    service_account: str | None = None
    ip: str | None = None
    node: str | None = None
    containers: tuple[str, ...] = field(default=())
    # The pod's mesh annotations (``sidecar.istio.io/...``); others are not kept.
    annotations: FrozenDict = EMPTY
    started: datetime | None = None  # status.startTime
    # The image of its proxy container: its sidecar's, or on the node proxy ztunnel's own.
    proxy_image: str | None = None
    location: SourceLocation | None = field(default=None, compare=False)
    # Containers that restarted (or wait to), with when: empty when none did.
    restart_history: tuple[ContainerRestarts, ...] = ()
    # On Istio's ambient data plane (``istio.io/dataplane-mode=ambient`` on the pod or its
    # namespace, and no sidecar): ztunnel and waypoints carry its traffic, no sidecar by design.
    ambient: bool = False
    # Ambient's node proxy itself, Istio's ztunnel (a DaemonSet's pod, one per node): its container
    # is named istio-proxy like a sidecar's, but it carries the node's ambient pods' traffic and is
    # the sidecar of no workload (has_sidecar False, and never "missing" one).
    node_proxy: bool = False
