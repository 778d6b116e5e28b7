"""The content-addressed snapshot store: deterministic `.tar.zst` archives of workspaces."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

from asbx.data.archive_safety import (
    ArchiveLimits,
    ArchiveSummary,
    DirectorySink,
    EntryChecker,
    NullSink,
    read_archive,
)
from asbx.data.tarstream import Entry, TarWriter, walk
from asbx.data.workspaces import move_into_place, staging_directory
from asbx.errors import DataError, NotFoundError

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_SUFFIX = ".tar.zst"
_CHUNK = 1 << 20
_STALE_TEMP_SECONDS = 24 * 3600


@dataclass(frozen=True)
class SnapshotInfo:
    """One archive in the store: `size` is the archive's bytes, `content_bytes` the files' bytes.

    `files` counts regular files and symlinks (directories are not counted).
    """

    digest: str
    size: int
    content_bytes: int
    files: int
    path: Path


class SnapshotStore:
    """Archives at `root/sha256/<hex>.tar.zst`, each named by the sha256 of its bytes.

    Capture is deterministic (sorted entries, mtimes 0, owners 0/"", permission bits kept,
    symlinks kept, zstd in multi-threaded mode whose output does not depend on the number of
    threads), so an unchanged workspace gives the same digest and no new file. A different
    zstandard version may compress differently; that only costs one duplicate archive.
    A `<hex>.json` sidecar keeps each archive's sizes and file count.
    """

    def __init__(
        self, root: Path, *, limits: ArchiveLimits | None = None, level: int = 3,
        threads: int = -1,
    ) -> None:
        self.root = root
        self.limits = limits or ArchiveLimits()
        self.level = level
        # threads=0 selects zstd's single-threaded mode, whose output differs: never use it.
        self.threads = threads if threads == -1 else max(threads, 1)

    def path_of(self, digest: str) -> Path:
        """Where the archive for `digest` ("sha256:<64 hex>") lives (whether or not it exists)."""
        match = _DIGEST.fullmatch(digest)
        if match is None:
            raise DataError(f"{digest!r} is not a snapshot digest (expected sha256:<64 hex>)")
        return self.root / "sha256" / f"{match.group(1)}{_SUFFIX}"

    def capture(self, workspace: Path) -> SnapshotInfo:
        """Archive `workspace`; returns the existing archive's info if its digest is known."""
        if workspace.is_symlink() or not workspace.is_dir():
            raise DataError(f"cannot capture {workspace}: not a directory")
        with _os_errors(f"cannot capture {workspace}"), self._temp_file("capture") as temp:
            with temp.open("wb") as out:
                hashing = _HashingWriter(out)
                sink = cast(IO[bytes], hashing)
                with self._compressor().stream_writer(sink, closefd=False) as compressed:
                    summary = write_tree(workspace, compressed, self.limits)
                _sync(out)
            return self._admit(temp, hashing.digest(), hashing.size, summary)

    def restore(self, digest: str, dest: Path) -> SnapshotInfo:
        """Verify the archive's digest, then extract it safely into a new or empty `dest`."""
        archive = self._existing(digest)
        self._verify(digest, archive)
        failure = f"cannot restore snapshot {digest} into {dest}"
        with _os_errors(failure), staging_directory(dest, "restore") as staging:
            try:
                with archive.open("rb") as raw:
                    summary = read_archive(raw, DirectorySink(staging), self.limits)
            except DataError as exc:
                raise DataError(f"cannot restore snapshot {digest}: {exc.message}") from None
            staging.chmod(0o755)
            move_into_place(staging, dest)
        return self._info_for(digest, archive, summary)

    def import_archive(self, file: Path) -> SnapshotInfo:
        """Check every entry of a `.tar.zst` file as restore would, then add it to the store.

        This is the trust boundary, so it alone also applies the expansion bound of
        `ArchiveLimits` (`max_import_ratio` beyond `import_ratio_floor`): each header is checked
        against the file's compressed size before its data is decompressed, and a refused
        archive leaves the store as it was. Restore and capture do not apply it.
        """
        if not file.is_file():
            raise NotFoundError(f"cannot import {file}: no such file")
        with _os_errors(f"cannot import {file}"), self._temp_file("import") as temp:
            with file.open("rb") as source, temp.open("wb") as copy:
                compressed_size = os.fstat(source.fileno()).st_size
                tee = _HashingReader(source, copy)
                try:
                    summary = read_archive(
                        tee, NullSink(), self.limits, compressed_size=compressed_size
                    )
                except DataError as exc:
                    raise DataError(f"cannot import {file}: {exc.message}", hint=exc.hint) from None
                tee.drain()
                _sync(copy)
            return self._admit(temp, tee.digest(), tee.size, summary)

    def export(self, digest: str, file: Path, *, overwrite: bool = False) -> None:
        """Copy an archive to `file`, checking its digest on the way; refuses to overwrite."""
        archive = self._existing(digest)
        if os.path.lexists(file) and not overwrite:
            raise DataError(f"{file} already exists; refusing to overwrite it")
        with _os_errors(f"cannot export snapshot {digest} to {file}"):
            self._export(digest, archive, file, overwrite=overwrite)

    def _export(self, digest: str, archive: Path, file: Path, *, overwrite: bool) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part", dir=file.parent)
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, archive.open("rb") as source:
                tee = _HashingReader(source, out)
                tee.drain()
                _sync(out)
            if tee.digest() != digest:
                raise DataError(f"snapshot {digest} is corrupt: its archive hashes to "
                                f"{tee.digest()}")
            temp.chmod(0o644)
            _publish(temp, file, overwrite=overwrite)
        finally:
            temp.unlink(missing_ok=True)

    def secret_files(self, digest: str) -> builtins.list[str]:
        """The files of an archive that look like secrets (.env, private keys, ...)."""
        from asbx.data.secrets import secret_files

        sink = _PathSink()
        with _os_errors(f"cannot read snapshot {digest}"), self._existing(digest).open("rb") as raw:
            read_archive(raw, sink, self.limits)
        return secret_files(sink.paths)

    def remove(self, digest: str) -> None:
        """Delete one archive (and its sidecar)."""
        archive = self._existing(digest)
        archive.unlink()
        _sidecar(archive).unlink(missing_ok=True)

    def list(self) -> list[SnapshotInfo]:
        """Every archive in the store, sorted by digest."""
        folder = self.root / "sha256"
        if not folder.is_dir():
            return []
        names = sorted(p.name for p in folder.iterdir() if p.name.endswith(_SUFFIX))
        digests = [f"sha256:{name.removesuffix(_SUFFIX)}" for name in names]
        return [self.info(d) for d in digests if _DIGEST.fullmatch(d)]

    def gc(self, referenced: set[str], dry_run: bool = True) -> builtins.list[SnapshotInfo]:
        """Archives that no digest in `referenced` names; deleted unless `dry_run`.

        A real run also clears temporary files left by captures that died a day or more ago.
        """
        unreferenced = [info for info in self.list() if info.digest not in referenced]
        if not dry_run:
            for info in unreferenced:
                self.remove(info.digest)
            self._clear_stale_temp()
        return unreferenced

    def info(self, digest: str) -> SnapshotInfo:
        """The stored facts about one archive (recomputed by a scan if its sidecar is missing)."""
        archive = self._existing(digest)
        recorded = _read_sidecar(archive)
        if recorded is not None:
            return SnapshotInfo(digest, archive.stat().st_size, *recorded, path=archive)
        try:
            with archive.open("rb") as raw:
                summary = read_archive(raw, NullSink(), self.limits)
        except DataError as exc:
            raise DataError(f"snapshot {digest} is unreadable: {exc.message}") from None
        return self._info_for(digest, archive, summary)

    def _existing(self, digest: str) -> Path:
        archive = self.path_of(digest)
        if not archive.is_file():
            raise NotFoundError(f"snapshot {digest} is not in the store ({self.root})")
        return archive

    def _verify(self, digest: str, archive: Path) -> None:
        with archive.open("rb") as raw:
            actual = "sha256:" + hashlib.file_digest(raw, "sha256").hexdigest()
        if actual != digest:
            raise DataError(
                f"snapshot {digest} is corrupt: its archive hashes to {actual}",
                hint=f"remove it with `asbx snapshot rm` and capture again ({archive})",
            )

    def _compressor(self) -> zstandard.ZstdCompressor:
        return zstandard.ZstdCompressor(level=self.level, threads=self.threads, write_checksum=True)

    def _admit(self, temp: Path, digest: str, size: int, summary: ArchiveSummary) -> SnapshotInfo:
        archive = self.path_of(digest)
        if archive.is_file():
            if _read_sidecar(archive) is None:
                _write_sidecar(archive, summary)
            return SnapshotInfo(digest, size, summary.content_bytes, summary.files, archive)
        _write_sidecar(archive, summary)
        temp.chmod(0o444)
        os.replace(temp, archive)
        _sync_dir(archive.parent)
        return SnapshotInfo(digest, size, summary.content_bytes, summary.files, archive)

    def _info_for(self, digest: str, archive: Path, summary: ArchiveSummary) -> SnapshotInfo:
        if _read_sidecar(archive) is None:
            _write_sidecar(archive, summary)
        return SnapshotInfo(
            digest, archive.stat().st_size, summary.content_bytes, summary.files, archive
        )

    @contextlib.contextmanager
    def _temp_file(self, purpose: str) -> Iterator[Path]:
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        (self.root / "sha256").mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{purpose}-", suffix=".part", dir=folder)
        os.close(fd)
        try:
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    def _clear_stale_temp(self) -> None:
        folder = self.root / "tmp"
        if not folder.is_dir():
            return
        cutoff = time.time() - _STALE_TEMP_SECONDS
        for leftover in folder.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()


@contextlib.contextmanager
def _os_errors(failure: str) -> Iterator[None]:
    """Turn an OSError (no space, permission denied, ...) into a DataError saying what failed."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise DataError(f"{failure}: {exc.strerror or exc}{where}") from None


def _sidecar(archive: Path) -> Path:
    return archive.with_name(archive.name.removesuffix(_SUFFIX) + ".json")


def _read_sidecar(archive: Path) -> tuple[int, int] | None:
    """(content_bytes, files) from the sidecar, or None if it is missing or unreadable."""
    try:
        data = json.loads(_sidecar(archive).read_text(encoding="utf-8"))
        content_bytes, files = data["content_bytes"], data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(content_bytes, int) and isinstance(files, int)):
        return None
    return content_bytes, files


def _write_sidecar(archive: Path, summary: ArchiveSummary) -> None:
    text = json.dumps({"content_bytes": summary.content_bytes, "files": summary.files}) + "\n"
    fd, name = tempfile.mkstemp(prefix=".sidecar-", suffix=".part", dir=archive.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(name, 0o644)
    os.replace(name, _sidecar(archive))


def _publish(temp: Path, file: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, file)
        return
    try:
        os.link(temp, file)  # fails if `file` appeared meanwhile: never clobber
    except FileExistsError:
        raise DataError(f"{file} already exists; refusing to overwrite it") from None


def _sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _HashingWriter:
    """A write-only sink that hashes and counts everything written to `out`."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


class _HashingReader:
    """Reads `source`, hashing and counting the bytes and copying them to `copy`."""

    def __init__(self, source: BinaryIO, copy: BinaryIO) -> None:
        self.source = source
        self.copy = copy
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha.update(data)
        self.size += len(data)
        self.copy.write(data)
        return data

    def drain(self) -> None:
        """Read what the decompressor left (trailing bytes count in the digest too)."""
        while self.read(_CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def write_tree(root: Path, out: BinaryIO, limits: ArchiveLimits) -> ArchiveSummary:
    """Stream `root` as a deterministic tar into `out`, checking it as a restore would.

    Entries are depth-first in name order, with mtime 0, owner 0/"" and permission bits (no
    setuid/setgid/sticky); symlinks stay symlinks; FIFOs, sockets and devices are left out.
    """
    checker = EntryChecker(limits)
    writer = TarWriter(out)
    for entry, source in walk(root):
        checker.admit(entry, entry.size)
        try:
            writer.add(entry, source)
        except OSError as exc:
            raise DataError(f"cannot capture {entry.path!r}: {exc.strerror}") from None
    checker.finish()
    writer.close()
    return checker.summary()


class _PathSink(NullSink):
    """A full safety scan that notes the path of every regular file."""

    def __init__(self) -> None:
        self.paths: builtins.list[str] = []

    def file(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        self.paths.append(entry.path)
        super().file(entry, chunks)


def home_store(home: Path) -> SnapshotStore:
    """The store asbx itself uses: `$ASBX_HOME/snapshots`, shared by every project.

    Symlinks that point outside the workspace (a virtualenv's `bin/python -> /usr/bin/python3`)
    are kept as links: they resolve inside the sandbox, and asbx never follows them nor writes
    through any link when extracting. Everything else stays refused (`..`, absolute paths,
    hard links, devices, setuid bits).
    """
    return SnapshotStore(home / "snapshots", limits=ArchiveLimits(external_symlinks=True))
