"""Replaying a bundle one source at a time: the same sources as reading it whole, an archive
read in one pass without holding the other sources' bodies, and the same snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshobs.bundle import FORMATS, BundleError, iter_bundle, read_bundle, write_bundle
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo


@pytest.mark.parametrize("name", ["ecommerce.tar.gz", "ecommerce-dir"])
def test_sources_one_at_a_time_are_the_bundles_sources(tmp_path: Path, name: str) -> None:
    path = write_bundle(load_demo("ecommerce"), tmp_path / name, model=False)
    whole = read_bundle(path)
    header, sources = iter_bundle(path)
    assert header.sources == [] and (header.time, header.window_s, header.config) == (
        whole.time, whole.window_s, whole.config)
    streamed = list(sources)
    assert [(r.name, [(p.key, p.body) for p in r.payloads]) for r in streamed] == \
        [(r.name, [(p.key, p.body) for p in r.payloads]) for r in whole.sources]


def test_an_archive_is_read_in_one_pass_holding_one_source(tmp_path: Path) -> None:
    from meshobs import bundle_read

    path = write_bundle(load_demo("ecommerce"), tmp_path / "b.tar.gz")
    index, _read = bundle_read.open_bundle(path, FORMATS, stream=True)
    stream = bundle_read._ArchiveStream(path, set(bundle_read.payload_files(index)))
    count = 0
    for _raw in bundle_read.iter_sources_from_index(index, stream.read, packed=True):
        assert not stream._waiting  # members come in source order: nothing read ahead is kept
        count += 1
    assert count > 10


def test_a_streamed_replay_gives_the_same_snapshot(tmp_path: Path) -> None:
    path = write_bundle(load_demo("ecommerce"), tmp_path / "b.tar.gz")
    header, sources = iter_bundle(path)
    streamed = build_snapshot(header, origin="x", keep_raw=False, sources=sources)
    assert streamed == build_snapshot(read_bundle(path), origin="x")


def test_a_truncated_archive_is_a_bundle_error_while_streaming(tmp_path: Path) -> None:
    path = write_bundle(load_demo("ecommerce"), tmp_path / "b.tar.gz")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BundleError):  # when the index is read, or when the sources are
        _header, sources = iter_bundle(cut)
        for _raw in sources:
            pass


def test_past_999_sources_the_archive_is_still_in_source_order(tmp_path: Path) -> None:
    """``1000-x`` sorts before ``101-x``: members written sorted by name made a streamed replay of
    a big mesh hold every source from 1000 to 1999 while it read 101 to 199 (1 GB at 5,000)."""
    from datetime import UTC, datetime

    from meshobs import bundle_read
    from meshobs.bundle import Bundle
    from meshobs.raw import Payload, RawSource

    sources = [RawSource(f"envoy:p{i}", "envoy", [Payload("ready", body=f"LIVE {i}")]) for i in range(1012)]
    path = write_bundle(Bundle(time=datetime(2026, 1, 1, tzinfo=UTC), window_s=60.0, sources=sources),
                        tmp_path / "big.tar.gz")
    index, _read = bundle_read.open_bundle(path, FORMATS, stream=True)
    stream = bundle_read._ArchiveStream(path, set(bundle_read.payload_files(index)))
    names = []
    for raw in bundle_read.iter_sources_from_index(index, stream.read, packed=True):
        assert not stream._waiting
        names.append(raw.name)
    assert names == [s.name for s in sources]
