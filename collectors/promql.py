"""The PromQL the Prometheus collector sends, and Prometheus's own quantile arithmetic.

The whole mesh is read with the fixed set of queries below, whatever its size: aggregation
happens inside the server (``sum by``, ``histogram_quantile``), never one query per namespace or
service, and never by downloading raw series. A scoped question (``diagnose SERVICE``) sends the
same queries with label matchers narrowed to the neighbourhood (:func:`scope_matchers`), except
that its latency is one bucket query (:data:`LATENCY_BUCKETS`).

Every query reads either the metric Istio's proxies export (``istio_requests_total``) or, when the
server has them, the series of Istio's recommended recording rules (``workload:istio_requests_total``
= the same series summed over pods; see config/prometheus-recording-rules.yaml). The grouping
labels are identical in both, so the answers normalise the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from meshobs.model import ResponseStat, ServiceRef, WorkloadRef
from meshobs.model.traffic import GRPC_HTTP_EQUIVALENT, LOCAL_LIMIT

# Labels that identify an edge (and the nodes it joins) in every query.
EDGE_LABELS = (
    "reporter", "source_workload", "source_workload_namespace", "source_canonical_service",
    "source_canonical_revision", "destination_service_name", "destination_service_namespace",
    "destination_workload", "destination_workload_namespace", "destination_canonical_revision",
)
# Labels that exist only on some queries' series.
REQUEST_LABELS = (
    *EDGE_LABELS, "request_protocol", "response_code", "response_flags", "grpc_response_status",
    "connection_security_policy", "source_principal", "destination_principal",
)
# Quantiles are grouped by the edge key and the reporter only: the canonical service/revision
# labels already arrive with the requests query.
LATENCY_LABELS = (
    "reporter", "source_workload", "source_workload_namespace", "destination_service_name",
    "destination_service_namespace", "destination_workload", "destination_workload_namespace",
    "request_protocol",
)
TCP_LABELS = (*EDGE_LABELS, "connection_security_policy", "source_principal", "destination_principal")

# The prefix Istio's recording rules give the pod-aggregated copy of each family.
RECORDED_PREFIX = "workload:"
REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
TCP_SENT, TCP_RECEIVED, TCP_OPENED = ("istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total",
                                      "istio_tcp_connections_opened_total")
TCP_CLOSED = "istio_tcp_connections_closed_total"
# The families whose recorded copy is looked for (the histogram through its _count series: a
# twentieth of the _bucket series, and Istio's rules record both together).
RECORDED_FAMILIES = (REQUESTS, f"{DURATION}_count", TCP_SENT, TCP_RECEIVED, TCP_OPENED)
# meshobs's own recording rules (the group "meshobs.edges" of config/prometheus-recording-
# rules.yaml): the graph phase's counters summed to exactly the labels its edge queries keep, so
# ``rate()`` over them is the edges' rate without the labels that only multiply the series
# (reporter, code, flags, security, principals, pods). The server's cost of ``edges`` is the
# series it touches, not their samples (benchmarks/graph_query_cost.py: a shorter range or
# another aggregation costs the same), and the edge set is a fraction of the raw series: on the
# served generated-1000 mesh 2,087 of 5,388 (see benchmarks/results/live5k-edges-s22.md).
EDGE_PREFIX = "edge:"
EDGE_FAMILIES = (REQUESTS, TCP_SENT)
# One series the same group records (``vector(1)``): what the recording-rules check looks for
# instead of the edge series themselves. Selecting a series costs the server about as much as
# reading its window (measured on the served generated-5000 mesh: selecting the 18,999 edge
# series at one instant, 0.8 s; the whole edges query over 10,399 of them, 0.2-0.5 s), so a check
# over every edge series would cost what the rules save.
EDGE_MARKER = "edge:meshobs_rules"
# The shortest window the edge rules answer for. They are evaluated every 15 s
# (rules.EDGES_INTERVAL): rate() needs two of their samples in the window, and an edge that began
# within the last evaluation is not in them yet. Over a window of a few evaluations that is a
# missing edge or none at all (``--window 20s``: one sample, no edges, a silent mesh-wide run);
# shorter windows read the raw metrics.
EDGE_RULES_MIN_WINDOW_S = 60.0

GRAPH, SCOPED = "graph", "scoped"


def _by(labels: Iterable[str]) -> str:
    return ", ".join(labels)


@dataclass(frozen=True)
class Query:
    """One PromQL query of a snapshot: what it reads, how it groups, and in which phase it runs.

    ``phase`` is "graph" for the cheap mesh-wide queries a scoped question computes its
    neighbourhood from (:data:`GRAPH_QUERIES`: who calls whom, nothing else), "scoped" for the
    snapshot's queries (:data:`QUERIES`: narrowed to the neighbourhood in a scoped question's
    second phase, mesh-wide in any other run).
    ``quantile`` makes it a ``histogram_quantile`` over the family's buckets.
    """

    name: str
    family: str  # the metric as the proxies export it (without the recording-rule prefix)
    labels: tuple[str, ...]
    phase: str
    quantile: float | None = None
    selector: str = ""  # fixed matchers (range queries)
    # More sets of fixed matchers whose series are read too (PromQL ``or`` of the rates): what
    # one matcher set cannot say, e.g. a 5xx OR a failed gRPC status inside a 200 OR a 429 the
    # proxy's rate limit answered. Keep them disjoint (they are summed as one answer).
    also: tuple[str, ...] = ()
    # Matcher sets read too while the query fits in one query string with its neighbourhood's
    # matchers, dropped first when it would not (the scope is repeated in every set): a
    # refinement of what ``selector`` and ``also`` count (the proxy's rate-limit refusals among
    # the errors), never their substance (see collectors.prometheus.fetch._narrowed).
    spare: tuple[str, ...] = ()
    positive: bool = False  # drop idle series (``> 0``)
    buckets: bool = False  # the histogram's bucket rates summed by ``le`` and ``labels``
    edge_rule: bool = False  # may read meshobs's edge-level recorded copy (EDGE_FAMILIES)

    @property
    def selectors(self) -> tuple[str, ...]:
        """The fixed matcher sets, any of which selects a series (``selector``, then ``also``)."""
        return (self.selector, *self.also, *self.spare)

    @property
    def histogram(self) -> bool:
        """Reads the duration histogram's buckets (the heavy queries)."""
        return self.quantile is not None or self.buckets

    @property
    def into_only(self) -> bool:
        """Narrowed to traffic INTO the neighbourhood's services only (see :func:`scope_matchers`)."""
        return self.family == DURATION

    def metric(self, recorded: bool, edge: bool = False) -> str:
        base = f"{self.family}_bucket" if self.histogram else self.family
        if edge and self.edge_rule:
            return EDGE_PREFIX + base
        return RECORDED_PREFIX + base if recorded else base

    @property
    def rule_family(self) -> str:
        """The family in RECORDED_FAMILIES whose presence says this query may read recorded series."""
        return f"{self.family}_count" if self.histogram else self.family

    def render(self, window: str, *, recorded: bool = False, scope: tuple[str, ...] = (),
               edge: bool = False, lean: bool = False) -> str:
        """The PromQL over the rate window ``window`` (``5m``), narrowed to ``scope`` (each item
        a set of matchers, any of which selects a series; empty: the whole mesh). ``edge``: read
        the edge-level recorded series (see EDGE_FAMILIES), which carry exactly ``labels``.
        ``lean``: without the ``spare`` matcher sets."""
        metric = self.metric(recorded, edge)
        fixed_sets = (self.selector, *self.also) if lean else self.selectors
        sets = [",".join(m for m in (fixed, s) if m) for fixed in fixed_sets for s in scope] or list(fixed_sets)
        rates = " or ".join(f"rate({metric}{{{m}}}[{window}])" if m else f"rate({metric}[{window}])"
                            for m in sets)
        if len(sets) > 1:
            rates = f"({rates})"
        if self.buckets:
            return f"sum by (le, {_by(self.labels)}) ({rates})"
        if self.quantile is None:
            text = f"sum by ({_by(self.labels)}) ({rates})"
            return text + " > 0" if self.positive else text
        # No "> 0" here: a bucket missing from the sum would move histogram_quantile's bounds.
        return f"histogram_quantile({self.quantile:g}, sum by (le, {_by(self.labels)}) ({rates}))"


# The instant queries of a snapshot, by name (the payload key is "query:<name>").
#
# Latency is computed by the server: three histogram_quantile queries (p50, p90, p99 per edge and
# reporter) instead of every bucket series. Measured on a generated 1,000-service mesh held by a
# real Prometheus (benchmarks/bench_prometheus.py; 2 shared cores): the bucket query answered
# 83,480 series, 28 MB of JSON that meshobs then had to decode (seconds of Python); one quantile
# query answers 4,174 series, 1.4 MB. PromQL cannot share the inner rate() between quantiles, so
# the server evaluates the buckets' rate once per quantile (each about what the bucket query cost
# it); they run concurrently. A scoped question sends LATENCY_BUCKETS instead. The choice of
# reporter (source's, else destination's) stays in normalize, where it is made per edge from the
# requests' answer.
QUERIES: dict[str, Query] = {q.name: q for q in (
    Query("requests", REQUESTS, REQUEST_LABELS, SCOPED, positive=True),
    Query("latency_p50", DURATION, LATENCY_LABELS, SCOPED, quantile=0.5),
    Query("latency_p90", DURATION, LATENCY_LABELS, SCOPED, quantile=0.9),
    Query("latency_p99", DURATION, LATENCY_LABELS, SCOPED, quantile=0.99),
    Query("tcp_sent", TCP_SENT, TCP_LABELS, SCOPED, positive=True),
    Query("tcp_received", TCP_RECEIVED, TCP_LABELS, SCOPED, positive=True),
    Query("tcp_opened", TCP_OPENED, TCP_LABELS, SCOPED, positive=True),
)}
LATENCY_QUERIES = ("latency_p50", "latency_p90", "latency_p99")

# The graph phase of a scoped question (``diagnose SERVICE``): which workload calls which service,
# and nothing else. The neighbourhood is computed from these edges alone (meshobs.neighbourhood:
# callers, callees, the workloads of each), so the labels that split an edge's series by how its
# requests ended (code, flag, security, principals) and by who reported them are summed away in
# the server; the scoped phase then reads ``requests`` and ``tcp_sent`` in full, narrowed to the
# neighbourhood, as it reads latency. Measured on the served generated-5000 mesh: the full
# ``requests`` answer is 27,024 series / 17 MB and ``tcp_sent`` 17,200 / 9.6 MB, every one of them
# decoded and read by meshobs before the service could even be looked up (see
# benchmarks/results/live5k4.md). The reporter is summed away too (half the series): a rate of
# this answer counts a request once per proxy that saw it, so nothing but the edge set is read
# from it. Never sent mesh-wide (``--all``, snapshot): those read the full queries above.
EDGE_KEY_LABELS = ("source_workload", "source_workload_namespace", "source_canonical_service",
                   "destination_service_name", "destination_service_namespace",
                   "destination_workload", "destination_workload_namespace")
ERROR_CODES = 'response_code=~"5..|0"'  # what Edge.error_rate counts: 5xx and no response
# ... and the gRPC calls that failed inside a response code ERROR_CODES does not select (gRPC
# answers in an HTTP 200): the statuses whose HTTP equivalent (meshobs.model.traffic.
# GRPC_HTTP_EQUIVALENT) is a 5xx. Read with ``also`` (an ``or``); the response_code matcher keeps
# the two sets disjoint (a 503 with status 14 is ERROR_CODES's). HTTP series carry no
# grpc_response_status: the server's index answers the matcher with the gRPC series alone.


def _grpc_statuses(failed: Callable[[ResponseStat], bool]) -> str:
    """The gRPC statuses (a regex alternation) that ``failed`` says failed inside an HTTP 200:
    derived from the model's table, never restated."""
    return "|".join(s for s in sorted(GRPC_HTTP_EQUIVALENT, key=int) if failed(ResponseStat("200", "-", 0.0, s)))


GRPC_ERRORS = f'grpc_response_status=~"{_grpc_statuses(lambda r: r.is_error)}",response_code!~"5..|0"'
# ... and the requests the proxy's local rate limit refused (429 with flag RL: ResponseStat.
# is_error), kept apart from GRPC_ERRORS by their status (a gRPC call so refused is answered
# 200 with UNAVAILABLE, GRPC_ERRORS's).
LIMITED = (f'response_code="429",response_flags=~"(.*,)?{LOCAL_LIMIT}(,.*)?",'
           f'grpc_response_status!~"{_grpc_statuses(lambda r: r.is_error)}"')
# What the ranking walk counts as a failed call (meshobs.callgraph.failed, not imported here: it
# brings the checks): errors and refusals, gRPC's refusals (7 PERMISSION_DENIED = 403,
# 16 UNAUTHENTICATED = 401) among them.
FAILED_CODES = 'response_code=~"5..|0|401|403"'
FAILED_GRPC = (f'grpc_response_status=~"{_grpc_statuses(lambda r: r.is_error or r.http_equivalent in ("401", "403"))}",'
               'response_code!~"5..|0|401|403"')
GRAPH_QUERIES: dict[str, Query] = {q.name: q for q in (
    # The protocol stays: an HTTP and a TCP edge between the same two are two edges.
    # Both read meshobs's edge-level recorded series when the server has them (EDGE_FAMILIES):
    # the same edge set from a fraction of the series.
    Query("edges", REQUESTS, (*EDGE_KEY_LABELS, "request_protocol"), GRAPH, positive=True, edge_rule=True),
    # TCP edges are edges of the graph too (a service calling a data store over TCP). Bytes
    # sent, not connections opened: a long-lived connection opens none in the window.
    Query("tcp_edges", TCP_SENT, EDGE_KEY_LABELS, GRAPH, positive=True, edge_rule=True),
    # Which of those edges carried failed calls (5xx, no response, 401/403), and how they ended:
    # the neighbourhood asks the proxies of a service's callers from outside it in full only for
    # a service calls failed into (meshobs.neighbourhood). The response_code matcher is answered
    # from the server's index, so only the failing series are read: measured on the served
    # generated-5000 mesh, milliseconds against the seconds of ``edges`` (see
    # benchmarks/results/live5k-s21.md).
    # gRPC calls failed inside an HTTP 200 too (FAILED_GRPC, the second matcher set).
    Query("failing", REQUESTS, (*EDGE_KEY_LABELS, "request_protocol", "response_code", "response_flags",
                                "grpc_response_status"), GRAPH, selector=FAILED_CODES, also=(FAILED_GRPC, LIMITED),
          positive=True),
    # The same for TCP, whose connections carry no status code: those that ended with an Envoy
    # flag (UF, UO, UH...: refused, overflowing, no healthy upstream), counted when they close.
    Query("tcp_failing", TCP_CLOSED, (*EDGE_KEY_LABELS, "response_flags"), GRAPH,
          selector='response_flags!="-"', positive=True),
)}
# The graph phase's queries whose answers ARE the edge set (the other two only mark edges as
# failing): without one of them the neighbourhood would be drawn from part of the graph.
GRAPH_EDGE_QUERIES = ("edges", "tcp_edges")
assert set(GRAPH_EDGE_QUERIES) <= set(GRAPH_QUERIES)

# The latency of a neighbourhood (the scoped phase of ``diagnose SERVICE``): ONE query for the
# buckets, the three quantiles computed here by histogram_quantile (Prometheus's arithmetic, see
# below; the normaliser reads this key as buckets). Each histogram_quantile query makes the server
# read and rate() the same buckets again. Measured on the served generated-1000 mesh (Prometheus
# 2.42, 2 cores shared, load 7-8), neighbourhood of ns-03/web-0083 (30 services with HTTP
# latency, 205,800 samples): three quantile queries sent concurrently took 4.05 s median (5 runs),
# one bucket query plus JSON decoding and the quantiles here 1.69 s (7,840 series, 2.6 MB, 0.05 s
# of decoding), a third of the server's CPU. Mesh-wide the bucket answer is 83k series and 28 MB
# (see above), so a mesh-wide question, or a neighbourhood too large to narrow to, keeps the
# three quantile queries.
LATENCY_BUCKETS = Query("latency", DURATION, LATENCY_LABELS, SCOPED, buckets=True)
TCP_QUERIES = ("tcp_sent", "tcp_received", "tcp_opened")

# -- istiod's own metrics ---------------------------------------------------------------------
# One query answers everything the control-plane checks read of istiod, for every replica: each
# branch is tagged with a "meshobs" label saying which metric it is (rate() drops the metric
# name). istiod's pods are scraped from :15014 with the pod's namespace and name as labels
# ("namespace"/"pod" in Istio's sample config and the Prometheus Operator, "kubernetes_*" in
# older configs); "instance" tells replicas apart where neither is set.
CONTROL_PLANE = "controlplane"
ISTIOD_LABELS = ("namespace", "pod", "kubernetes_namespace", "kubernetes_pod_name", "instance")
REJECT_TYPES = ("cds", "eds", "lds", "rds")


def control_plane_query(window: str) -> str:
    """The PromQL of the control-plane query over the rate window ``window``: pushes and failed
    sends per xDS type (``pilot_xds_pushes{type=~".*_senderr"}``), rejects, push context errors,
    the per-proxy reject gauges, connected proxies by version, convergence p99 and the build."""
    by = _by(ISTIOD_LABELS)

    def tag(expr: str, name: str) -> str:
        return f'label_replace({expr}, "meshobs", "{name}", "", "")'

    branches = [
        tag(f"sum by ({by}, type) (rate(pilot_xds_pushes[{window}]))", "pushes"),
        tag(f"sum by ({by}, type) (rate(pilot_total_xds_rejects[{window}]))", "rejects"),
        tag(f"sum by ({by}) (rate(pilot_xds_push_context_errors[{window}]))", "push_context_errors"),
        *(tag(f"max by ({by}, node, err) (pilot_xds_{t}_reject)", f"reject_{t}") for t in REJECT_TYPES),
        tag(f"sum by ({by}, version) (pilot_xds)", "connected"),
        tag(f"histogram_quantile(0.99, sum by ({by}, le) (rate(pilot_proxy_convergence_time_bucket[{window}])))",
            "convergence_p99"),
        tag(f'max by ({by}, tag) (istio_build{{component="pilot"}})', "build"),
    ]
    return " or ".join(branches)


# Istio's default request-duration buckets (milliseconds).
ISTIO_DURATION_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000,
                             60000, 300000, 600000, 1800000, 3600000)


def render(name: str, window: str, *, recorded: bool = False, scope: tuple[str, ...] = ()) -> str:
    """The PromQL of instant query ``name`` over the rate window ``window`` (``5m``)."""
    return QUERIES[name].render(window, recorded=recorded, scope=scope)


def recorded_names() -> tuple[str, ...]:
    """Every recorded series name the recording-rules check looks for: Istio's
    (RECORDED_FAMILIES) and the marker of meshobs's edge rules (EDGE_MARKER)."""
    return (*(RECORDED_PREFIX + f for f in RECORDED_FAMILIES), EDGE_MARKER)


def rules_query(window: str) -> str:
    """Which recording-rule families the server has, present since the window began (a rule
    installed minutes ago would under-count the window's rate). Reads only the requests, _count
    and TCP series at one instant: a small fraction of one rate() query's work."""
    names = "|".join(recorded_names())
    return f'group by (__name__) ({{__name__=~"{names}"}} offset {window})'


# -- the neighbourhood as label matchers ------------------------------------------------------

_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def _alternatives(names: Iterable[str], compact: bool = False) -> str:
    """``a|b\\.c`` as a PromQL double-quoted string body (regex-escaped, then string-escaped);
    ``compact``: the same set as a prefix tree (:func:`_prefix_tree`)."""
    unique = sorted(set(names))
    regex = _prefix_tree(unique) if compact else "|".join(_REGEX_SPECIAL.sub(r"\\\1", n) for n in unique)
    return regex.replace("\\", "\\\\").replace('"', '\\"')


_Tree = dict[str, "_Tree"]  # one character per level; "" marks the end of a name


def _prefix_tree(names: list[str]) -> str:
    """A regex matching exactly ``names`` (anchored, as PromQL's ``=~`` is), their shared
    prefixes written once: ``svc-0305-v1|svc-0305-v2|svc-0306-v1`` is ``svc-030(5-v(1|2)|6-v1)``.

    A big neighbourhood's workload names (605 of them at 5,000 services, ``svc-0305-v1``...) are
    7.3 kB as a plain alternation, past what one query string may hold (MAX_QUERY_CHARS in the
    fetch), and the queries then went mesh-wide; as a tree they are about half of that. Plain
    alternations stay the default: Prometheus looks the names of ``a|b|c`` up directly, while a
    tree is matched against every value of the label (one regex match per workload name of the
    mesh, against reading every series when the query goes mesh-wide)."""
    tree: _Tree = {}
    for name in names:
        node = tree
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}  # a name ends here
    return _render_tree(tree)[0]


def _render_tree(node: _Tree) -> tuple[str, bool]:
    """The regex of the suffixes below ``node``, and whether it is a bare alternation (which
    needs a group before anything is put in front of it)."""
    branches = []
    for ch, child in sorted(node.items()):
        if not ch:
            continue
        prefix = _REGEX_SPECIAL.sub(r"\\\1", ch)
        while len(child) == 1 and "" not in child:  # a chain of single children: no group
            ((ch, child),) = child.items()
            prefix += _REGEX_SPECIAL.sub(r"\\\1", ch)
        rest, bare = _render_tree(child)
        branches.append(prefix + (f"({rest})" if bare else rest))
    if "" in node:  # a name ends here: the rest is optional
        return (f"({'|'.join(branches)})?" if branches else ""), False
    return "|".join(branches), len(branches) > 1


def scope_matchers(services: Iterable[ServiceRef], workloads: Iterable[WorkloadRef],
                   compact: bool = False) -> tuple[str, ...]:
    """Matcher sets selecting every series that touches the neighbourhood: traffic INTO one of
    its services (what the service's callers see) or FROM one of its workloads (what they see of
    their callees, including TCP-only ones such as databases that no request series names).

    The duration histogram (``Query.into_only``) is narrowed with the INTO set alone: every
    reader of latency judges a callee from the edges into it (traffic.latency, the retries and
    timeout checks, the root-cause walk's hop evidence, the timeline's p99 per service), and every
    callee of a neighbourhood workload is itself in the neighbourhood (it is everything
    downstream). The FROM set adds only the callers' edges to the rest of the mesh -- at a front
    end, whose 96 downstream services are shared by callers all over a 1,000-service mesh, 76 %
    of the samples (668k of 874k per quantile query) for latency nobody reads, and per service
    (the p99 history) a partial p99 of services outside the neighbourhood.

    One set per side, names and namespaces as two alternations: ``cart`` in ``shop`` and
    ``ledger`` in ``pay`` also select ``pay/cart`` if it exists. That costs a few extra, correct,
    edges; a set per namespace would be exact but every ``or`` branch is another selector for
    the server to evaluate and merge (measured on 100 services: 0.25 s instead of 0.17 s per
    quantile query). The sets are joined with ``or``, which keeps a series matched twice once.
    ``compact`` writes each alternation as a prefix tree (:func:`_prefix_tree`): the same
    series, in about half the characters, for a neighbourhood too big for plain alternations.
    """
    out: list[str] = []
    for label_ns, label_name, refs in (
            ("destination_service_namespace", "destination_service_name", list(services)),
            ("source_workload_namespace", "source_workload", list(workloads))):
        if refs:
            out.append(f'{label_ns}=~"{_alternatives((r.namespace for r in refs), compact)}",'
                       f'{label_name}=~"{_alternatives((r.name for r in refs), compact)}"')
    return tuple(out)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """Prometheus 2.x ``histogram_quantile`` over (upper bound, cumulative count) pairs.

    Same steps as ``bucketQuantile`` in promql/quantile.go: sort, require a +Inf bucket,
    merge equal bounds, force counts monotonic, then interpolate linearly inside the bucket
    that holds the rank (the lowest bucket starts at 0; a rank in +Inf answers the highest
    finite bound). NaN when there are no observations.

    The collector asks the server for quantiles; this is for bundles recorded when it still
    downloaded buckets, and for the demo's analytic answers, which must equal the server's.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    highest = -math.inf
    for b in merged:  # ensureMonotonic
        if b[1] > highest:
            highest = b[1]
        elif b[1] < highest:
            b[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    idx = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if idx == len(merged) - 1:
        return merged[-2][0]
    if idx == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[idx][0], merged[idx][1]
    if idx > 0:
        start = merged[idx - 1][0]
        count -= merged[idx - 1][1]
        rank -= merged[idx - 1][1]
    if count == 0:  # q == 0 over an empty first bucket: Go's 0/0
        return math.nan
    return start + (end - start) * (rank / count)


# -- history over the window (sparklines, RED over time) --------------------------------------
# Three range queries per snapshot, whatever the mesh size, grouped by destination service.
# They read destination-reported series only: a sparkline shows what each service served; the
# requests that never reached a destination are in the instant edges above. The p99 is the
# server's histogram_quantile per step (the buckets per step were 20x the answer).
SERIES_LABELS = ("destination_service_name", "destination_service_namespace")
SERIES_POINTS = 20
RANGE_QUERIES: dict[str, Query] = {q.name: q for q in (
    Query("requests", REQUESTS, SERIES_LABELS, SCOPED, selector='reporter="destination"'),
    Query("errors", REQUESTS, SERIES_LABELS, SCOPED, selector=f'reporter="destination",{ERROR_CODES}',
          also=(f'reporter="destination",{GRPC_ERRORS}',), spare=(f'reporter="destination",{LIMITED}',)),
    Query("latency_p99", DURATION, SERIES_LABELS, SCOPED, quantile=0.99, selector='reporter="destination"'),
)}


def series_step_s(window_s: float) -> float:
    """Seconds between history points: the window in SERIES_POINTS steps, at least 15 s."""
    return max(15.0, window_s / SERIES_POINTS)


def series_rate_window_s(window_s: float) -> float:
    """The rate() range inside a history query: two steps, at least a minute, so every point
    sees several scrapes."""
    return max(60.0, 2 * series_step_s(window_s))


def render_range(name: str, window_s: float, *, recorded: bool = False, scope: tuple[str, ...] = (),
                 lean: bool = False) -> str:
    """The PromQL of range query ``name`` for a snapshot window of ``window_s`` seconds."""
    from meshobs.durations import format_duration

    return RANGE_QUERIES[name].render(format_duration(series_rate_window_s(window_s)),
                                      recorded=recorded, scope=scope, lean=lean)


# -- the longer history "what changed" reads (meshobs.timeline) -------------------------------
# When did each symptom start? Three range queries over the last hour (HISTORY_S, or 12 rate
# windows when the window is longer), one point per scrape-sized step: request and error rates
# per edge and reporter -- a circuit breaker's 503s exist only in the caller's view, a fault on
# one caller's edge shows first there -- and each service's p99 as it served it. Aggregated by the
# server like every query here; in a scoped question narrowed to the neighbourhood.
HISTORY_S = 3600.0
HISTORY_WINDOWS = 12  # a --window longer than HISTORY_S / 12 lengthens the history
HISTORY_POINTS = 240  # steps across the history: 15 s over an hour
HISTORY_LABELS = ("reporter", "source_workload", "source_workload_namespace",
                  "destination_service_name", "destination_service_namespace")
HISTORY_QUERIES: dict[str, Query] = {q.name: q for q in (
    Query("requests", REQUESTS, HISTORY_LABELS, SCOPED),
    Query("errors", REQUESTS, HISTORY_LABELS, SCOPED, selector=ERROR_CODES, also=(GRPC_ERRORS,), spare=(LIMITED,)),
    Query("latency_p99", DURATION, SERIES_LABELS, SCOPED, quantile=0.99, selector='reporter="destination"'),
)}


def history_span_s(window_s: float, configured_s: float | None = None) -> float:
    """How far back the history reaches: ``history.span`` when set, else an hour or 12 windows."""
    if configured_s is not None:
        return configured_s
    return max(HISTORY_S, HISTORY_WINDOWS * window_s)


def history_step_s(span_s: float) -> float:
    """Seconds between history points: HISTORY_POINTS across the span, at least a scrape (15 s)."""
    return max(15.0, span_s / HISTORY_POINTS)


def history_rate_window_s(step_s: float) -> float:
    """The rate() range of the history queries: two steps, at least a minute (so every point
    sees several scrapes)."""
    return max(60.0, 2 * step_s)


def render_history(name: str, span_s: float, *, recorded: bool = False, scope: tuple[str, ...] = (),
                   lean: bool = False) -> str:
    """The PromQL of history query ``name`` for a history of ``span_s`` seconds."""
    from meshobs.durations import format_duration

    rate_window = history_rate_window_s(history_step_s(span_s))
    return HISTORY_QUERIES[name].render(format_duration(rate_window), recorded=recorded, scope=scope, lean=lean)
