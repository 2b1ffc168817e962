"""A Kubernetes list read page by page is written back as one compact JSON body: by msgspec
when every page was standard JSON, by json otherwise (NaN survives); the same values either way."""

from __future__ import annotations

import json
import math

from meshobs.shape import dumps_compact, loads_standard


def test_standard_json_is_written_back_compact_with_the_same_values() -> None:
    text = '{"kind": "PodList", "items": [{"name": "ledger-\u00e9", "ready": true, "n": 3, "w": 0.25, "x": null}]}'
    value, standard = loads_standard(text)
    assert standard
    out = dumps_compact(value, standard)
    assert json.loads(out) == json.loads(text)
    assert ", " not in out and ": " not in out


def test_what_only_json_reads_is_written_by_json() -> None:
    value, standard = loads_standard(b'{"rate": NaN}')
    assert not standard and math.isnan(value["rate"])
    assert dumps_compact(value, standard) == '{"rate":NaN}'
