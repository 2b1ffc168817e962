"""Trace documents -> Trace/Span: OTLP JSON (Jaeger api/v3, Tempo) and Jaeger's v1 model.

Accepted shapes:

* OTLP: ``{"resourceSpans": [{resource, scopeSpans: [{spans}]}]}``, wrapped as
  ``{"result": {...}}`` by Jaeger's grpc-gateway stream (several objects may follow each
  other in one body), and Tempo's older ``batches`` / ``instrumentationLibrarySpans`` names.
* Jaeger v1: the ``{data: [trace...]}`` envelope or a single ``{traceID, spans, processes}``
  trace; references may embed whole span objects (jaeger-ui's OTLP converter does).

Ids are lower-case hex whether the document used hex or base64.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from meshobs.collectors.k8s_objects import workload_of_pod_name
from meshobs.model import Span, Trace, WorkloadRef, freeze

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


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


def norm_id(value: Any) -> str:
    """Hex ids stay as they are (lower-cased); base64 ids (protojson bytes) become hex."""
    text = str(value or "")
    if not text or (_HEX.match(text) and len(text) in (16, 32)):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text  # neither: keep it (jaeger-ui fixtures use ids like "span-1")
    return raw.hex() if len(raw) in (8, 16) else text


def _any_value(value: Any) -> Any:
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
        return otlp_attributes((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def otlp_attributes(attrs: Any) -> dict[str, Any]:
    return {str(a.get("key")): _any_value(a.get("value")) for a in attrs or [] if isinstance(a, Mapping)}


def _tags(tags: Any) -> dict[str, Any]:
    if isinstance(tags, Mapping):  # some exporters write tags as an object
        return dict(tags)
    return {str(t.get("key")): t.get("value") for t in tags or [] if isinstance(t, Mapping)}


def error_from_attributes(attrs: Mapping[str, Any]) -> bool:
    """error=true, otel.status_code=ERROR or an HTTP status of 500 and above."""
    if str(attrs.get("error", "")).lower() == "true":
        return True
    if str(attrs.get("otel.status_code", "")).upper() == "ERROR":
        return True
    code = attrs.get("http.status_code", attrs.get("http.response.status_code"))
    try:
        return code is not None and int(code) >= 500
    except (TypeError, ValueError):
        return False


def workload_from_attributes(attrs: Mapping[str, Any]) -> WorkloadRef | None:
    """Istio/Envoy spans: ``node_id`` = ``sidecar~IP~POD.NS~NS.svc.cluster.local``, else the
    ``istio.canonical_service`` and ``istio.namespace`` tags."""
    node = str(attrs.get("node_id", ""))
    parts = node.split("~")
    if len(parts) >= 3 and "." in parts[2]:
        pod, ns = parts[2].rsplit(".", 1)
        return WorkloadRef(ns, workload_of_pod_name(pod))
    canonical, namespace = attrs.get("istio.canonical_service"), attrs.get("istio.namespace")
    if canonical and namespace:
        return WorkloadRef(str(namespace), str(canonical))
    return None


# -- OTLP -----------------------------------------------------------------------------------

def _kind(value: Any) -> str | None:
    if isinstance(value, int):
        return _KINDS.get(value)
    text = str(value or "").upper().removeprefix("SPAN_KIND_")
    return text.lower() if text and text not in ("UNSPECIFIED", "0") else None


def _status(status: Any, attrs: Mapping[str, Any]) -> str:
    code = status.get("code") if isinstance(status, Mapping) else None
    if code in (2, "2", "STATUS_CODE_ERROR") or error_from_attributes(attrs):
        return "error"
    if code in (1, "1", "STATUS_CODE_OK"):
        return "ok"
    return "unset"


def _otlp_spans(doc: Mapping[str, Any]) -> Iterator[Span]:
    resources = doc.get("resourceSpans")
    if resources is None:
        resources = doc.get("batches") or []
    for rs in resources:
        rattrs = otlp_attributes((rs.get("resource") or {}).get("attributes"))
        service = str(rattrs.get("service.name") or "unknown")
        scopes = rs.get("scopeSpans")
        if scopes is None:
            scopes = rs.get("instrumentationLibrarySpans") or []
        for scope in scopes:
            for s in scope.get("spans") or []:
                attrs = otlp_attributes(s.get("attributes"))
                start = int(s.get("startTimeUnixNano") or 0)
                end = int(s.get("endTimeUnixNano") or start)
                yield Span(
                    trace_id=norm_id(s.get("traceId")), span_id=norm_id(s.get("spanId")),
                    parent_id=norm_id(s.get("parentSpanId")) or None, service=service,
                    operation=str(s.get("name", "")), start_us=start // 1000,
                    duration_us=max(0, end - start) // 1000, status=_status(s.get("status"), attrs),
                    kind=_kind(s.get("kind")), attributes=freeze(attrs),
                    workload=workload_from_attributes(attrs),
                )


# -- Jaeger v1 ------------------------------------------------------------------------------

def _parent(span: Mapping[str, Any], trace_id: str) -> tuple[str | None, str]:
    """The parent span id and how the span relates to it (``CHILD_OF`` or ``FOLLOWS_FROM``).

    The reference type matters downstream: the critical path ignores FOLLOWS_FROM children,
    whose work the parent does not wait for.
    """
    refs = [r for r in span.get("references") or [] if isinstance(r, Mapping) and r.get("spanID")]
    # A reference into another trace (links across traces) is not the parent within this one.
    same = [r for r in refs if norm_id(r.get("traceID") or trace_id) == trace_id]
    for wanted in ("CHILD_OF", "FOLLOWS_FROM"):
        for r in same + refs:
            if r.get("refType") == wanted:
                return norm_id(r["spanID"]), wanted
    return norm_id(span.get("parentSpanID")) or None, "CHILD_OF"


def _jaeger_spans(trace: Mapping[str, Any]) -> Iterator[Span]:
    processes = trace.get("processes") or {}
    for s in trace.get("spans") or []:
        if not isinstance(s, Mapping):
            continue
        attrs = _tags(s.get("tags"))
        process = s.get("process")
        if not isinstance(process, Mapping):
            process = processes.get(s.get("processID")) or {}
        pattrs = _tags(process.get("tags"))
        kind = attrs.get("span.kind")
        if error_from_attributes(attrs):
            status = "error"
        elif str(attrs.get("otel.status_code", "")).upper() == "OK":
            status = "ok"
        else:
            status = "unset"
        trace_id = norm_id(s.get("traceID") or trace.get("traceID"))
        parent_id, ref_type = _parent(s, trace_id)
        yield Span(
            trace_id=trace_id, span_id=norm_id(s.get("spanID")), parent_id=parent_id, ref_type=ref_type,
            service=str(process.get("serviceName") or "unknown"),
            operation=str(s.get("operationName", "")), start_us=int(s.get("startTime") or 0),
            duration_us=int(s.get("duration") or 0), status=status,
            kind=str(kind).lower() if kind else None, attributes=freeze(attrs),
            workload=workload_from_attributes(attrs) or workload_from_attributes(pattrs),
        )


# -- entry point ----------------------------------------------------------------------------

def _documents(doc: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """("otlp" | "jaeger", object) for every trace-bearing object in a parsed document."""
    if isinstance(doc, list):
        for d in doc:
            yield from _documents(d)
        return
    if not isinstance(doc, Mapping):
        return
    if isinstance(doc.get("result"), Mapping):
        yield from _documents(doc["result"])
    elif "resourceSpans" in doc or "batches" in doc:
        yield "otlp", doc
    elif isinstance(doc.get("data"), list):
        for t in doc["data"]:
            if isinstance(t, Mapping) and "spans" in t:
                yield "jaeger", t
    elif "spans" in doc and ("traceID" in doc or "processes" in doc):
        yield "jaeger", doc


def parse_traces(text: str, name: str) -> list[Trace]:
    """All traces in a body of any accepted shape, spans grouped by trace id.

    Raises ValueError naming ``name`` when the body is not JSON or holds no known shape.
    """
    # Spans stay as listed: Jaeger allows a client and a server span to share an id, and a
    # stream may split one trace over several objects. Duplicate traces across searches are
    # the caller's to resolve.
    spans: dict[str, list[Span]] = {}
    shapes = 0
    for value in iter_json(text, name):
        if isinstance(value, Mapping) and isinstance(value.get("error"), Mapping):
            err = value["error"]
            raise ValueError(f"{name}: Jaeger answered an error ({err.get('message') or err})")
        for shape, doc in _documents(value):
            shapes += 1
            for span in (_otlp_spans(doc) if shape == "otlp" else _jaeger_spans(doc)):
                spans.setdefault(span.trace_id, []).append(span)
        if isinstance(value, Mapping) and (value.get("data") == [] or value.get("resourceSpans") == []):
            shapes += 1  # an empty but well-formed answer
    if not shapes:
        raise ValueError(f"{name}: no traces in a shape meshobs knows (expected OTLP resourceSpans, "
                         f"Tempo batches or Jaeger's {{data: [...]}})")
    return [Trace(trace_id=tid, spans=tuple(sorted(found, key=lambda s: (s.start_us, s.span_id))))
            for tid, found in spans.items()]
