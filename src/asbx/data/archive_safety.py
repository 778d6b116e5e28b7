"""Safe reading of zstd-compressed tar archives: every entry is checked before anything is written.

The reader parses tar headers itself (with `tarfile.TarInfo.frombuf` for the 512-byte blocks)
instead of trusting `tarfile.TarFile`: TarFile reads pax and GNU long-name records whole into
memory, follows whatever links it extracted, and applies owners and modes. Here:

- names must be UTF-8, relative, free of `..`, unique, and never below a file or a symlink;
- only regular files, directories and symlinks are accepted (no hard links, devices, FIFOs,
  sparse files), with no setuid/setgid bits;
- symlinks must resolve inside the tree, following chains of other links in the archive;
- declared sizes are bounded per entry and in total, and the data must really be there;
- the extracting sink creates every file with O_EXCL|O_NOFOLLOW under directories it made itself,
  so nothing is ever written outside the target, even on case-insensitive filesystems.
"""

from __future__ import annotations

import enum
import os
import posixpath
import stat
import tarfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol, TypeVar, cast

import zstandard

from asbx.errors import DataError

BLOCK = 512
GiB = 1 << 30
_CHUNK = 1 << 20
_MAX_LINK_HOPS = 40
_SETID_BITS = stat.S_ISUID | stat.S_ISGID
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_REFUSED_TYPES = {
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)
_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds an archive must stay within; crossing any of them refuses the whole archive.

    `external_symlinks` allows links that point outside the tree (such as a virtualenv's
    `bin/python -> /usr/bin/python3`): they are still never written through or followed by asbx,
    but they resolve to host paths when a host tool follows them, so they are off by default.
    """

    max_total_bytes: int = 64 * GiB
    max_entry_bytes: int = 64 * GiB
    max_entries: int = 10_000_000
    max_header_bytes: int = 1 << 20
    external_symlinks: bool = False


class EntryKind(enum.Enum):
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


@dataclass(frozen=True)
class ArchiveSummary:
    """What a checked archive holds: `files` counts regular files and symlinks."""

    files: int
    content_bytes: int
    entries: int


class Readable(Protocol):
    """Anything with `read(size) -> bytes`, like an open binary file."""

    def read(self, size: int = -1, /) -> bytes: ...


class EntrySink(Protocol):
    """Receives checked entries in archive order; `file` must consume all of `chunks`."""

    def directory(self, entry: Entry) -> None: ...
    def file(self, entry: Entry, chunks: Iterator[bytes]) -> None: ...
    def symlink(self, entry: Entry) -> None: ...
    def finish(self) -> None: ...


def read_archive(raw: Readable, sink: EntrySink, limits: ArchiveLimits) -> ArchiveSummary:
    """Decompress and check every entry of a `.tar.zst` stream, handing each to `sink`."""
    decompressor = zstandard.ZstdDecompressor()
    try:
        with decompressor.stream_reader(
            cast(IO[bytes], raw), read_size=_CHUNK, read_across_frames=True, closefd=False
        ) as stream:
            checker = EntryChecker(limits)
            for entry, size in _iter_members(stream, limits):
                checker.admit(entry, size)
                _deliver(stream, sink, entry)
            checker.finish()
    except zstandard.ZstdError as exc:
        raise DataError(f"archive is not valid zstd data ({exc})") from None
    sink.finish()
    return checker.summary()


def _deliver(stream: BinaryIO, sink: EntrySink, entry: Entry) -> None:
    if entry.kind is EntryKind.FILE:
        chunks = _data_chunks(stream, entry)
        sink.file(entry, chunks)
        for _ in chunks:  # a sink that stopped early still leaves the stream aligned
            pass
        _skip_padding(stream, entry.size)
    elif entry.kind is EntryKind.DIR:
        sink.directory(entry)
    else:
        sink.symlink(entry)


class NullSink:
    """Reads every byte and writes nothing: a full safety scan (used by import)."""

    def directory(self, entry: Entry) -> None:
        pass

    def file(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        for _ in chunks:
            pass

    def symlink(self, entry: Entry) -> None:
        pass

    def finish(self) -> None:
        pass


class EntryChecker:
    """Refuses entries that are unsafe alone (name, type, mode, size) or with earlier ones."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.kinds: dict[str, EntryKind] = {}
        self.explicit: set[str] = set()
        self.links: dict[str, str] = {}
        self.total = 0
        self.files = 0
        self.entries = 0

    def admit(self, entry: Entry, size: int) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise DataError(f"archive has more than {self.limits.max_entries} entries")
        self._check_size(entry, size)
        if not entry.path:
            return  # the tree's root ("./"): nothing to create
        self._check_place(entry)
        if entry.kind is EntryKind.SYMLINK:
            self._check_link(entry)
            self.links[entry.path] = entry.link_target
        if entry.kind is not EntryKind.DIR:
            self.files += 1

    def finish(self) -> None:
        """Check symlink chains once every link is known: each must end inside the tree."""
        if self.limits.external_symlinks:
            return
        for path, target in self.links.items():
            verdict = resolve_inside(self.links, posixpath.dirname(path), target)
            if verdict is not None:
                raise DataError(f"archive entry {path!r}: symlink to {target!r} {verdict}")

    def summary(self) -> ArchiveSummary:
        return ArchiveSummary(files=self.files, content_bytes=self.total, entries=self.entries)

    def _check_size(self, entry: Entry, size: int) -> None:
        if size < 0:
            raise DataError(f"archive entry {entry.path!r} declares a negative size")
        if entry.kind is not EntryKind.FILE and size:
            raise DataError(f"archive entry {entry.path!r} is a {entry.kind.value} with data")
        if size > self.limits.max_entry_bytes:
            raise DataError(
                f"archive entry {entry.path!r} declares {size} bytes, over the limit of "
                f"{self.limits.max_entry_bytes} bytes per entry"
            )
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise DataError(
                f"archive entry {entry.path!r} takes the archive past "
                f"{self.limits.max_total_bytes} bytes in total"
            )

    def _check_place(self, entry: Entry) -> None:
        path = entry.path
        self._check_parents(path)
        previous = self.kinds.get(path)
        if path in self.explicit:
            raise DataError(f"archive entry {path!r} appears twice (duplicate entry)")
        if previous is not None and entry.kind is not EntryKind.DIR:
            raise DataError(
                f"archive entry {path!r} is a {entry.kind.value} but an earlier entry "
                "needs it to be a directory"
            )
        self.kinds[path] = entry.kind
        self.explicit.add(path)

    def _check_parents(self, path: str) -> None:
        parent = ""
        for part in path.split("/")[:-1]:
            parent = f"{parent}/{part}" if parent else part
            kind = self.kinds.setdefault(parent, EntryKind.DIR)
            if kind is EntryKind.SYMLINK:
                raise DataError(
                    f"archive entry {path!r} would be written through the symlink {parent!r}"
                )
            if kind is EntryKind.FILE:
                raise DataError(f"archive entry {path!r} lies below the file {parent!r}")

    def _check_link(self, entry: Entry) -> None:
        target = entry.link_target
        if not target or "\0" in target:
            raise DataError(f"archive entry {entry.path!r}: symlink with an empty target")
        if self.limits.external_symlinks:
            return
        if target.startswith("/"):
            raise DataError(
                f"archive entry {entry.path!r}: symlink to the absolute path {target!r} "
                "points outside the tree"
            )
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), target))
        if lexical == ".." or lexical.startswith("../"):
            raise DataError(
                f"archive entry {entry.path!r}: symlink to {target!r} points outside the tree"
            )


def resolve_inside(links: dict[str, str], start: str, target: str) -> str | None:
    """Follow `target` from directory `start` through `links`; None if it stays in the tree.

    Components that are not links are taken as plain directories (as realpath does for missing
    ones), so the answer holds for the tree exactly as the archive describes it. Returns the
    reason otherwise: "points outside the tree" or "is a loop".
    """
    resolved = [part for part in start.split("/") if part]
    pending = deque(target.split("/"))
    hops = 0
    if target.startswith("/"):
        return "points outside the tree"
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return "points outside the tree"
            resolved.pop()
            continue
        candidate = "/".join([*resolved, part])
        link = links.get(candidate)
        if link is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS or link.startswith("/"):
            return "is a loop" if hops > _MAX_LINK_HOPS else "points outside the tree"
        pending.extendleft(reversed(link.split("/")))
    return None


class DirectorySink:
    """Writes checked entries below `root`, a new private directory this extraction owns."""

    def __init__(self, root: Path, *, reserve_bytes: int = 64 << 20) -> None:
        self.root = root
        self.made: set[str] = {""}
        self.dir_modes: dict[str, int] = {}
        usage = os.statvfs(root)
        self.free = usage.f_bavail * usage.f_frsize - reserve_bytes
        self.declared = 0

    def directory(self, entry: Entry) -> None:
        if entry.path not in self.made:
            self._make_parents(entry.path)
            self._mkdir(entry.path)
        self.dir_modes[entry.path] = entry.mode

    def file(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        self.declared += entry.size
        if self.declared > self.free:
            raise DataError(
                f"archive entry {entry.path!r}: the archive needs more than the "
                f"{max(self.free, 0)} bytes free at {self.root.parent}"
            )
        self._make_parents(entry.path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = self._create(entry.path, lambda target: os.open(target, flags, 0o600))
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fchmod(fd, entry.mode)
        finally:
            os.close(fd)

    def symlink(self, entry: Entry) -> None:
        self._make_parents(entry.path)
        self._create(entry.path, lambda target: os.symlink(entry.link_target, target))

    def finish(self) -> None:
        """Apply directory modes last (deepest first) so read-only directories could be filled."""
        for path in sorted(self.made - {""}, key=lambda p: p.count("/"), reverse=True):
            os.chmod(self.root / path, self.dir_modes.get(path, 0o755))

    def _make_parents(self, path: str) -> None:
        parent = ""
        for part in path.split("/")[:-1]:
            parent = f"{parent}/{part}" if parent else part
            if parent not in self.made:
                self._mkdir(parent)

    def _mkdir(self, path: str) -> None:
        self._create(path, lambda target: os.mkdir(target, 0o700))
        self.made.add(path)

    def _create(self, path: str, make: _Maker[_T]) -> _T:
        if path.startswith("/") or ".." in path.split("/"):  # the checker refused these already
            raise DataError(f"archive entry {path!r} is not a relative path inside the tree")
        try:
            return make(self.root / path)
        except FileExistsError:
            raise DataError(
                f"archive entry {path!r} collides with an earlier entry "
                "(names that differ only in case or Unicode form on this filesystem?)"
            ) from None


class _Maker(Protocol[_T_co]):
    def __call__(self, target: Path, /) -> _T_co: ...


def _iter_members(stream: BinaryIO, limits: ArchiveLimits) -> Iterator[tuple[Entry, int]]:
    """Yield (entry, declared size) for each member; the caller reads the data in between."""
    pax: dict[str, str] = {}
    long_name = long_link = None
    while True:
        block = _read_exact(stream, BLOCK, "a tar header")
        if block.count(0) == BLOCK:
            return
        info = _parse_header(block)
        if info.type in _PAX_TYPES or info.type == tarfile.XGLTYPE:
            records = _parse_pax(_read_meta(stream, info.size, limits))
            if info.type == tarfile.XGLTYPE:
                _check_global_pax(records)
            else:
                pax.update(records)
            continue
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            text = _decode(_read_meta(stream, info.size, limits).rstrip(b"\0"), "a long name")
            if info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = text
            else:
                long_link = text
            continue
        yield _entry_of(info, pax, long_name, long_link)
        pax, long_name, long_link = {}, None, None


def _parse_header(block: bytes) -> tarfile.TarInfo:
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise DataError(f"archive has a corrupt tar header ({exc})") from None


def _entry_of(
    info: tarfile.TarInfo, pax: dict[str, str], long_name: str | None, long_link: str | None
) -> tuple[Entry, int]:
    raw_name = pax.get("path", long_name if long_name is not None else info.name)
    path = normalise_name(raw_name)
    kind = _kind_of(info, path)
    if info.mode & _SETID_BITS:
        raise DataError(f"archive entry {path!r} has the setuid or setgid bit set")
    size = _pax_size(pax, path) if "size" in pax else info.size
    target = pax.get("linkpath", long_link if long_link is not None else info.linkname)
    if kind is EntryKind.SYMLINK:
        _check_text(target, f"archive entry {path!r}: symlink target")
    if kind is not EntryKind.DIR and not path:
        raise DataError("archive entry '.' must be a directory")
    mode = stat.S_IMODE(info.mode) & 0o1777
    return Entry(path, kind, mode, size if kind is EntryKind.FILE else 0, target), size


def _pax_size(pax: dict[str, str], path: str) -> int:
    text = pax["size"]
    if not (text.isascii() and text.isdigit()):
        raise DataError(f"archive entry {path!r} has a malformed pax size {text!r}")
    return int(text)


def _kind_of(info: tarfile.TarInfo, path: str) -> EntryKind:
    if info.type in _FILE_TYPES:
        return EntryKind.FILE
    if info.type == tarfile.DIRTYPE:
        return EntryKind.DIR
    if info.type == tarfile.SYMTYPE:
        return EntryKind.SYMLINK
    what = _REFUSED_TYPES.get(info.type, f"of unsupported type {info.type!r}")
    raise DataError(f"archive entry {path!r} is {what}; snapshots hold only files, "
                    "directories and symlinks")


def normalise_name(name: str) -> str:
    """A member name as a clean relative path ("" for the root); refuses unsafe names."""
    _check_text(name, "archive entry name")
    if name.startswith("/"):
        raise DataError(f"archive entry {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise DataError(f"archive entry {name!r} has a '..' component (path traversal)")
    return "/".join(parts)


def _check_text(text: str, what: str) -> None:
    if "\0" in text:
        raise DataError(f"{what} {text!r} contains a NUL byte")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{what} {text!r} is not valid UTF-8") from None


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"archive has {what} that is not valid UTF-8: {data[:80]!r}") from None


def _read_meta(stream: BinaryIO, size: int, limits: ArchiveLimits) -> bytes:
    if size < 0 or size > limits.max_header_bytes:
        raise DataError(f"archive has a {size}-byte extended header record (limit "
                        f"{limits.max_header_bytes})")
    data = _read_exact(stream, size, "an extended header")
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


def _data_chunks(stream: BinaryIO, entry: Entry) -> Iterator[bytes]:
    remaining = entry.size
    while remaining:
        chunk = _read_exact(stream, min(remaining, _CHUNK), f"the data of {entry.path!r}")
        remaining -= len(chunk)
        yield chunk


def _skip_padding(stream: BinaryIO, size: int) -> None:
    padding = -size % BLOCK
    if padding:
        _read_exact(stream, padding, "padding")


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
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
