"""The shapes of trace documents, as typed msgspec structs (decoded in C, unknown fields skipped).

Only the fields meshobs reads are declared: logs, events, links, warnings, flags and the
like are skipped by the decoder without building Python objects for them. Every field is
optional and lists may be ``null``, as real exporters write them. ``strict=False`` in the
decoder accepts int64 values written as strings (protojson does) and the other usual
loosenesses. Structs are ``gc=False``: they never form reference cycles, and a search answer
holds millions of them.

* OTLP JSON: ``{"resourceSpans": [{resource, scopeSpans: [{spans}]}]}`` (Jaeger api/v3,
  wrapped in ``{"result": ...}`` by its stream), Tempo's ``batches`` and
  ``instrumentationLibrarySpans``.
* Jaeger v1 (the UI model): ``{"data": [{traceID, spans, processes}]}`` or one such trace.
"""

from __future__ import annotations

from typing import Any

import msgspec

# -- OTLP --------------------------------------------------------------------------------------


class AnyValue(msgspec.Struct, gc=False):
    stringValue: str | None = None
    boolValue: bool | None = None
    intValue: int | None = None
    doubleValue: float | None = None
    bytesValue: str | None = None
    arrayValue: Any = None
    kvlistValue: Any = None


class KeyValue(msgspec.Struct, gc=False):
    key: str = ""
    value: AnyValue | None = None


class Status(msgspec.Struct, gc=False):
    code: int | str | None = None


class OtlpSpan(msgspec.Struct, gc=False):
    traceId: str | None = None
    spanId: str | None = None
    parentSpanId: str | None = None
    name: str = ""
    kind: int | str | None = None
    startTimeUnixNano: int | None = None
    endTimeUnixNano: int | None = None
    # Left undecoded here: a span carries 20-30 attributes of which meshobs keeps a handful,
    # and building (then freeing) an object per attribute was half of parsing a search.
    # ``otlp._span_attributes`` picks the kept ones out (ATTRIBUTES decodes it in full).
    attributes: msgspec.Raw = msgspec.Raw(b"[]")
    status: Status | None = None


class ScopeSpans(msgspec.Struct, gc=False):
    spans: list[OtlpSpan] | None = None


class Resource(msgspec.Struct, gc=False):
    attributes: list[KeyValue] | None = None


class ResourceSpans(msgspec.Struct, gc=False):
    resource: Resource | None = None
    scopeSpans: list[ScopeSpans] | None = None
    instrumentationLibrarySpans: list[ScopeSpans] | None = None


# -- Jaeger v1 ---------------------------------------------------------------------------------


class Tag(msgspec.Struct, gc=False):
    key: str = ""
    value: Any = None


class Reference(msgspec.Struct, gc=False):
    refType: str | None = None
    traceID: str | None = None
    spanID: str | None = None


class Process(msgspec.Struct, gc=False):
    serviceName: str | None = None
    tags: list[Tag] | dict[str, Any] | None = None


class JaegerSpan(msgspec.Struct, gc=False):
    traceID: str | None = None
    spanID: str | None = None
    parentSpanID: str | None = None
    operationName: str = ""
    references: list[Reference] | None = None
    startTime: int | None = None
    duration: int | None = None
    tags: list[Tag] | dict[str, Any] | None = None
    processID: str | None = None
    process: Process | None = None


class JaegerTrace(msgspec.Struct, gc=False):
    traceID: str | None = None
    spans: list[JaegerSpan] | None = None
    processes: dict[str, Process] | None = None


# -- any answer ------------------------------------------------------------------------------


class Document(msgspec.Struct, gc=False):
    """Any of the accepted top-level objects; which fields are set says which shape it is."""

    result: Document | None = None
    resourceSpans: list[ResourceSpans] | None = None
    batches: list[ResourceSpans] | None = None
    data: list[JaegerTrace] | None = None
    traceID: str | None = None
    spans: list[JaegerSpan] | None = None
    processes: dict[str, Process] | None = None
    error: Any = None


Answer = Document | list[Document]
DECODER = msgspec.json.Decoder(Answer, strict=False)
ATTRIBUTES = msgspec.json.Decoder(list[KeyValue] | None, strict=False)
