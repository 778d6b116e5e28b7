"""Helpers for data tests: build trees, describe trees, and hand-craft (malicious) archives."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import zstandard

from asbx.data.snapshots import SnapshotStore

OLD_NS = 1_500_000_000 * 10**9  # 2017: safely outside the stat cache's racy window


def make_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Create files below `root` ("a/b.txt": content); a name ending in "/" is an empty dir."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def describe_tree(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """{relative path: (kind, permission bits, content or link target)} for a whole tree."""
    found: dict[str, tuple[str, int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode), b"")
            else:
                found[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return found


def backdate(root: Path) -> None:
    """Set every file's mtime far in the past (as in a checkout older than a few seconds)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            os.utime(Path(dirpath) / name, ns=(OLD_NS, OLD_NS), follow_symlinks=False)


def member(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    *,
    mode: int = 0o644,
    size: int | None = None,
    link: str = "",
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = len(data) if size is None else size
    info.linkname = link
    return info


def tar_bytes(
    members: Iterable[tuple[tarfile.TarInfo, bytes]],
    *,
    fmt: int = tarfile.PAX_FORMAT,
    end: bool = True,
) -> bytes:
    """A raw tar stream written header by header, so headers may lie about their data."""
    out = io.BytesIO()
    for info, data in members:
        out.write(info.tobuf(fmt, "utf-8", "surrogateescape"))
        out.write(data)
        out.write(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    if end:
        out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    return out.getvalue()


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def plant(store: SnapshotStore, archive: bytes) -> str:
    """Put archive bytes straight into the store (as if it had been tampered with)."""
    digest = "sha256:" + hashlib.sha256(archive).hexdigest()
    path = store.path_of(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(archive)
    return digest
