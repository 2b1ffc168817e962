"""Trace documents -> Trace/Span: OTLP JSON (Jaeger api/v3, Tempo) and Jaeger's v1 model.

Accepted shapes (``collectors/trace_schema.py`` declares them):

* OTLP: ``{"resourceSpans": [{resource, scopeSpans: [{spans}]}]}``, wrapped as
  ``{"result": {...}}`` by Jaeger's grpc-gateway stream (several objects may follow each
  other in one body), and Tempo's older ``batches`` / ``instrumentationLibrarySpans`` names.
* Jaeger v1: the ``{data: [trace...]}`` envelope or a single ``{traceID, spans, processes}``
  trace; references may embed whole span objects (jaeger-ui's OTLP converter does).

Ids are lower-case hex whether the document used hex or base64.

Speed (benchmarks/bench_traces.py): a search answer is decoded by msgspec straight into typed
structs, skipping the fields meshobs does not read; spans keep only ``KEPT_ATTRIBUTES``;
ids and workloads are derived once per distinct value; the cycle collector is paused while
the (acyclic) objects are built.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from meshobs.collectors import trace_schema as schema
from meshobs.collectors.k8s_objects import workload_of_pod_name
from meshobs.collectors.trace_ids import Ids, norm_id
from meshobs.gc_pause import gc_paused
from meshobs.model import FrozenDict, ResponseStat, Span, Trace, WorkloadRef, freeze

__all__ = ["KEPT_ATTRIBUTES", "error_from_attributes", "iter_json", "norm_id", "parse_traces",
           "workload_from_attributes"]

_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}

# The span attributes the model keeps: those meshobs reads (status, workload, span kind) and
# the few that say where a mesh request failed (Envoy's response flags and upstream cluster,
# gRPC status, the messaging or database system). An Istio span carries 20-30 attributes and
# converting them all was most of parsing a search (benchmarks/bench_traces.py); the bundle
# keeps every payload whole, so a check that needs another attribute adds it here and reads it
# from any recorded bundle too.
KEPT_ATTRIBUTES = frozenset({
    "error", "otel.status_code", "span.kind", "http.status_code", "http.response.status_code",
    "grpc.status_code", "rpc.grpc.status_code", "response_flags", "upstream_cluster",
    "node_id", "istio.canonical_service", "istio.namespace", "messaging.system", "db.system",
})


def iter_json(text: str, name: str) -> Iterator[Any]:
    """Each JSON value in ``text`` (one, or a stream of several back to back)."""
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}: not valid JSON ({exc.msg} at char {exc.pos})") from None
        yield value


# -- attribute values -------------------------------------------------------------------------

def _any_value(value: Any) -> Any:
    """An OTLP AnyValue (struct or plain JSON object) -> a plain value."""
    if isinstance(value, schema.AnyValue):
        if value.stringValue is not None:
            return value.stringValue
        for v in (value.boolValue, value.intValue, value.doubleValue):
            if v is not None:
                return v
        if value.arrayValue is not None:
            return [_any_value(v) for v in (value.arrayValue or {}).get("values", [])]
        if value.kvlistValue is not None:
            return _plain_attributes((value.kvlistValue or {}).get("values", []))
        return value.bytesValue
    if not isinstance(value, Mapping):
        return value
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])  # protojson writes int64 as a string
    if "arrayValue" in value:
        return [_any_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return _plain_attributes((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _plain_attributes(attrs: Any) -> dict[str, Any]:
    return {str(a.get("key")): _any_value(a.get("value")) for a in attrs or [] if isinstance(a, Mapping)}


# A kept attribute in the compact form Jaeger and the OpenTelemetry Collector write, with a
# plain string value: {"key":"node_id","value":{"stringValue":"sidecar~..."}}. Any other form of
# a kept attribute (another value type, an escape in the string, blanks between the tokens)
# matches the second branch and sends the span's attributes to the full decoder. A string value
# cannot hide a false match: inside a JSON string every quote is escaped.
_KEPT = re.compile(rb'\{"key":"(' + b"|".join(re.escape(k.encode()) for k in sorted(KEPT_ATTRIBUTES))
                   + rb')","value":\{(?:"stringValue":"([^"\\]*)"\}\}|")')
_COMPACT = b'[{"key":"'


def _span_attributes(raw: msgspec.Raw) -> FrozenDict:
    """An OTLP span's attribute list (undecoded JSON) -> the ``KEPT_ATTRIBUTES`` as plain values."""
    if len(raw) <= 4:  # [] or null
        return FrozenDict()
    if bytes(memoryview(raw)[:9]) == _COMPACT:
        out: dict[str, Any] = {}
        for m in _KEPT.finditer(raw):
            value = m.group(2)
            if value is None:
                break  # a kept attribute in another form: the full decoder below
            out[m.group(1).decode()] = value.decode()
        else:
            return FrozenDict(out)
    return _decoded_attributes(raw)


def _decoded_attributes(raw: msgspec.Raw) -> FrozenDict:
    """The full decoder behind ``_span_attributes``: any form JSON allows."""
    try:
        attrs = schema.ATTRIBUTES.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValueError(f"span attributes: {exc}") from None
    out: dict[str, Any] = {}
    nested = False
    for a in attrs or ():
        if a.key in KEPT_ATTRIBUTES:
            out[a.key] = plain = None if a.value is None else _any_value(a.value)
            nested = nested or isinstance(plain, list | dict)
    return freeze(out) if nested else FrozenDict(out)  # type: ignore[no-any-return]


def _kept_tags(tags: list[schema.Tag] | dict[str, Any] | None) -> dict[str, Any]:
    """A Jaeger v1 span's tags (a list of {key, value}, or an object) -> the kept ones."""
    if isinstance(tags, dict):  # some exporters write tags as an object
        return {k: v for k, v in tags.items() if k in KEPT_ATTRIBUTES}
    keep = KEPT_ATTRIBUTES
    return {t.key: t.value for t in tags or () if t.key in keep}


def _frozen(attrs: dict[str, Any]) -> FrozenDict:
    """``freeze`` for the usual flat attribute map without walking every scalar value."""
    for v in attrs.values():
        if isinstance(v, list | dict):
            return freeze(attrs)  # type: ignore[no-any-return]
    return FrozenDict(attrs)


_ERROR_KEYS = frozenset({"error", "otel.status_code", "http.status_code", "http.response.status_code",
                         "rpc.grpc.status_code", "grpc.status_code"})


def error_from_attributes(attrs: Mapping[str, Any]) -> bool:
    """error=true, otel.status_code=ERROR, an HTTP status of 500 and above, or a gRPC status that
    failed (OpenTelemetry's ``rpc.grpc.status_code``, Envoy's ``grpc.status_code``) by the model's
    rule (:attr:`ResponseStat.is_error`: UNAVAILABLE inside an HTTP 200 is an error)."""
    flag = attrs.get("error")
    if flag is not None and str(flag).lower() == "true":
        return True
    otel = attrs.get("otel.status_code")
    if otel is not None and str(otel).upper() == "ERROR":
        return True
    grpc = attrs.get("rpc.grpc.status_code", attrs.get("grpc.status_code"))
    if grpc is not None and str(grpc).isdigit() and ResponseStat("200", "-", 0.0, str(grpc)).is_error:
        return True
    code = attrs.get("http.status_code", attrs.get("http.response.status_code"))
    try:
        return code is not None and int(code) >= 500
    except (TypeError, ValueError):
        return False


def workload_from_attributes(attrs: Mapping[str, Any]) -> WorkloadRef | None:
    """Istio/Envoy spans: ``node_id`` = ``sidecar~IP~POD.NS~NS.svc.cluster.local``, else the
    ``istio.canonical_service`` and ``istio.namespace`` tags."""
    return _workload_of(attrs.get("node_id"), attrs.get("istio.canonical_service"), attrs.get("istio.namespace"))


def _workload_of(node_id: Any, canonical: Any, namespace: Any) -> WorkloadRef | None:
    parts = str(node_id or "").split("~")
    if len(parts) >= 3 and "." in parts[2]:
        pod, ns = parts[2].rsplit(".", 1)
        return WorkloadRef(ns, workload_of_pod_name(pod))
    if canonical and namespace:
        return WorkloadRef(str(namespace), str(canonical))
    return None


class _Parse:
    """What one parse remembers: ids already normalised, workloads already derived (every span
    of a pod carries the same ``node_id``)."""

    def __init__(self) -> None:
        self.ids = Ids()
        self._workloads: dict[tuple[Any, Any, Any], WorkloadRef | None] = {}

    def workload(self, attrs: Mapping[str, Any]) -> WorkloadRef | None:
        key = (attrs.get("node_id"), attrs.get("istio.canonical_service"), attrs.get("istio.namespace"))
        try:
            return self._workloads[key]
        except KeyError:
            found = self._workloads[key] = _workload_of(*key)
            return found
        except TypeError:  # an unhashable tag value: no memory for this one
            return _workload_of(*key)


# -- OTLP -----------------------------------------------------------------------------------

_KIND_OF: dict[Any, str] = {**_KINDS, **{f"SPAN_KIND_{k.upper()}": k for k in _KINDS.values()}}


def _kind(value: Any) -> str | None:
    known = _KIND_OF.get(value)
    if known is not None or isinstance(value, int):
        return known
    text = str(value or "").upper().removeprefix("SPAN_KIND_")
    return text.lower() if text and text not in ("UNSPECIFIED", "0") else None


def _status(status: schema.Status | None, attrs: Mapping[str, Any]) -> str:
    code = status.code if status is not None else None
    if code is None and not attrs.keys() & _ERROR_KEYS:
        return "unset"
    if code in (2, "2", "STATUS_CODE_ERROR") or error_from_attributes(attrs):
        return "error"
    if code in (1, "1", "STATUS_CODE_OK"):
        return "ok"
    return "unset"


def _otlp_spans(resources: list[schema.ResourceSpans], memo: _Parse) -> Iterator[Span]:
    ids = memo.ids
    kinds = _KIND_OF
    for rs in resources:
        resource = _plain_resource(rs.resource)
        service = str(resource.get("service.name") or "unknown")
        scopes = rs.scopeSpans if rs.scopeSpans is not None else rs.instrumentationLibrarySpans
        for scope in scopes or ():
            for s in scope.spans or ():
                attrs = _span_attributes(s.attributes)
                start = (s.startTimeUnixNano or 0) // 1000
                end = s.endTimeUnixNano // 1000 if s.endTimeUnixNano else start
                kind = kinds.get(s.kind) if s.kind is not None else None
                # positional: Span(trace_id, span_id, parent_id, service, operation, start_us,
                # duration_us, status, kind, attributes, workload), the cheapest call per span
                yield Span(ids[s.traceId or ""], ids[s.spanId or ""], ids[s.parentSpanId or ""] or None, service,
                           s.name, start, end - start if end > start else 0, _status(s.status, attrs),
                           kind if kind is not None else _kind(s.kind), attrs, memo.workload(attrs))


def _plain_resource(resource: schema.Resource | None) -> dict[str, Any]:
    if resource is None:
        return {}
    return {a.key: None if a.value is None else _any_value(a.value) for a in resource.attributes or ()}


# -- Jaeger v1 ------------------------------------------------------------------------------

def _parent(span: schema.JaegerSpan, trace_id: str, ids: Ids) -> tuple[str | None, str]:
    """The parent span id and how the span relates to it (``CHILD_OF`` or ``FOLLOWS_FROM``).

    The reference type matters downstream: the critical path ignores FOLLOWS_FROM children,
    whose work the parent does not wait for.
    """
    refs = [r for r in span.references or () if r.spanID]
    if not refs:
        return ids[span.parentSpanID or ""] or None, "CHILD_OF"
    if len(refs) == 1 and refs[0].refType in ("CHILD_OF", "FOLLOWS_FROM"):
        return ids[refs[0].spanID or ""], str(refs[0].refType)  # the usual case: one parent
    # A reference into another trace (links across traces) is not the parent within this one.
    same = [r for r in refs if ids[r.traceID or trace_id] == trace_id]
    for wanted in ("CHILD_OF", "FOLLOWS_FROM"):
        for r in same + refs:
            if r.refType == wanted:
                return ids[r.spanID or ""], wanted
    return ids[span.parentSpanID or ""] or None, "CHILD_OF"


def _jaeger_spans(trace: schema.JaegerTrace | schema.Document, memo: _Parse) -> Iterator[Span]:
    processes = trace.processes or {}
    ids = memo.ids
    process_workloads: dict[int, WorkloadRef | None] = {}
    for s in trace.spans or ():
        attrs = _frozen(_kept_tags(s.tags))
        process = s.process or processes.get(s.processID or "") or schema.Process()
        kind = attrs.get("span.kind")
        if error_from_attributes(attrs):
            status = "error"
        elif str(attrs.get("otel.status_code", "")).upper() == "OK":
            status = "ok"
        else:
            status = "unset"
        trace_id = ids[s.traceID or trace.traceID or ""]
        parent_id, ref_type = _parent(s, trace_id, ids)
        workload = memo.workload(attrs)
        if workload is None:  # the process's tags name the pod when the span's do not
            if id(process) not in process_workloads:
                process_workloads[id(process)] = memo.workload(_kept_tags(process.tags))
            workload = process_workloads[id(process)]
        yield Span(
            trace_id=trace_id, span_id=ids[s.spanID or ""], parent_id=parent_id, ref_type=ref_type,
            service=str(process.serviceName or "unknown"), operation=s.operationName,
            start_us=s.startTime or 0, duration_us=s.duration or 0, status=status,
            kind=str(kind).lower() if kind else None, attributes=attrs, workload=workload,
        )


# -- entry point ----------------------------------------------------------------------------

def _answers(text: str, name: str) -> Iterator[schema.Document]:
    """Every top-level document in ``text``: one value, or a stream of several back to back."""
    try:
        answer = schema.DECODER.decode(text)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{name}: not a trace document meshobs knows ({exc})") from None
    except msgspec.DecodeError:
        # A stream: Jaeger's gateway writes one object a line; any other layout is split by
        # the standard library's decoder, which also words the error for a broken body.
        try:
            values = schema.DECODER.decode_lines(text)
        except msgspec.DecodeError:
            try:
                values = [msgspec.convert(v, schema.Answer, strict=False) for v in iter_json(text, name)]
            except msgspec.ValidationError as exc:
                raise ValueError(f"{name}: not a trace document meshobs knows ({exc})") from None
        for value in values:
            yield from value if isinstance(value, list) else (value,)
        return
    yield from answer if isinstance(answer, list) else (answer,)


def parse_traces(text: str, name: str) -> list[Trace]:
    """All traces in a body of any accepted shape, spans grouped by trace id.

    Raises ValueError naming ``name`` when the body is not JSON or holds no known shape.
    """
    # Spans stay as listed: Jaeger allows a client and a server span to share an id, and a
    # stream may split one trace over several objects. Duplicate traces across searches are
    # the caller's to resolve.
    with gc_paused():
        return _parse(text, name)


def _spans_of(doc: schema.Document, memo: _Parse) -> tuple[bool, Iterator[Span]]:
    """(is it a trace document, its spans); an error answer raises."""
    if doc.result is not None:
        return _spans_of(doc.result, memo)
    if doc.resourceSpans is not None or doc.batches is not None:
        return True, _otlp_spans(doc.resourceSpans if doc.resourceSpans is not None else doc.batches or [], memo)
    if doc.data is not None:
        return True, (span for t in doc.data if t.spans is not None for span in _jaeger_spans(t, memo))
    if doc.spans is not None and (doc.traceID is not None or doc.processes is not None):
        return True, _jaeger_spans(doc, memo)
    return False, iter(())


def _parse(text: str, name: str) -> list[Trace]:
    spans: dict[str, list[Span]] = {}
    shapes = 0
    memo = _Parse()
    for doc in _answers(text, name):
        if isinstance(doc.error, Mapping):
            raise ValueError(f"{name}: Jaeger answered an error ({doc.error.get('message') or doc.error})")
        known, found_spans = _spans_of(doc, memo)
        shapes += known
        for span in found_spans:
            found = spans.get(span.trace_id)
            if found is None:
                spans[span.trace_id] = [span]
            else:
                found.append(span)
    if not shapes:
        raise ValueError(f"{name}: no traces in a shape meshobs knows (expected OTLP resourceSpans, "
                         f"Tempo batches or Jaeger's {{data: [...]}})")
    return [Trace(trace_id=tid, spans=tuple(sorted(found, key=_SPAN_ORDER))) for tid, found in spans.items()]


_SPAN_ORDER = operator.attrgetter("start_us", "span_id")
