"""A bundle is untrusted input: links, FIFOs, devices, bombs, truncation, traversal and damaged
indexes are "bad bundle: what is wrong" (exit 2), quickly, with bounded memory, reading nothing
outside the bundle."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meshobs.bundle import Bundle, BundleError, read_bundle, write_bundle
from meshobs.bundle_read import MAX_FILE_BYTES
from meshobs.cli.main import cli
from meshobs.demo.catalog import load_demo
from meshobs.raw import Payload, RawSource

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = "outside-the-bundle-4711"


def _small_bundle(path: Path) -> Path:
    demo = load_demo("healthy")
    src = RawSource("envoy:shop/x", "envoy", meta={"namespace": "shop", "pod": "x"},
                    payloads=[Payload("ready", body="LIVE", status=200)])
    return write_bundle(Bundle(time=demo.time, window_s=300, sources=[src]), path)


def _outside_file(tmp_path: Path) -> Path:
    target = tmp_path / "secret.txt"
    target.write_text(OUTSIDE)
    return target


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _assert_bad(path: Path, *, match: str) -> None:
    with pytest.raises(BundleError, match=match):
        read_bundle(path)
    for command in (["graph"], ["snapshot", "--out", str(path.parent / "re-exported")]):
        result = _cli(*command, "--from", str(path))
        assert result.exit_code == 2, result.output
        assert "bad bundle" in result.stderr and "internal error" not in result.stderr
        assert OUTSIDE not in result.output
    assert not (path.parent / "re-exported").exists()


def test_a_payload_linked_outside_is_refused(tmp_path: Path) -> None:
    bundle = _small_bundle(tmp_path / "b")
    payload = next((bundle / "payloads").rglob("*.txt"))
    payload.unlink()
    payload.symlink_to(_outside_file(tmp_path))
    _assert_bad(bundle, match="symbolic link")


def test_a_linked_payloads_folder_is_refused(tmp_path: Path) -> None:
    bundle = _small_bundle(tmp_path / "b")
    elsewhere = tmp_path / "elsewhere"
    shutil.move(bundle / "payloads", elsewhere)
    (bundle / "payloads").symlink_to(elsewhere, target_is_directory=True)
    _assert_bad(bundle, match="not a directory of the bundle")


@pytest.mark.parametrize("special", ["fifo", "device-link", "device"])
def test_fifos_and_devices_are_not_read(tmp_path: Path, special: str) -> None:
    bundle = _small_bundle(tmp_path / "b")
    payload = next((bundle / "payloads").rglob("*.txt"))
    payload.unlink()
    if special == "fifo":
        os.mkfifo(payload)
    elif special == "device-link":
        payload.symlink_to("/dev/zero")
    else:
        try:
            os.mknod(payload, 0o600 | 0o020000, os.makedev(1, 5))  # a character device: /dev/zero
        except PermissionError:
            pytest.skip("creating a device needs root")
    done: list[BaseException] = []

    def read() -> None:
        try:
            read_bundle(bundle)
        except BaseException as exc:  # handed to the test thread
            done.append(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading the bundle blocked"
    assert done and isinstance(done[0], BundleError)
    assert {"fifo": "FIFO", "device-link": "symbolic link", "device": "device"}[special] in str(done[0])


def _zero_archive(path: Path, members: list[tuple[str, bytes | int]]) -> Path:
    """A .tar.gz whose members are bytes, or N zero bytes (an int): gigabytes of zeros take a
    few hundred kilobytes and a fraction of a second to write, as a real bomb does."""
    out = io.BytesIO()
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    crc, size = 0, 0
    chunk = bytes(1 << 20)
    steady: bytes | None = None

    def feed(data: bytes) -> None:
        nonlocal crc, size
        out.write(comp.compress(data))
        crc, size = zlib.crc32(data, crc), size + len(data)

    def zeros(n: int) -> None:
        nonlocal crc, size, steady
        while n >= len(chunk):
            if steady is None:  # after a full flush every chunk of zeros compresses the same
                out.write(comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH))
                steady = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
                out.write(steady)
                crc, size, n = zlib.crc32(chunk, zlib.crc32(chunk, crc)), size + 2 * len(chunk), n - 2 * len(chunk)
                continue
            out.write(steady)
            crc, size, n = zlib.crc32(chunk, crc), size + len(chunk), n - len(chunk)
        if n:
            feed(bytes(n))

    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size = data if isinstance(data, int) else len(data)
        feed(info.tobuf(format=tarfile.GNU_FORMAT))
        if isinstance(data, int):
            zeros(data)
        else:
            feed(data)
        feed(bytes(-info.size % 512))
    zeros(1024 + (-(size + 1024) % 10240))  # the end-of-archive blocks and record padding
    out.write(comp.flush())
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    path.write_bytes(header + out.getvalue() + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))
    return path


def _index(files: dict[str, str]) -> bytes:
    return json.dumps({"format": "meshobs-bundle/1", "time": "2026-11-20T12:00:00Z", "window_s": 300, "sources": [
        {"name": "envoy:shop/x", "kind": "envoy", "payloads": [{"key": k, "file": f} for k, f in files.items()]}]}
    ).encode()


def _read_in_child(path: Path) -> tuple[int, str, int]:
    """(exit code, output, peak RSS in MB) of reading ``path`` in a fresh interpreter."""
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec (pytest's).
    code = ("import sys\nfrom meshobs.bundle import read_bundle, BundleError\n"
            "try:\n    b = read_bundle(sys.argv[1]); print('read', len(b.sources))\n"
            "except BundleError as e:\n    print('bad', e)\n"
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
            "print('rss', int(hwm.split()[1]) // 1024)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    rss = int(done.stdout.rsplit("rss ", 1)[-1])
    return done.returncode, done.stdout, rss


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_gigabyte_member_costs_neither_memory_nor_time(tmp_path: Path, where: str) -> None:
    """The issue's bomb: about a megabyte on disk, a 1 GiB member inside. Before a payload the
    index names, its header alone refuses the bundle; after the last one, it is never reached."""
    index = ("bundle.json", _index({"ready": "payloads/000-envoy/0000-ready.txt"}))
    ready = ("payloads/000-envoy/0000-ready.txt", b"LIVE")
    bomb = ("payloads/000-envoy/0001-bomb.json", 1 << 30)
    path = _zero_archive(tmp_path / "bomb.tar.gz", [index, bomb, ready] if where == "before" else [index, ready, bomb])
    assert path.stat().st_size < 2 * 2**20
    rc, out, rss = _read_in_child(path)
    assert rc == 0, out
    assert ("bad bad bundle" in out and "larger than" in out) if where == "before" else "read 1" in out
    assert rss < 250, f"{rss} MB peak RSS"


def test_unreferenced_members_are_skipped_not_read(tmp_path: Path) -> None:
    big = MAX_FILE_BYTES // 4  # under the cap, not named by the index, before one that is
    archive = _zero_archive(tmp_path / "padded.tar.gz", [
        ("bundle.json", _index({"ready": "payloads/000-envoy/0001-ready.txt"})),
        ("payloads/000-envoy/0000-unused.json", big),
        ("payloads/000-envoy/0001-ready.txt", b"LIVE")])
    rc, out, rss = _read_in_child(archive)
    assert rc == 0 and "read 1" in out
    assert rss < 250, f"{rss} MB peak RSS: the unreferenced member was held in memory"


def test_truncated_archives(tmp_path: Path) -> None:
    whole = _small_bundle(tmp_path / "whole.tar.gz").read_bytes()
    for cut in (len(whole) // 2, len(whole) - 9, len(whole) - 1, 30):
        path = tmp_path / f"cut-{cut}.tar.gz"
        path.write_bytes(whole[:cut])
        _assert_bad(path, match="bad bundle")


def test_traversal_links_and_devices_inside_archives(tmp_path: Path) -> None:
    target = _outside_file(tmp_path)
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        index = _index({"ready": "payloads/000-envoy/0000-ready.txt"})
        info = tarfile.TarInfo("bundle.json")
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))
        link = tarfile.TarInfo("payloads/000-envoy/0000-ready.txt")
        link.type, link.linkname = tarfile.SYMTYPE, str(target)
        tar.addfile(link)
        escape = tarfile.TarInfo("../../escaped.txt")
        escape.size = 4
        tar.addfile(escape, io.BytesIO(b"evil"))
        device = tarfile.TarInfo("payloads/000-envoy/0001-dev")
        device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 5
        tar.addfile(device)
    _assert_bad(path, match="not a regular file")
    assert not (tmp_path.parent / "escaped.txt").exists()


def _bad_index(tmp_path: Path, index: Any, name: str) -> Path:
    d = tmp_path / name
    (d / "payloads").mkdir(parents=True)
    (d / "payloads" / "p.txt").write_text("LIVE")
    (d / "bundle.json").write_text(index if isinstance(index, str) else json.dumps(index))
    return d


GOOD = {"format": "meshobs-bundle/1", "time": "2026-11-20T12:00:00Z", "window_s": 300,
        "sources": [{"name": "envoy:x", "kind": "envoy", "payloads": [{"key": "ready", "file": "payloads/p.txt"}]}]}


@pytest.mark.parametrize(("change", "why"), [
    ({"time": None}, "time"), ({"time": 5}, "time"), ({"time": "yesterday"}, "time"),
    ({"window_s": "abc"}, "window_s"), ({"window_s": None}, "window_s"), ({"window_s": -1}, "window_s"),
    ({"sources": "envoy"}, "sources"), ({"sources": [1]}, "sources"),
    ({"sources": [{"name": "x", "kind": "envoy", "payloads": [7]}]}, "payloads"),
    ({"sources": [{"name": None, "kind": "envoy"}]}, "name"),
    ({"sources": [{"name": "prometheus", "kind": "prometheus", "payloads": None}]},
     r"sources\[0\]\.payloads is missing"),
    ({"sources": [{"name": "prometheus", "kind": "prometheus"}]}, r"sources\[0\]\.payloads is missing"),
    ({"sources": [{"name": "prometheus", "kind": "prometheus", "payloads": {}}]}, "payloads: expected list"),
    ({"sources": [{"name": "x", "kind": "envoy", "payloads": [{"key": "k", "file": 3}]}]}, "file"),
    ({"sources": [{"name": "x", "kind": "envoy", "payloads": [{"key": "k", "status": "200"}]}]}, "status"),
    ({"sources": [{"name": "x", "kind": "envoy", "payloads": [{"key": "k", "file": "/etc/passwd"}]}]}, "outside"),
    ({"sources": [{"name": "x", "kind": "envoy", "payloads": [{"key": "k", "file": "payloads/../../x"}]}]},
     "outside"),
    ({"config": "mesh: istio"}, "config"), ({"format": "meshobs-bundle/3"}, "not a meshobs-bundle/1"),
])
def test_damaged_indexes(tmp_path: Path, change: dict[str, Any], why: str) -> None:
    _assert_bad(_bad_index(tmp_path, {**GOOD, **change}, "d"), match=why)


def test_deep_and_broken_json_indexes(tmp_path: Path) -> None:
    _assert_bad(_bad_index(tmp_path, "[" * 200_000 + "]" * 200_000, "deep"), match="nested too deeply")
    _assert_bad(_bad_index(tmp_path, '{"format": "meshobs-bundle/1", "time": ', "cut"), match="not valid JSON")
    _assert_bad(_bad_index(tmp_path, "\xff\xfe", "binary"), match="bad bundle")


def test_a_good_bundle_still_reads(tmp_path: Path) -> None:
    d = _bad_index(tmp_path, GOOD, "good")
    assert read_bundle(d).sources[0].payloads[0].body == "LIVE"
    assert _cli("graph", "--from", str(d)).exit_code in (0, 3)


@pytest.mark.parametrize(("entry", "why"), [
    ({"key": None}, "key is missing"), ({"key": 5}, "key: expected str"),
    ({"status": True}, "status: expected int, got bool"), ({"status": 200.0}, "status: expected int"),
    ({"error": 1}, "error"), ({"url": ["u"]}, "url"), ({"params": []}, "params"), ({"meta": "m"}, "meta"),
    ({"fetched_at": 0}, "fetched_at"), ({"elapsed_s": True}, "elapsed_s"), ({"elapsed_s": "1"}, "elapsed_s"),
    ({"elapsed_s": float("inf")}, "elapsed_s: not a finite number"),
    ({"offset": "0"}, "offset"), ({"length": None}, "length is missing"), ({"length": -1}, "negative"),
    ({"offset": 2, "length": 9}, "outside"),
])
def test_every_field_of_a_payload_entry_is_checked(entry: dict[str, Any], why: str) -> None:
    """Entries of the types meshobs writes are read in one go; any other is checked field by
    field, and a wrong one is named (packed layout: each body cut out of a pack)."""
    from meshobs.bundle_read import iter_sources_from_index

    good = {"key": "ready", "file": "pack", "offset": 0, "length": 4, "status": 200, "error": None,
            "url": "http://x/ready", "params": {"a": "1"}, "elapsed_s": 0.25, "fetched_at": "t", "meta": {"m": 1}}
    index = {"sources": [{"name": "envoy:x", "kind": "envoy", "payloads": [{**good, **entry}]}]}
    with pytest.raises(ValueError, match=why):
        list(iter_sources_from_index(index, lambda name: b"LIVE", packed=True))
    index = {"sources": [{"name": "envoy:x", "kind": "envoy", "payloads": [dict(good)]}]}
    (raw,) = iter_sources_from_index(index, lambda name: b"LIVE", packed=True)
    assert raw.payloads == [Payload("ready", "LIVE", 200, None, "http://x/ready", {"a": "1"}, 0.25, "t", {"m": 1})]
    bare = {"sources": [{"name": "envoy:x", "kind": "envoy", "payloads": [{"key": "k", "elapsed_s": 2}]}]}
    (raw,) = iter_sources_from_index(bare, lambda name: b"", packed=True)
    (payload,) = raw.payloads
    assert payload == Payload("k", elapsed_s=2.0) and type(payload.elapsed_s) is float
