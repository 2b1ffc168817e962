"""The one service-graph model every part of meshobs reads."""

from .cert import Cert, CertRole
from .config import ConfigResource, Layer, ObjectDates, SourceLocation, Write
from .controlplane import ControlPlane, InjectionWebhook, IstiodReplica, XdsReject, XdsSync, istiod_labels
from .frozen import EMPTY, FrozenDict, freeze, frozen_map, frozen_strings, thaw
from .history import History, HistorySeries
from .proxy import (
    FilterChain,
    HttpRoute,
    Listener,
    Proxy,
    RouteDestination,
    UpstreamCluster,
    UpstreamHost,
    XdsResource,
)
from .refs import UNKNOWN_SERVICE, UNKNOWN_WORKLOAD, Mesh, ServiceRef, WorkloadRef
from .series import MetricSeries
from .snapshot import MeshSnapshot, SnapshotPart
from .source import SourceState, SourceStatus
from .topology import ContainerRestarts, Pod, Service, ServicePort, Workload
from .trace import Span, Trace
from .traffic import Edge, Latency, Reporter, ResponseStat, Security

__all__ = [
    "EMPTY", "UNKNOWN_SERVICE", "UNKNOWN_WORKLOAD", "Cert", "CertRole", "ConfigResource", "ContainerRestarts",
    "ControlPlane", "Edge", "FilterChain", "FrozenDict", "History", "HistorySeries", "HttpRoute",
    "InjectionWebhook", "IstiodReplica", "Latency", "Layer", "Listener", "Mesh", "MeshSnapshot", "MetricSeries",
    "ObjectDates", "Pod", "Proxy", "Reporter", "ResponseStat", "RouteDestination", "Security", "Service",
    "ServicePort", "ServiceRef", "SnapshotPart", "SourceLocation", "SourceState", "SourceStatus", "Span", "Trace",
    "UpstreamCluster", "UpstreamHost", "Workload", "WorkloadRef", "Write", "XdsReject", "XdsResource",
    "XdsSync", "freeze", "frozen_map", "frozen_strings", "istiod_labels", "thaw",
]
