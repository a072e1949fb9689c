"""Safe collection, fed hand-made hostile archives (no engine needed).

The attack suite shows what a real job can put in ``/output``; these tests
cover what a stream could hold that GNU tar would never write, in case the
tar in the sandbox or the engine's stream is ever not what we expect.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.run.collect import CollectLimits, collect_archive, sanitise_name

LIMITS = CollectLimits(max_files=10, max_file_bytes=1024, max_total_bytes=4096)


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def chunks(data: bytes, size: int = 700) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def collect(tmp_path: Path, data: bytes, limits: CollectLimits = LIMITS):  # type: ignore[no-untyped-def]
    return collect_archive(chunks(data), tmp_path / "out", limits)


def test_regular_files_are_taken_with_hashes(tmp_path):
    col = collect(
        tmp_path, archive(regular("./a.csv", b"x,y\n1,2\n"), regular("./figs/b.png", b"\x89PNG"))
    )
    assert [(f.name, f.size) for f in col.files] == [("a.csv", 8), ("figs/b.png", 4)]
    assert col.complete and col.refused == ()
    import hashlib

    assert col.files[0].sha256 == hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    assert (tmp_path / "out" / "figs" / "b.png").read_bytes() == b"\x89PNG"


@pytest.mark.parametrize(
    "kind,name",
    [
        (tarfile.SYMTYPE, "link"),
        (tarfile.LNKTYPE, "hard"),
        (tarfile.FIFOTYPE, "pipe"),
        (tarfile.CHRTYPE, "null"),
        (tarfile.BLKTYPE, "disk"),
    ],
)
def test_non_regular_members_are_refused(tmp_path, kind, name):
    col = collect(tmp_path, archive(special(name, kind, "/etc/passwd"), regular("ok", b"1")))
    assert [f.name for f in col.files] == ["ok"]
    assert len(col.refused) == 1 and col.refused[0].reason == "only regular files are collected"
    assert not (tmp_path / "out" / name).exists()
    assert not any(p.is_symlink() for p in (tmp_path / "out").rglob("*"))


@pytest.mark.parametrize(
    "name",
    [
        "../escape",
        "a/../../escape",
        "/etc/cron.d/evil",
        "a//b",
        "a\\b",
        "tab\there",
        "new\nline",
        "bell\x07",
        "x" * 256,
        "/".join(["d"] * 9) + "/f",
        "rtl\u202efdp.csv",
    ],
)
def test_unsafe_names_are_refused(tmp_path, name):
    col = collect(tmp_path, archive(regular(name, b"data")))
    assert col.files == ()
    assert col.refused[0].reason == "unsafe file name"
    # Only a hash of the (analyst-chosen) name is kept.
    assert name not in repr(col.refused)
    assert [p for p in (tmp_path / "out").rglob("*")] == []
    assert not (tmp_path / "escape").exists()


def test_chinese_file_names_are_fine():
    assert sanitise_name("./结果/按区县统计.csv") == "结果/按区县统计.csv"


def test_names_with_undecodable_bytes_are_refused():
    assert sanitise_name("bad\udcff.csv") is None


def test_duplicates_are_refused(tmp_path):
    col = collect(tmp_path, archive(regular("a", b"1"), regular("./a", b"2")))
    assert [f.name for f in col.files] == ["a"]
    assert col.refused[0].reason == "duplicate file name"
    assert (tmp_path / "out" / "a").read_bytes() == b"1"


def test_file_count_cap(tmp_path):
    col = collect(tmp_path, archive(*(regular(f"f{i}", b"x") for i in range(25))))
    assert len(col.files) == LIMITS.max_files
    assert col.refused_total == 15 and not col.complete


def test_per_file_and_total_caps(tmp_path):
    big = regular("big", b"b" * 2000)
    parts = [regular(f"p{i}", b"p" * 1000) for i in range(5)]
    col = collect(tmp_path, archive(big, *parts))
    assert [f.name for f in col.files] == ["p0", "p1", "p2", "p3"]
    reasons = [r.reason for r in col.refused]
    assert reasons == ["file larger than the per-file cap", "outputs larger than the total cap"]
    assert col.total_bytes <= LIMITS.max_total_bytes


def test_stream_past_the_caps_is_cut(tmp_path):
    # A member over the per-file cap is refused, but its bytes still stream
    # past; reading stops once the stream exceeds what the caps allow.
    limits = CollectLimits(max_files=1, max_file_bytes=10, max_total_bytes=10)
    info = tarfile.TarInfo("flood")
    info.size = 650 * 1024 * 1024
    consumed = 0

    def stream():
        nonlocal consumed
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        for _ in range(info.size // 65536):
            consumed += 65536
            yield b"f" * 65536

    col = collect_archive(stream(), tmp_path / "out", limits)
    assert not col.complete and "larger than the caps" in col.detail
    assert col.files == ()
    assert consumed < 16 * 1024 * 1024


def test_huge_declared_size_is_refused_without_reading(tmp_path):
    limits = CollectLimits(max_files=5, max_file_bytes=1024, max_total_bytes=2048)
    info = tarfile.TarInfo("lie")
    info.size = 10 * 1024**3
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    col = collect_archive(iter([header, b"\0" * 1024]), tmp_path / "out", limits)
    assert col.files == ()
    assert col.refused[0].reason == "file larger than the per-file cap"


def test_garbage_is_malformed_not_a_crash(tmp_path):
    col = collect(tmp_path, b"this is not a tar archive at all" * 50)
    assert not col.complete and "malformed" in col.detail


def test_truncated_archive(tmp_path):
    data = archive(regular("a", b"x" * 900))
    col = collect(tmp_path, data[:700])
    assert not col.complete
    assert not (tmp_path / "out" / "a").exists()


def test_dest_must_be_new(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        collect(tmp_path, archive(regular("a", b"1")))


def test_directories_are_not_reported(tmp_path):
    d = tarfile.TarInfo("./sub")
    d.type = tarfile.DIRTYPE
    col = collect(tmp_path, archive((d, None), regular("./sub/f", b"1")))
    assert [f.name for f in col.files] == ["sub/f"] and col.refused == ()
