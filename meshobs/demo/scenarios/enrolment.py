"""A university's course registration: students reach enrol-api through the ingress; enrolling
checks the student's record, the course's prerequisites (gRPC) and reserves a seat in the
section (section-capacity, with the timetable on PostgreSQL behind it, over TCP). A waitlist
worker polls section-capacity all day to move waitlisted students into freed seats.

Seven minutes before the spring-term registration window opened, the platform team applied an
EnvoyFilter that puts Envoy's local rate limit (``envoy.filters.http.local_ratelimit``) on
section-capacity's inbound sidecars, its token bucket sized from an ordinary day (40 tokens a
second per pod, 60 at most). The window opened 15 minutes ago: section-capacity's load went from
36 req/s (which passes) to 150 req/s, the level the previous window's opening served without a
limiter. Each of its three sidecars now refuses a fifth of the requests with 429 and response
flag RL (``local_rate_limited`` in the access log), before the application sees them; enrol-api
turns each refusal into a 503 for the student."""

from __future__ import annotations

from typing import Any

from ..author import Mesh, fqdn, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..traffic import LatencyProfile, Reported

HOST = "register.northbridge-uni.example"
OPENED_S = 900.0  # the registration window opened 15 minutes ago
FILTER_S = OPENED_S + 420.0  # the EnvoyFilter was applied 7 minutes before that
FILTER = "section-capacity-local-ratelimit"
STAT_PREFIX = "http_local_rate_limiter"

# The token bucket, per sidecar (a local rate limit is per Envoy, not per service).
TOKENS_PER_S = 40.0
MAX_TOKENS = 60
CAPACITY_PODS = 3

# Requests per second into section-capacity, before and since the window opened.
ENROL_BEFORE, ENROL_NOW = 30.0, 144.0
WAITLIST = 6.0
TOTAL_NOW = ENROL_NOW + WAITLIST  # 150 req/s: 50 per pod, 40 pass, 10 refused
REFUSED = 1.0 - TOKENS_PER_S * CAPACITY_PODS / TOTAL_NOW  # 0.2 of every caller's requests


def local_ratelimit_filter() -> dict[str, Any]:
    """The EnvoyFilter as the platform team wrote it (Istio's documented local rate limit
    pattern: an HTTP_FILTER inserted in the inbound HTTP connection manager)."""
    return resource("EnvoyFilter", "courses", FILTER, {
        "workloadSelector": {"labels": {"app": "section-capacity"}},
        "configPatches": [{
            "applyTo": "HTTP_FILTER",
            "match": {"context": "SIDECAR_INBOUND", "listener": {"filterChain": {"filter": {
                "name": "envoy.filters.network.http_connection_manager"}}}},
            "patch": {"operation": "INSERT_BEFORE", "value": {
                "name": "envoy.filters.http.local_ratelimit",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                    "stat_prefix": STAT_PREFIX,
                    "token_bucket": {"max_tokens": MAX_TOKENS, "tokens_per_fill": int(TOKENS_PER_S),
                                     "fill_interval": "1s"},
                    "filter_enabled": {"runtime_key": "local_rate_limit_enabled",
                                       "default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                    "filter_enforced": {"runtime_key": "local_rate_limit_enforced",
                                        "default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                    "response_headers_to_add": [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                                 "header": {"key": "x-local-rate-limit", "value": "true"}}],
                }}}}]})


def enrolment_rate_limited() -> Scenario:
    """section-capacity's sidecars rate-limit locally (40 req/s per pod) since an EnvoyFilter;
    the registration rush (150 req/s) gets 20 % 429 RL, students 503 from enrol-api."""
    return enrolment(FILTER_S)


def enrolment(filter_s: float, name: str = "enrolment-rate-limited") -> Scenario:
    """The mesh with the EnvoyFilter applied ``filter_s`` seconds before the scenario time (the
    library's: :data:`FILTER_S`, 7 minutes before the window opened; a test also builds it with
    the filter applied the evening before, to see what the diagnosis owes to the timing)."""
    applied = f"applied {filter_s / 60:.0f} min ago, {(filter_s - OPENED_S) / 60:.0f} min before"
    m = Mesh(name,
             "Course registration: an EnvoyFilter's local rate limit on section-capacity answers 20% 429 RL "
             "in the registration rush",
             f"EnvoyFilter courses/{FILTER} ({applied} the spring-term registration "
             "window opened) inserts envoy.filters.http.local_ratelimit in section-capacity's inbound "
             f"sidecars: a token bucket of {int(TOKENS_PER_S)} tokens a second per pod ({MAX_TOKENS} at most). "
             "Since the window opened 15 min ago, section-capacity's three pods get 150 req/s (36 before; "
             "the previous window's opening served as much without a limiter): each sidecar refuses a fifth "
             "with 429, response flag RL, response_code_details local_rate_limited "
             f"({STAT_PREFIX}.http_local_rate_limit.rate_limited), before the application sees them. enrol-api "
             "(144 req/s) answers students 503 for those; waitlist-worker's polls (6 req/s) get 429 too",
             ingress_host=f"{HOST}:8080")
    m.namespace("enrol")
    m.namespace("courses")
    m.namespace("people")
    gw = m.ingress_gateway(replicas=2)
    api = m.workload("enrol", "enrol-api", "v23", replicas=4)
    waitlist = m.workload("enrol", "waitlist-worker", "v7")
    capacity = m.workload("courses", "section-capacity", "v11", replicas=CAPACITY_PODS)
    prereq = m.workload("courses", "prereq-rules", "v5", replicas=2, port=9090)
    timetable = m.workload("courses", "timetable-db", "v15", port=5432, kind="StatefulSet", name="timetable-db")
    records = m.workload("people", "student-records", "v18", replicas=2)

    def rush(rps_before: float, p50: float, p99: float) -> Reported:
        return Reported(rps_before, (("200", "-", 1.0),), LatencyProfile(p50, p99))

    # Students: before the window, browsing; since, enrolling. A fifth fail with enrol-api's own 503.
    m.call(gw, api, ENROL_NOW, 70.0, 380.0, ("503", "-", REFUSED), ("404", "-", 0.004),
           onset_s_ago=OPENED_S, before=Reported(ENROL_BEFORE, (("200", "-", 0.996), ("404", "-", 0.004)),
                                                 LatencyProfile(60.0, 300.0)))
    # The refusals: 429 from section-capacity's own sidecar (RL on its side; the caller's
    # sidecar only relays a 429 the upstream answered, no flag). Answered in under a millisecond.
    rl_dest = Reported(ENROL_NOW, (("200", "-", 1.0 - REFUSED), ("429", "RL", REFUSED)), LatencyProfile(9.0, 48.0))
    m.call(api, capacity, ENROL_NOW, 11.0, 55.0, ("429", "-", REFUSED), dest=rl_dest,
           onset_s_ago=OPENED_S, before=rush(ENROL_BEFORE, 12.0, 50.0), before_dest=rush(ENROL_BEFORE, 11.0, 46.0))
    wl_dest = Reported(WAITLIST, (("200", "-", 1.0 - REFUSED), ("429", "RL", REFUSED)), LatencyProfile(9.0, 48.0))
    m.call(waitlist, capacity, WAITLIST, 11.0, 55.0, ("429", "-", REFUSED), dest=wl_dest,
           onset_s_ago=OPENED_S, before=rush(WAITLIST, 12.0, 50.0), before_dest=rush(WAITLIST, 11.0, 46.0))
    m.call(api, prereq, ENROL_NOW, 6.0, 30.0, protocol="grpc", grpc_statuses=("0",),
           onset_s_ago=OPENED_S, before=rush(ENROL_BEFORE, 6.0, 28.0))
    m.call(api, records, ENROL_NOW, 14.0, 90.0, onset_s_ago=OPENED_S, before=rush(ENROL_BEFORE, 14.0, 85.0))
    m.call(capacity, timetable, 40.0, 1.1, 9.0, protocol="tcp", tcp_bps=(420000.0, 160000.0))

    # The local rate limit's counters on each section-capacity sidecar: every request is checked
    # (enabled), enforced, and either ok or rate_limited; before the window all passed.
    per_pod_before = (ENROL_BEFORE + WAITLIST) / CAPACITY_PODS
    per_pod_now = TOTAL_NOW / CAPACITY_PODS
    limiter = f"{STAT_PREFIX}.http_local_rate_limit."
    for stat in ("enabled", "enforced"):
        m.count(capacity, limiter + stat, per_pod_before, filter_s)
        m.count(capacity, limiter + stat, per_pod_now - per_pod_before, OPENED_S)
    m.count(capacity, limiter + "ok", per_pod_before, filter_s)
    m.count(capacity, limiter + "ok", TOKENS_PER_S - per_pod_before, OPENED_S)
    m.count(capacity, limiter + "rate_limited", per_pod_now - TOKENS_PER_S, OPENED_S)

    m.apply(local_ratelimit_filter(), created_s_ago=filter_s)
    m.apply(resource("Gateway", "enrol", "registration-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}]}),
        created_s_ago=200 * 86400.0)
    m.apply(resource("VirtualService", "enrol", "enrol-api", {
        "hosts": [HOST], "gateways": ["registration-gateway"],
        "http": [{"route": [{"destination": {"host": fqdn("enrol-api", "enrol"), "port": {"number": 8080}}}],
                  "timeout": "10s"}]}), created_s_ago=200 * 86400.0)
    m.apply(resource("DestinationRule", "courses", "section-capacity", {
        "host": fqdn("section-capacity", "courses"),
        "trafficPolicy": {"connectionPool": {"http": {"http2MaxRequests": 1000}}}}), created_s_ago=200 * 86400.0)
    m.apply(resource("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}))
    return m.build(Expectation("rate-limited", target="enrol/enrol-api",
                               subjects=(f"EnvoyFilter courses/{FILTER}", "Service courses/section-capacity",
                                         "Workload courses/section-capacity-v11",
                                         "Edge enrol/enrol-api -> courses/section-capacity")))
