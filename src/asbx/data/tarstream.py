"""The tar format: reading members from a stream, and writing a workspace deterministically.

Reading yields raw members (name, link, type, mode, size) with pax and GNU long-name records
applied, each bounded in size; judging them is `archive_safety`'s job.

Headers are written here rather than by `tarfile.TarInfo.tobuf`, for two reasons: the bytes
of an archive decide its digest, and tarfile's output has changed between Python patch
releases (device fields of non-device entries); and tobuf costs ~40 us per entry, a quarter of
capture time on a tree of small files. The layout is POSIX pax (ustar blocks, with an `x`
record carrying `path`/`linkpath`/`size` when a value does not fit), byte for byte what
tarfile writes for these entries today; a unit test checks that.
"""

from __future__ import annotations

import enum
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from asbx.errors import DataError

BLOCK = tarfile.BLOCKSIZE
_CHUNK = 1 << 20
_MAX_DEPTH = 512
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MAX_OCTAL_SIZE = 8**11 - 1
_ZERO_ID = b"0000000\0"
_ZERO_TIME = b"00000000000\0"
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)
_TAIL = b"ustar\x0000" + b"\0" * (32 + 32 + 8 + 8 + 155 + 12)  # magic .. end of block
_CONSTANT_SUM = 2 * sum(_ZERO_ID) + sum(_ZERO_TIME) + 8 * ord(" ") + sum(_TAIL)


class EntryKind(enum.Enum):
    """The only kinds of entry a snapshot holds."""

    FILE = "file"
    DIR = "directory"
    SYMLINK = "symlink"


@dataclass(frozen=True)
class Entry:
    """One checked archive entry: a normalised relative path ("a/b") and what it is."""

    path: str
    kind: EntryKind
    mode: int
    size: int = 0
    link_target: str = ""


_TYPES = {EntryKind.FILE: b"0", EntryKind.DIR: b"5", EntryKind.SYMLINK: b"2"}


@dataclass(frozen=True)
class Source:
    """Where a regular file's bytes come from: a name in an open directory, and its lstat."""

    dir_fd: int
    name: str
    stat: os.stat_result


def walk(root: Path) -> Iterator[tuple[Entry, Source | None]]:
    """Depth-first, name-sorted entries below `root`, opened relative to directory fds.

    Every directory and file is opened with O_NOFOLLOW relative to its parent's descriptor,
    so a sandbox swapping a path for a symlink while we read cannot redirect us to host files.
    """
    stack: list[tuple[int, str, Iterator[str]]] = []
    try:
        root_fd = os.open(root, _OPEN_DIR)
        stack.append((root_fd, "", iter(sorted(os.listdir(root_fd)))))
        while stack:
            dir_fd, prefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            yield from _visit(stack, dir_fd, prefix + name, name)
    except OSError as exc:
        raise DataError(f"cannot read {exc.filename or root}: {exc.strerror}") from None
    finally:
        for dir_fd, _, _ in stack:
            os.close(dir_fd)


def _visit(
    stack: list[tuple[int, str, Iterator[str]]], dir_fd: int, rel: str, name: str
) -> Iterator[tuple[Entry, Source | None]]:
    _check_utf8(rel)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    mode = stat.S_IMODE(st.st_mode) & 0o777
    if stat.S_ISDIR(st.st_mode):
        yield Entry(rel, EntryKind.DIR, mode), None
        if len(stack) >= _MAX_DEPTH:
            raise DataError(f"cannot capture {rel!r}: directories nested deeper than {_MAX_DEPTH}")
        child = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
        stack.append((child, rel + "/", iter(sorted(os.listdir(child)))))
        _check_same(rel, st, os.fstat(child))
    elif stat.S_ISREG(st.st_mode):
        yield Entry(rel, EntryKind.FILE, mode, st.st_size), Source(dir_fd, name, st)
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=dir_fd)
        _check_utf8(target)
        yield Entry(rel, EntryKind.SYMLINK, 0o777, link_target=target), None


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"cannot capture {text!r}: the name is not valid UTF-8") from None


def _check_same(rel: str, expected: os.stat_result, actual: os.stat_result) -> None:
    if (expected.st_dev, expected.st_ino) != (actual.st_dev, actual.st_ino):
        raise DataError(f"cannot capture {rel!r}: it changed while being read")


def _check_unchanged(rel: str, expected: os.stat_result, actual: os.stat_result) -> None:
    if (expected.st_size, expected.st_mtime_ns) != (actual.st_size, actual.st_mtime_ns):
        raise DataError(f"cannot capture {rel!r}: it changed while being read")


class TarWriter:
    """Writes entries and file data with tar's padding and trailer, batching small writes."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.offset = 0
        self.pending = bytearray()

    def add(self, entry: Entry, source: Source | None) -> None:
        self._write(entry_header(entry))
        if source is not None:
            self._copy(entry.path, source)
            self._write(b"\0" * (-self.offset % BLOCK))

    def close(self) -> None:
        self._write(b"\0" * (2 * BLOCK))
        self._write(b"\0" * (-self.offset % tarfile.RECORDSIZE))
        self._flush()

    def _copy(self, rel: str, source: Source) -> None:
        fd = os.open(source.name, _OPEN_FILE, dir_fd=source.dir_fd)
        try:
            before = os.fstat(fd)
            _check_same(rel, source.stat, before)
            _check_unchanged(rel, source.stat, before)
            remaining = source.stat.st_size
            while remaining:
                chunk = os.read(fd, min(remaining, _CHUNK))
                if not chunk:
                    raise DataError(f"cannot capture {rel!r}: it shrank while being read")
                self._write(chunk)
                remaining -= len(chunk)
            _check_unchanged(rel, before, os.fstat(fd))
        finally:
            os.close(fd)

    def _write(self, data: bytes) -> None:
        self.offset += len(data)
        if len(data) >= _CHUNK:
            self._flush()
            self.out.write(data)
            return
        self.pending += data
        if len(self.pending) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.out.write(bytes(self.pending))
            self.pending.clear()


def entry_header(entry: Entry) -> bytes:
    """The header block(s) of one entry: a pax `x` record first if a value does not fit ustar."""
    path = entry.path + "/" if entry.kind is EntryKind.DIR else entry.path
    name = path.encode("utf-8")
    link = entry.link_target.encode("utf-8")
    records = []
    if len(name) > 100 or not name.isascii():
        records.append(pax_record("path", name))
        name = path.encode("ascii", "replace")[:100]
    if len(link) > 100 or not link.isascii():
        records.append(pax_record("linkpath", link))
        link = entry.link_target.encode("ascii", "replace")[:100]
    size = entry.size
    if size > _MAX_OCTAL_SIZE:
        records.append(pax_record("size", str(size).encode()))
        size = 0
    block = ustar_block(name, entry.mode, size, _TYPES[entry.kind], link)
    if not records:
        return block
    payload = b"".join(records)
    pax = ustar_block(b"././@PaxHeader", 0, len(payload), tarfile.XHDTYPE, b"")
    return pax + payload + b"\0" * (-len(payload) % BLOCK) + block


def ustar_block(name: bytes, mode: int, size: int, kind: bytes, link: bytes) -> bytes:
    """One 512-byte ustar header with uid/gid/mtime 0 and empty owner names."""
    mode_field = b"%07o\0" % mode
    size_field = b"%011o\0" % size
    block = b"".join((
        name.ljust(100, b"\0"), mode_field, _ZERO_ID, _ZERO_ID, size_field, _ZERO_TIME,
        b"        ", kind, link.ljust(100, b"\0"), _TAIL,
    ))
    checksum = _CONSTANT_SUM + sum(name) + sum(link) + sum(mode_field) + sum(size_field)
    checksum += kind[0]
    return block[:148] + b"%06o\0 " % checksum + block[156:]


def pax_record(key: str, value: bytes) -> bytes:
    """One "<length> <key>=<value>\\n" record, the length counting its own digits."""
    body = b" " + key.encode("ascii") + b"=" + value + b"\n"
    length = len(body)
    while len(str(length).encode()) + len(body) != length:
        length = len(str(length).encode()) + len(body)
    return str(length).encode() + body


class Stream(Protocol):
    """A decompressed archive: `read(size)` may return fewer bytes, b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class RawMember:
    """A member as its headers state it, before any safety check.

    `name` and `link` come from pax records, GNU long-name records or the ustar fields, in that
    order; ustar fields are decoded with surrogateescape, so invalid UTF-8 shows as surrogates.
    """

    name: str
    link: str
    type: bytes
    mode: int
    size: int


def iter_members(stream: Stream, max_header_bytes: int) -> Iterator[RawMember]:
    """Yield each member; the caller must read exactly its data (`data_chunks`) in between."""
    pax: dict[str, str] = {}
    long_name = long_link = None
    while True:
        block = read_exact(stream, BLOCK, "a tar header")
        if block.count(0) == BLOCK:
            return
        info = _parse_header(block)
        if info.type in _PAX_TYPES or info.type == tarfile.XGLTYPE:
            records = _parse_pax(_read_meta(stream, info.size, max_header_bytes))
            if info.type == tarfile.XGLTYPE:
                _check_global_pax(records)
            else:
                pax.update(records)
            continue
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            meta = _read_meta(stream, info.size, max_header_bytes)
            text = _decode(meta.rstrip(b"\0"), "a long name")
            if info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = text
            else:
                long_link = text
            continue
        yield RawMember(
            name=pax.get("path", long_name if long_name is not None else info.name),
            link=pax.get("linkpath", long_link if long_link is not None else info.linkname),
            type=info.type,
            mode=info.mode,
            size=_pax_size(pax["size"]) if "size" in pax else info.size,
        )
        pax, long_name, long_link = {}, None, None


def data_chunks(stream: Stream, size: int, what: str) -> Iterator[bytes]:
    """The `size` data bytes of a member in chunks, then its padding (consumed, not yielded)."""
    remaining = size
    while remaining:
        chunk = read_exact(stream, min(remaining, _CHUNK), what)
        remaining -= len(chunk)
        yield chunk
    _skip_padding(stream, size)


def _parse_header(block: bytes) -> tarfile.TarInfo:
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise DataError(f"archive has a corrupt tar header ({exc})") from None


def _pax_size(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise DataError(f"archive has a malformed pax size {text!r}")
    return int(text)

def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"archive has {what} that is not valid UTF-8: {data[:80]!r}") from None


def _read_meta(stream: Stream, size: int, max_header_bytes: int) -> bytes:
    if size < 0 or size > max_header_bytes:
        raise DataError(f"archive has a {size}-byte extended header record (limit "
                        f"{max_header_bytes})")
    data = read_exact(stream, size, "an extended header")
    _skip_padding(stream, size)
    return data


def _parse_pax(data: bytes) -> dict[str, str]:
    """Parse pax records ("<len> <key>=<value>\\n"); GNU sparse records are refused."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        length_text = data[pos:space]
        if space < 0 or not length_text.isdigit():
            raise DataError("archive has a malformed pax header")
        end = pos + int(length_text)
        record = data[space + 1:end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise DataError("archive has a malformed pax header")
        key, _, value = record[:-1].partition(b"=")
        name = _decode(key, "a pax key")
        if name.startswith("GNU.sparse."):
            raise DataError("archive holds a sparse file; snapshots hold only plain files")
        records[name] = _decode(value, f"a pax {name!r} value")
        pos = end
    return records


def _check_global_pax(records: dict[str, str]) -> None:
    for key in ("path", "linkpath", "size"):
        if key in records:
            raise DataError(f"archive has a global pax header setting {key!r}")


def _skip_padding(stream: Stream, size: int) -> None:
    padding = -size % BLOCK
    if padding:
        read_exact(stream, padding, "padding")


def read_exact(stream: Stream, size: int, what: str) -> bytes:
    """Exactly `size` bytes, or DataError naming `what` was cut short."""
    data = stream.read(size)
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            raise DataError(
                f"archive is truncated: it ends in {what} ({got} of {size} bytes present)"
            )
        parts.append(more)
        got += len(more)
    return b"".join(parts)
