"""Which inputs a snapshot can feed to the checks, and why not when it cannot.

An input is one kind of data, as finely as the sources differ in what they deliver: Jaeger's
dependency links give the service *graph* (who calls whom, call counts) but no response codes,
latency or mTLS, so they never stand in for *requests*, *latency* or *security* -- a check
judging error rates on call counts would pass on no evidence.

An input is available when a source of a kind that provides it delivered it in this run. A
source that answered in part says so per input (``SourceStatus.inputs``: Prometheus answering
the request rates but timing out on the latency quantiles); otherwise a source in state ok
delivered everything its kind provides. A check whose input is missing is *skipped* with the
reason (which source, what went wrong), never passed on empty data.
"""

from __future__ import annotations

from collections.abc import Callable

from meshobs.callgraph import answered as answered
from meshobs.callgraph import partial as _partial
from meshobs.model import MeshSnapshot, Security, SourceState, SourceStatus

# input -> (source kinds that provide it, words for a person)
INPUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "pods": (("kubernetes",), "pod data"),
    # Who calls whom: any traffic source, Jaeger's dependency links included.
    "graph": (("prometheus", "cloudwatch", "xray", "jaeger"), "service graph"),
    # Request rates by response code (and Envoy flag where the source has them).
    "requests": (("prometheus", "cloudwatch", "xray"), "request metrics"),
    "latency": (("prometheus", "cloudwatch", "xray"), "latency metrics"),
    # How bytes travelled (Istio's connection_security_policy).
    "security": (("prometheus",), "connection security metrics"),
    "proxies": (("envoy",), "proxy data"),
    "certs": (("envoy",), "certificate data"),
    "config": (("kubernetes", "manifests", "appmesh"), "mesh configuration"),
    "traces": (("jaeger", "xray"), "traces"),
    # istiod: its endpoints (readiness, syncz) and its pilot_* metrics. (Its pods' readiness,
    # from Kubernetes, is used when present but says nothing of pushes or proxies.)
    "control_plane": (("istiod", "prometheus"), "control-plane data"),
    # The longer metric history (an hour, per edge and reporter) onsets are read from.
    "history": (("prometheus",), "metric history"),
}

# Does the snapshot hold this input's data at all? (For snapshots built without statuses, and
# for a failed source whose data partly arrived, e.g. some Envoy pods.)
_HAS_DATA: dict[str, Callable[[MeshSnapshot], bool]] = {
    "pods": lambda s: bool(s.pods),
    "graph": lambda s: bool(s.edges),
    "requests": lambda s: any(e.responses for e in s.edges),
    "latency": lambda s: any(e.latency is not None for e in s.edges),
    "security": lambda s: any(e.security is not Security.UNKNOWN for e in s.edges),
    "proxies": lambda s: bool(s.proxies),
    "certs": lambda s: bool(s.certs),
    "config": lambda s: bool(s.config),
    "traces": lambda s: bool(s.traces),
    "control_plane": lambda s: s.control_plane.known,
    "history": lambda s: s.history is not None and bool(s.history.signals),
}


def delivered(status: SourceStatus, name: str) -> str | None:
    """None when ``status``'s source delivered input ``name`` in this run, else why not."""
    if name in status.inputs:
        return status.inputs[name]  # type: ignore[no-any-return]
    if status.state is SourceState.OK:
        return None
    return "answered with no data" if status.state is SourceState.NO_DATA else "failed"


def availability(snapshot: MeshSnapshot) -> dict[str, str | None]:
    """input -> None when available, else the reason it is not (names the source and its error)."""
    out: dict[str, str | None] = {}
    for name, (kinds, words) in INPUTS.items():
        statuses = [s for s in snapshot.sources if s.kind in kinds]
        reasons = [(s, delivered(s, name)) for s in statuses]
        if any(r is None for _s, r in reasons):
            out[name] = None
            continue
        has_data = _HAS_DATA[name](snapshot)
        if has_data and (not statuses or any(
                s.state is SourceState.ERROR and name not in s.inputs for s in statuses)):
            # No status to judge by (a hand-built snapshot), or a failed source whose data
            # partly arrived (some Envoy pods answered).
            out[name] = None
        elif not statuses:
            out[name] = f"no {words}: no {' / '.join(kinds)} source configured"
        elif specific := [(s, r) for s, r in reasons if _partial(s)]:
            # Part of the source answered: say exactly what is missing ("query latency_p99 timed
            # out after 10 s"); the Sources section cannot say which checks that costs.
            out[name] = f"no {words}: " + "; ".join(f"{s.name}: {r}" for s, r in specific[:2])
        else:
            # The source's own error is in the report's Sources section: name it, don't repeat it.
            names = ", ".join(s.name for s in statuses[:2])
            more = f" and {len(statuses) - 2} more" if len(statuses) > 2 else ""
            verb = "answered with no data" if all(s.state is SourceState.NO_DATA for s in statuses) else "failed"
            out[name] = f"no {words}: {names}{more} {verb} (see Sources)"
    return out


def missing(needs: tuple[str, ...], available: dict[str, str | None]) -> str | None:
    """The reason a check with these needs cannot run, or None. ``a|b`` needs either."""
    reasons: list[str] = []
    for need in needs:
        options = need.split("|")
        if any(available.get(o, f"unknown input {o}") is None for o in options):
            continue
        reasons.append(" and ".join(str(available.get(o, f"unknown input {o}")) for o in options))
    return "; ".join(reasons) if reasons else None


def data_gap(needs: tuple[str, ...], available: dict[str, str | None], snapshot: MeshSnapshot) -> bool:
    """Is a need missing although a source that provides it is configured (it answered with
    nothing, failed, or answered in part)? Then the check ran into a gap in the data, not into
    a set-up without that source: the run could not check it."""
    # Built once per snapshot: every proxy is a source, and --all asks this of every service.
    present = snapshot.derived("source_kinds", lambda snap: frozenset(s.kind for s in snap.sources))
    for need in needs:
        options = need.split("|")
        if any(available.get(o, "unknown") is None for o in options):
            continue
        if any(kind in present for o in options for kind in INPUTS.get(o, ((), ""))[0]):
            return True
    return False
