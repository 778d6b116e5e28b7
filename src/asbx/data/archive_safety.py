"""Safe reading of zstd-compressed tar archives: every entry is checked before anything is written.

Members come from `tarstream.iter_members` (headers parsed with `tarfile.TarInfo.frombuf`, pax
and GNU long-name records bounded) rather than `tarfile.TarFile`, which reads those records
whole into memory, follows links it extracted itself and applies owners and modes. Here:

- names must be UTF-8, relative, free of `..`, unique, and never below a file or a symlink;
- only regular files, directories and symlinks are accepted (no hard links, devices, FIFOs,
  sparse files), with no setuid/setgid bits;
- symlinks must resolve inside the tree, following chains of other links in the archive;
- declared sizes are bounded per entry and in total, and the data must really be there;
- archives from outside (import) must not expand implausibly far beyond their compressed size
  (a decompression bomb), judged from each header before its data is decompressed;
- the extracting sink creates every file with O_EXCL|O_NOFOLLOW under directories it made itself,
  so nothing is ever written outside the target, even on case-insensitive filesystems.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, TypeVar, cast

import zstandard

from asbx.data.tarstream import Entry, EntryKind, RawMember, Stream, data_chunks, iter_members
from asbx.errors import DataError

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
_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds an archive must stay within; crossing any of them refuses the whole archive.

    `external_symlinks` allows links that point outside the tree (such as a virtualenv's
    `bin/python -> /usr/bin/python3`): they are still never written through or followed by asbx,
    but they resolve to host paths when a host tool follows them, so they are off by default.

    `max_import_ratio` and `import_ratio_floor` bound decompression bombs, and apply only where
    the caller passes the archive's compressed size to `read_archive` - that is, only on import
    (`SnapshotStore.import_archive`), the one place archives come from outside. An archive is
    refused as soon as a header takes its expansion (tar bytes so far plus the declared data)
    past `import_ratio_floor` bytes AND past `max_import_ratio` times the compressed file's size.
    Real source trees compress 3-10x and even logs or JSON rarely pass 100x, while zstd on zeros
    reaches ~20000-30000x (1 MiB of zeros is a 50-byte frame): 1000x leaves real data a 100x
    margin and still means a 10 GB expansion needs a 10 MB file. Below 1 GiB nothing is
    refused for its ratio, so small archives of sparse or zero-filled files import as before.
    Restore and capture never apply it: restore reads only archives asbx captured itself or
    already checked on import, by digest, so a workspace holding a large zero-filled file still
    round-trips through the store. `max_import_ratio=None` disables the bound.
    """

    max_total_bytes: int = 64 * GiB
    max_entry_bytes: int = 64 * GiB
    max_entries: int = 10_000_000
    max_header_bytes: int = 1 << 20
    external_symlinks: bool = False
    max_import_ratio: int | None = 1000
    import_ratio_floor: int = 1 * GiB


@dataclass(frozen=True)
class ArchiveSummary:
    """What a checked archive holds: `files` counts regular files and symlinks."""

    files: int
    content_bytes: int
    entries: int


class EntrySink(Protocol):
    """Receives checked entries in archive order; `file` must consume all of `chunks`."""

    def directory(self, entry: Entry) -> None: ...
    def file(self, entry: Entry, chunks: Iterator[bytes]) -> None: ...
    def symlink(self, entry: Entry) -> None: ...
    def finish(self) -> None: ...


def read_archive(
    raw: Stream, sink: EntrySink, limits: ArchiveLimits, *, compressed_size: int | None = None
) -> ArchiveSummary:
    """Decompress and check every entry of a `.tar.zst` stream, handing each to `sink`.

    Pass `compressed_size` (the archive file's size) for archives from outside: each header is
    then checked against the expansion bound of `limits` before its data is decompressed.
    """
    decompressor = zstandard.ZstdDecompressor()
    try:
        with decompressor.stream_reader(
            cast(IO[bytes], raw), read_size=_CHUNK, read_across_frames=True, closefd=False
        ) as stream:
            checker = EntryChecker(limits)
            for member in iter_members(stream, limits.max_header_bytes):
                entry = entry_of(member)
                if compressed_size is not None:
                    check_expansion(
                        entry, member.size, stream.tell() + member.size, compressed_size, limits
                    )
                checker.admit(entry, member.size)
                _deliver(stream, sink, entry)
            checker.finish()
    except zstandard.ZstdError as exc:
        raise DataError(f"archive is not valid zstd data ({exc})") from None
    sink.finish()
    return checker.summary()


def check_expansion(
    entry: Entry, size: int, expanded: int, compressed_size: int, limits: ArchiveLimits
) -> None:
    """Refuse `entry` if `expanded` (tar bytes up to the end of its data) is implausible.

    Implausible means over `import_ratio_floor` bytes and over `max_import_ratio` times
    `compressed_size`; see `ArchiveLimits`.
    """
    ratio = limits.max_import_ratio
    if ratio is None or expanded <= limits.import_ratio_floor:
        return
    allowed = ratio * max(compressed_size, 1)
    if expanded <= allowed:
        return
    raise DataError(
        f"archive entry {entry.path!r} declares {size} bytes: with it the archive expands to "
        f"at least {expanded} bytes from {compressed_size} compressed bytes "
        f"({expanded // max(compressed_size, 1)}:1), past the import limit of {ratio}:1 "
        f"beyond {limits.import_ratio_floor} bytes",
        hint="an archive that compresses this well is almost always a decompression bomb; if "
        "you made it and trust it, extract it into a sandbox's workspace and capture it there "
        "(snapshots asbx captures itself have no ratio limit)",
    )


def _deliver(stream: Stream, sink: EntrySink, entry: Entry) -> None:
    if entry.kind is EntryKind.FILE:
        chunks = data_chunks(stream, entry.size, f"the data of {entry.path!r}")
        sink.file(entry, chunks)
        for _ in chunks:  # a sink that stopped early still leaves the stream aligned
            pass
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
        if entry.size and self.declared > self.free:
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


def entry_of(member: RawMember) -> Entry:
    """The checked form of one member: clean name, allowed type, no setuid/setgid bits."""
    path = normalise_name(member.name)
    kind = _kind_of(member, path)
    if member.mode & _SETID_BITS:
        raise DataError(f"archive entry {path!r} has the setuid or setgid bit set")
    if kind is EntryKind.SYMLINK:
        _check_text(member.link, f"archive entry {path!r}: symlink target")
    if kind is not EntryKind.DIR and not path:
        raise DataError("archive entry '.' must be a directory")
    mode = stat.S_IMODE(member.mode) & 0o1777
    size = member.size if kind is EntryKind.FILE else 0
    return Entry(path, kind, mode, size, member.link if kind is EntryKind.SYMLINK else "")


def _kind_of(member: RawMember, path: str) -> EntryKind:
    if member.type in _FILE_TYPES:
        return EntryKind.FILE
    if member.type == tarfile.DIRTYPE:
        return EntryKind.DIR
    if member.type == tarfile.SYMTYPE:
        return EntryKind.SYMLINK
    what = _REFUSED_TYPES.get(member.type, f"of unsupported type {member.type!r}")
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
