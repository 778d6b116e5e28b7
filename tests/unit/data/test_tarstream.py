"""The tar format: headers byte-identical to tarfile's, readable by tarfile, and parsed back."""

from __future__ import annotations

import io
import tarfile

import pytest

from asbx.data.tarstream import Entry, EntryKind, entry_header, iter_members, pax_record
from asbx.errors import DataError
from tests.unit.data.trees import member, tar_bytes

_TYPES = {EntryKind.FILE: tarfile.REGTYPE, EntryKind.DIR: tarfile.DIRTYPE,
          EntryKind.SYMLINK: tarfile.SYMTYPE}
ENTRIES = [
    Entry("a.txt", EntryKind.FILE, 0o644, 5),
    Entry("bin/run", EntryKind.FILE, 0o755, 0),
    Entry("d", EntryKind.DIR, 0o700),
    Entry("l", EntryKind.SYMLINK, 0o777, link_target="../a.txt"),
    Entry("x" * 99, EntryKind.DIR, 0o755),  # 100 bytes with the slash: still ustar
    Entry("y" * 100, EntryKind.FILE, 0o644, 1),
    Entry("z" * 101, EntryKind.FILE, 0o644, 1),  # pax path
    Entry("ünï/naïve.txt", EntryKind.FILE, 0o644, 3),  # non-ASCII: pax path
    Entry("link", EntryKind.SYMLINK, 0o777, link_target="t" * 300),  # pax linkpath
    Entry("huge.img", EntryKind.FILE, 0o644, 9 << 30),  # over 8 GiB: pax size
]


def tarfile_header(entry: Entry) -> bytes:
    info = tarfile.TarInfo(entry.path)
    info.type = _TYPES[entry.kind]
    info.mode, info.size, info.linkname = entry.mode, entry.size, entry.link_target
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.path[:16])
def test_headers_are_byte_identical_to_tarfile(entry: Entry) -> None:
    assert entry_header(entry) == tarfile_header(entry)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.path[:16])
def test_headers_read_back_by_tarfile_and_by_iter_members(entry: Entry) -> None:
    header = entry_header(entry)
    parsed = next(iter_members(io.BytesIO(header), 1 << 20))
    assert (parsed.name.rstrip("/"), parsed.link, parsed.size) == (
        entry.path, entry.link_target, entry.size,
    )
    if entry.size < 1 << 20:
        data = b"\0" * entry.size + b"\0" * (-entry.size % 512) + b"\0" * 1024
        with tarfile.open(fileobj=io.BytesIO(header + data)) as archive:
            (info,) = archive.getmembers()
        assert (info.name, info.linkname, info.mode, info.mtime) == (
            entry.path, entry.link_target, entry.mode, 0,
        )


@pytest.mark.parametrize(("key", "value"), [("path", b"a"), ("path", b"x" * 95), ("k", b"v" * 9)])
def test_pax_record_length_counts_itself(key: str, value: bytes) -> None:
    record = pax_record(key, value)
    length, _, rest = record.partition(b" ")
    assert int(length) == len(record)
    assert rest == key.encode() + b"=" + value + b"\n"


def test_gnu_long_names_and_links_are_applied() -> None:
    raw = tar_bytes(
        [(member("n" * 150, tarfile.SYMTYPE, link="t" * 150), b"")], fmt=tarfile.GNU_FORMAT
    )
    (parsed,) = list(iter_members(io.BytesIO(raw), 1 << 20))
    assert (parsed.name, parsed.link) == ("n" * 150, "t" * 150)


@pytest.mark.parametrize(
    "payload",
    [b"0 \n", b"x path=a\n", b"9 path=a", b"5 pathx\n", b"100 path=a\n", b"7 a=\xff\n"],
)
def test_malformed_pax_records_are_refused(payload: bytes) -> None:
    raw = tar_bytes([(member("././@PaxHeader", tarfile.XHDTYPE, payload), payload)])
    with pytest.raises(DataError, match="pax"):
        list(iter_members(io.BytesIO(raw), 1 << 20))
