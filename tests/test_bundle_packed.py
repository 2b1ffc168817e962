"""The packed archive layout (meshobs-bundle/2): bodies one after the other in a few members.

It replays exactly as the one-member-per-body layout (/1) of the same bundle, which every archive
written before it has and which stays readable; its offsets are untrusted input like the rest of
the index: a slice outside its pack, overlapping another, or a pack used again after another one
is a bad bundle, so what a replay decodes never exceeds what the archive holds."""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meshobs import bundle as bundle_mod
from meshobs.bundle import PACKED_FORMAT, Bundle, BundleError, iter_bundle, read_bundle, write_bundle
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.raw import Payload, RawSource


def _old_archive(bundle: Bundle, path: Path) -> Path:
    """The archive meshobs wrote before packing: one member per body, format /1."""
    return write_bundle(bundle, path, packed=False)


def _members(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def _sources(sources: list[RawSource]) -> list[Any]:
    return [(r.name, r.kind, r.meta, [(p.key, p.body, p.status, p.url) for p in r.payloads]) for r in sources]


def test_an_archive_is_packed_and_replays_as_the_old_layout(tmp_path: Path) -> None:
    demo = load_demo("ecommerce")
    packed = write_bundle(demo, tmp_path / "new.tar.gz", model=False)
    old = _old_archive(demo, tmp_path / "old.tar.gz")
    payloads = sum(1 for s in demo.sources for p in s.payloads if p.body is not None)
    assert len(_members(old)) == payloads + 1
    assert len(_members(packed)) < 5 < payloads  # the index and a pack or two
    assert all(n in ("bundle.json", "assembled.msgpack", "model.msgpack") or n.startswith("payloads/pack-")
               for n in _members(packed))
    assert _sources(read_bundle(packed).sources) == _sources(read_bundle(old).sources)
    _header, streamed = iter_bundle(packed)
    assert _sources(list(streamed)) == _sources(read_bundle(old).sources)
    assert build_snapshot(read_bundle(packed), origin="x") == build_snapshot(read_bundle(old), origin="x")


def test_many_packs_in_source_order_and_a_body_bigger_than_a_pack(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(bundle_mod, "PACK_BYTES", 64)
    sources = [RawSource(f"envoy:p{i}", "envoy", [Payload("ready", body=f"LIVE {i} é" * (1 + i % 7)),
                                                   Payload("stats", body=None, error="refused")])
               for i in range(40)]
    sources.append(RawSource("prometheus", "prometheus", [Payload("q", body="x" * 1000), Payload("e", body="")]))
    b = Bundle(time=datetime(2026, 1, 1, tzinfo=UTC), window_s=60.0, sources=sources)
    path = write_bundle(b, tmp_path / "b.tar.gz", model=False)
    assert len(_members(path)) > 10
    assert _sources(read_bundle(path).sources) == _sources(sources)
    _header, streamed = iter_bundle(path)
    assert _sources(list(streamed)) == _sources(sources)


def test_a_directory_keeps_one_file_per_body_and_an_unpacked_archive_reads(tmp_path: Path) -> None:
    demo = load_demo("ecommerce")
    d = write_bundle(demo, tmp_path / "dir")
    assert json.loads((d / "bundle.json").read_text())["format"] == "meshobs-bundle/1"
    unpacked = tmp_path / "unpacked"
    with tarfile.open(write_bundle(demo, tmp_path / "b.tar.gz")) as tar:
        # filter= exists from 3.11.4 (Debian's 3.11.2, a clean shell's python3, lacks it)
        tar.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    assert json.loads((unpacked / "bundle.json").read_text())["format"] == PACKED_FORMAT
    assert _sources(read_bundle(unpacked).sources) == _sources(read_bundle(d).sources)


def _packed_dir(tmp_path: Path, payloads: list[dict[str, Any]], packs: dict[str, bytes]) -> Path:
    d = tmp_path / "d"
    (d / "payloads").mkdir(parents=True)
    for name, data in packs.items():
        (d / name).write_bytes(data)
    (d / "bundle.json").write_text(json.dumps({
        "format": PACKED_FORMAT, "time": "2026-11-20T12:00:00Z", "window_s": 300,
        "sources": [{"name": "envoy:x", "kind": "envoy", "payloads": payloads}]}))
    return d


A, B = "payloads/pack-00000.pack", "payloads/pack-00001.pack"


@pytest.mark.parametrize(("payloads", "why"), [
    ([{"key": "ready", "file": A}], "offset is missing"),
    ([{"key": "ready", "file": A, "offset": 0}], "length is missing"),
    ([{"key": "ready", "file": A, "offset": "0", "length": 4}], "offset"),
    ([{"key": "ready", "file": A, "offset": -1, "length": 4}], "negative"),
    ([{"key": "ready", "file": A, "offset": 0, "length": 5}], "outside"),
    ([{"key": "ready", "file": A, "offset": 2, "length": 2}, {"key": "x", "file": A, "offset": 0, "length": 4}],
     "overlap"),
    ([{"key": "ready", "file": A, "offset": 0, "length": 2}, {"key": "x", "file": B, "offset": 0, "length": 1},
      {"key": "y", "file": A, "offset": 2, "length": 2}], "used up"),
    ([{"key": "ready", "file": "payloads/../../etc/passwd", "offset": 0, "length": 1}], "outside"),
    ([{"key": "ready", "file": "payloads/missing.pack", "offset": 0, "length": 1}], "missing.pack"),
])
def test_damaged_pack_offsets_are_bad_bundles(tmp_path: Path, payloads: list[dict[str, Any]], why: str) -> None:
    d = _packed_dir(tmp_path, payloads, {A: b"LIVE", B: b"x"})
    with pytest.raises(BundleError, match=why):
        read_bundle(d)
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(d, arcname=".")
    with pytest.raises(BundleError, match=why):
        read_bundle(archive)
    with pytest.raises(BundleError, match=why):
        for _raw in iter_bundle(archive)[1]:
            pass


def test_one_pack_referenced_many_times_is_not_decoded_many_times(tmp_path: Path) -> None:
    """100,000 entries pointing at the whole of one 1 MB pack would decode 100 GB: refused at the second."""
    entries = [{"key": f"k{i}", "file": A, "offset": 0, "length": 2**20} for i in range(100_000)]
    d = _packed_dir(tmp_path, entries, {A: b"x" * 2**20})
    with pytest.raises(BundleError, match="overlap"):
        read_bundle(d)


def test_a_packed_utf8_slice_that_cuts_a_character_is_a_bad_bundle(tmp_path: Path) -> None:
    d = _packed_dir(tmp_path, [{"key": "ready", "file": A, "offset": 0, "length": 1}], {A: "é".encode()})
    with pytest.raises(BundleError, match="UTF-8"):
        read_bundle(d)
