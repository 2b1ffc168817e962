"""Instant-query answers -> the edges of the service graph, the nodes they imply, the status.

``normalize`` turns the answers of :mod:`.fetch`'s instant queries into Edges plus the Workloads
and Services their labels imply; the range queries go to :mod:`.history`. Pure: no I/O.

How the two reporters are merged, per edge (source workload, destination service, destination
workload, protocol):

* Rate, responses (code x response flag) and latency come from ONE reporter, never the sum of
  both (that would double-count every request): the source proxy's series when there are any
  (the caller's experience, which includes retries' outcome, client-side timeouts and local
  503s), otherwise the destination proxy's (a caller without a sidecar, e.g. traffic from
  outside the mesh, only shows up there). The edge's ``reporter`` says which one was used,
  ``BOTH`` when both proxies saw the edge.
* Requests that never reached a destination exist only in source-reported series with
  ``destination_workload="unknown"``; they become an edge with ``destination_workload=None``.
* Security comes only from destination-reported series (``connection_security_policy`` is
  meaningful only there): plaintext if any destination-reported traffic arrived as ``none``,
  mutual TLS if all of it was ``mutual_tls``, unknown otherwise.
* Principals: the first known value from either reporter.
* When both reporters saw the edge, the destination's own responses and latency are kept
  beside the caller's (``Edge.destination_responses`` / ``destination_latency``): the callee's
  own errors behind the caller's retries, ``0 DC`` behind a caller's ``504 UT``.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import repeat
from typing import Any

import msgspec

from meshobs.model import SnapshotPart, SourceState, frozen_map
from meshobs.raw import Payload, RawSource

from ..base import NormalizeContext
from ..promql import CONTROL_PLANE, EDGE_PREFIX, GRAPH_QUERIES, LATENCY_QUERIES, QUERIES
from .history import add_history
from .history_series import read_history
from .reading import Reading
from .status import LEGACY_LATENCY, Answers, source_status


def _series(payload: Payload) -> list[dict[str, Any]]:
    """The result series of one query payload (body as fetched, or a full API envelope)."""
    return _checked(payload.key, payload.json())


def _checked(key: str, data: Any) -> list[dict[str, Any]]:
    """The result series of one payload's parsed body, each checked (:func:`check_series`);
    ValueError naming the payload ``key`` when the body is not an instant vector."""
    if isinstance(data, dict) and "status" in data:  # a full /api/v1/query response
        if data["status"] == "error":
            raise ValueError(f"{key}: Prometheus error: {data.get('error', 'unknown')}")
        data = data.get("data") or {}
    if isinstance(data, dict):
        if data.get("resultType", "vector") != "vector":
            raise ValueError(f"{key}: expected an instant vector, got {data['resultType']}")
        data = data.get("result", [])
    if not isinstance(data, list):
        raise ValueError(f"{key}: expected a list of series, got {type(data).__name__}")
    for i, s in enumerate(data):
        if not isinstance(s, dict) or "value" not in s:
            raise ValueError(f"{key}: a series without an instant value (a range result?)")
        check_series(key, i, s, "value")
    return data


class _Series(msgspec.Struct, gc=False):
    """One series of an instant vector as the HTTP API writes it: the fields read, nothing else."""

    metric: dict[str, str]
    value: tuple[float, str]


class _Vector(msgspec.Struct, gc=False):
    """An instant-query answer's body (``{"resultType": "vector", "result": [...]}``); ``status``
    is set only in a full API envelope, which the generic path reads."""

    resultType: str = "vector"  # the API's field name
    result: list[_Series] = []
    status: Any = msgspec.UNSET


_VECTOR = msgspec.json.Decoder(_Vector)


def _samples(payload: Payload) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of each series of one instant-query payload, as :func:`_series` checks
    them. The body is decoded straight into the fields read, typed, which checks them as it
    goes (a big mesh's answers hold hundreds of thousands of series); anything the typed decoder
    refuses or cannot judge (an envelope, a number where the API writes a string, a value that is
    not a number, malformed JSON) is read by the generic path, whose checks name the problem."""
    if payload.decoded is None and payload.body is not None:
        try:
            answer = _VECTOR.decode(payload.body)
        except msgspec.DecodeError:
            answer = None
        if answer is not None and answer.status is msgspec.UNSET and answer.resultType == "vector":
            try:
                return [(s.metric, float(s.value[1])) for s in answer.result]
            except ValueError:
                pass
    data = payload.json()
    plain = _plain_samples(data)
    return plain if plain is not None else [(s["metric"], float(s["value"][1])) for s in _checked(payload.key, data)]


def _plain_samples(data: Any) -> list[tuple[dict[str, str], float]] | None:
    """(labels, value) of each series of an answer as the client decoded it, read in one loop
    when every series is exactly what the HTTP API writes (labels a mapping of strings, the
    value ``[time, "number"]``); None at the first one that is not, for :func:`_checked` to
    read and name. The same pairs as that generic path, without a call per series to check
    it: the graph phase's edge answers hold ~100k series at 5,000 services, read under the
    interpreter lock while the question waits for them."""
    if type(data) is not dict or "status" in data or data.get("resultType", "vector") != "vector":
        return None
    result = data.get("result", [])
    if type(result) is not list:
        return None
    out: list[tuple[dict[str, str], float]] = []
    append = out.append
    try:
        for series in result:
            labels, value = series["metric"], series["value"]
            if (type(labels) is not dict or type(value) is not list or len(value) != 2
                    or type(value[0]) not in _TIMES or type(value[1]) is not str
                    or not all(map(isinstance, labels.values(), repeat(str)))):
                return None
            append((labels, float(value[1])))
    except (KeyError, TypeError, ValueError):
        return None
    return out


_TIMES = (float, int)  # a sample's time as JSON decodes it


def _sample(value: Any) -> bool:
    """``[time, "number"]`` as the HTTP API writes a sample ("NaN" and "+Inf" included)."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return False
    try:
        float(value[0])
        float(value[1])
    except (TypeError, ValueError):
        return False
    return not isinstance(value[1], bool)


def check_series(key: str, i: int, series: dict[str, Any], field: str) -> None:
    """Raise ValueError naming the payload, the series and the field when a series is not what
    the HTTP API sends: labels a mapping of strings, ``value`` one sample, ``values`` a list."""
    labels = series.get("metric")
    # map() keeps the per-item loops in C: a big mesh's answers hold millions of labels and samples.
    if not isinstance(labels, dict) or not all(map(isinstance, labels.values(), repeat(str))):
        raise ValueError(f"{key}: series {i}: 'metric' is not a mapping of label strings")
    samples = [series.get(field)] if field == "value" else series.get(field)
    if not isinstance(samples, list) or not all(map(_sample, samples)):
        raise ValueError(f"{key}: series {i}: '{field}' is not [time, number]" + ("" if field == "value" else " pairs"))


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Query results -> Edges, Workloads, Services and the ``prometheus`` SourceStatus."""
    reading = Reading()
    names = _names(raw)
    for name in names:
        payload = raw.get(f"query:{name}")
        if payload is not None and payload.failure() is None:
            reading.read(name, _samples(payload))
    return _part(raw, ctx, reading, names)


def _names(raw: RawSource) -> list[str]:
    """The instant queries to read, in order."""
    # Bundles recorded before the server computed quantiles hold the buckets ("query:latency").
    legacy = raw.get(f"query:{LEGACY_LATENCY}") is not None
    names = [n for n in QUERIES if not (legacy and n in LATENCY_QUERIES)]
    return _graph_names(raw) + names + ([LEGACY_LATENCY] if legacy else [])


def _graph_names(raw: RawSource) -> list[str]:
    """The graph phase's edge queries (GRAPH_QUERIES), read only while the source has nothing
    better: once a question's scoped phase has added ``requests`` and ``tcp_sent`` (answered or
    failed), those are the edges, with their codes and flags. Reading both would give an edge
    outside the neighbourhood with requests of unknown outcome, which no mesh-wide run has; and
    a failed ``requests`` is that input's "could not check", not the graph's rates standing in."""
    if any(raw.get(f"query:{n}") is not None for n in ("requests", "tcp_sent")):
        return []
    return [n for n in GRAPH_QUERIES if raw.get(f"query:{n}") is not None]


def _part(raw: RawSource, ctx: NormalizeContext, reading: Reading, names: list[str]) -> SnapshotPart:
    """The SnapshotPart of a reading of ``raw``'s instant queries ``names``, with the rest of
    ``raw`` (istiod's metrics, the range queries) and the source's status."""
    answers = Answers()
    for name in names:
        payload = raw.get(f"query:{name}")
        if payload is None:
            answers.absent.append(name)
            continue
        if (why := payload.failure()) is not None:
            whole = name in why or payload.meta.get("whole_reason")  # the run's reason (heavy.py)
            answers.failed[name] = why if whole else f"query {name}: {why}"
            continue
        answers.answered.append(name)
        if payload.meta.get("scope"):
            answers.scope = payload.meta["scope"]
    answers.latency_series = reading.latency_series
    # Istio's rules (the status says so); meshobs's edge rules only drew the graph phase's edge
    # set, the same set as the raw metrics give, so they leave the status as it was.
    answers.recorded = (rules := raw.get("rules")) is not None and any(
        not str(f).startswith(EDGE_PREFIX) for f in rules.meta.get("recorded") or ())

    part = SnapshotPart()
    _control_plane(raw, answers, part)
    part.edges.extend(reading.edges())
    reading.nodes(part)
    history_problems = add_history(raw, ctx, part)
    part.history, onset_problems = read_history(raw)
    if part.history is not None and part.history.problems and not onset_problems:
        onset_problems = list(part.history.problems)  # not sent, and why
    if not part.edges and answers.scope is not None:
        # Only then does it matter (and the graph phase's answers are decoded again for it).
        answers.graph_edges = sum(len(_series(p)) for n in GRAPH_QUERIES
                                  if (p := raw.get(f"query:{n}")) is not None and p.failure() is None)
    status = source_status(raw, answers, part.edges, ctx)
    if history_problems and status.state is SourceState.OK:
        status = replace(status, message=f"{status.message}; no history: {history_problems[0]}")
    # The onsets' input: delivered when every history query answered; otherwise why not (a
    # source that failed as a whole says so itself). A bundle recorded without the history
    # queries was never asked for it: no reason on its own that the source left data out (as
    # with istiod's metrics), the onset check says what it lacks.
    lacking: str | None = None
    if part.history is not None and onset_problems:
        lacking = "; ".join(onset_problems)
    if lacking is not None:
        # Said per input, so the rest reads as delivered (an empty map means "all of it").
        delivered = dict.fromkeys(("graph", "requests", "latency", "security"))
        status = replace(status, inputs=frozen_map({**delivered, **status.inputs, "history": lacking}))
    part.sources.append(status)
    return part


def _control_plane(raw: RawSource, answers: Answers, part: SnapshotPart) -> None:
    """istiod's metrics (the control-plane query) -> replicas and rejects; the answer's fate goes
    to ``answers`` as the other queries' do."""
    from .pilot import control_plane

    payload = raw.get(f"query:{CONTROL_PLANE}")
    if payload is None:
        answers.absent.append(CONTROL_PLANE)
        return
    if (why := payload.failure()) is not None:
        answers.failed[CONTROL_PLANE] = why if CONTROL_PLANE in why else f"query {CONTROL_PLANE}: {why}"
        return
    answers.answered.append(CONTROL_PLANE)
    replicas, rejects = control_plane(_series(payload))
    part.istiod.extend(replicas)
    part.xds_rejects.extend(rejects)


