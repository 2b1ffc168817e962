"""The fast pick of kept span attributes equals the full decoder on every form JSON allows."""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from meshobs.collectors.otlp import (
    KEPT_ATTRIBUTES,
    _decoded_attributes,
    _span_attributes,
    error_from_attributes,
    parse_traces,
)

KEYS = [*sorted(KEPT_ATTRIBUTES), "http.url", "guid:x-request-id", "peer.address", "zone", "user_agent"]
STRINGS = ["200", "-", "UH,URX", "sidecar~10.1.2.3~fleet-v1-7c9d.freight~freight.svc.cluster.local", "",
           'quote " inside', "back\\slash", "ünïcødé ✓", "slash/and\\/", "line\nbreak", '"}}', "a\u0001b"]


def _value(rnd: random.Random) -> dict[str, object]:
    kind = rnd.choice(["s", "s", "s", "s", "i", "i_str", "b", "d", "arr", "kv"])
    if kind == "s":
        return {"stringValue": rnd.choice(STRINGS)}
    if kind == "i":
        return {"intValue": rnd.randint(0, 600)}
    if kind == "i_str":
        return {"intValue": str(rnd.randint(0, 600))}
    if kind == "b":
        return {"boolValue": rnd.random() < 0.5}
    if kind == "d":
        return {"doubleValue": rnd.random()}
    if kind == "arr":
        return {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "2"}]}}
    return {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}


@pytest.mark.parametrize("seed", range(400))
def test_fast_pick_equals_the_full_decoder(seed: int) -> None:
    rnd = random.Random(seed)
    attrs = [{"key": rnd.choice(KEYS), "value": _value(rnd)} for _ in range(rnd.randint(0, 25))]
    compact = rnd.random() < 0.8
    text = json.dumps(attrs, separators=(",", ":") if compact else (", ", ": "), ensure_ascii=rnd.random() < 0.5)
    raw = msgspec.Raw(text.encode())
    assert _span_attributes(raw) == _decoded_attributes(raw)


def test_kept_values_and_types_survive_the_whole_parse() -> None:
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "GET /",
            "kind": 2, "startTimeUnixNano": "1", "endTimeUnixNano": "2000",
            "attributes": [{"key": "http.status_code", "value": {"intValue": "503"}},
                           {"key": "response_flags", "value": {"stringValue": "UF,URX"}},
                           {"key": "http.url", "value": {"stringValue": "http://x/"}},
                           {"key": "error", "value": {"boolValue": True}}]}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}, separators=(",", ":"))
    [trace] = parse_traces(body, "t")
    [s] = trace.spans
    assert dict(s.attributes) == {"http.status_code": 503, "response_flags": "UF,URX", "error": True}
    assert s.status == "error"


@pytest.mark.parametrize(("attrs", "error"), [
    ({"rpc.grpc.status_code": 14}, True),  # OpenTelemetry: an int
    ({"grpc.status_code": "14", "http.status_code": "200"}, True),  # Envoy: UNAVAILABLE inside a 200
    ({"rpc.grpc.status_code": 4}, True),  # DEADLINE_EXCEEDED
    ({"rpc.grpc.status_code": 0, "http.status_code": 200}, False),
    ({"grpc.status_code": "5"}, False),  # NOT_FOUND: a 4xx analogue, not an error
    ({"grpc.status_code": "UNAVAILABLE"}, False),  # not a status code: not judged
])
def test_a_failed_grpc_status_makes_a_span_an_error(attrs: dict[str, object], error: bool) -> None:
    assert error_from_attributes(attrs) is error
