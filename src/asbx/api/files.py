"""Workspace files by relative path, never leaving the workspace (no `..`, no symlinks followed)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from asbx.errors import AsbxError, NotFoundError

MAX_FILE_BYTES = 64 << 20


class UnsafePathError(AsbxError):
    """A file path that could name something outside the workspace."""


def split_path(path: str) -> list[str]:
    """The components of a workspace-relative path, or UnsafePathError (absolute, `..`, ...)."""
    if not path or "\0" in path or "\\" in path:
        raise UnsafePathError(f"{path!r} is not a workspace path")
    if path.startswith("/"):
        raise UnsafePathError(f"{path!r} is absolute: give a path relative to /workspace")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise UnsafePathError(f"{path!r} names the workspace itself, not a file")
    if ".." in parts:
        raise UnsafePathError(f"{path!r} contains '..': paths must stay inside /workspace")
    return parts


@contextmanager
def _parent_fd(root: Path, parts: list[str], *, create: bool) -> Iterator[int]:
    """An fd of the directory holding the last component, walked with O_NOFOLLOW from `root`."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(root, flags)
    except FileNotFoundError:
        raise NotFoundError("the sandbox has no workspace yet") from None
    try:
        for part in parts[:-1]:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                raise NotFoundError(f"no directory {part!r} in the workspace") from None
            except (NotADirectoryError, OSError) as exc:  # ELOOP: a symlink, refused
                raise UnsafePathError(f"{part!r} is not a directory inside the workspace "
                                      f"({exc.strerror})") from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_error(name: str, exc: OSError) -> AsbxError:
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"no file {name!r} in the workspace")
    return UnsafePathError(f"{name!r} cannot be opened inside the workspace ({exc.strerror})")


def read_file(root: Path, path: str) -> bytes:
    """The bytes of a regular file under `root`; a symlink anywhere on the way is refused."""
    parts = split_path(path)
    with _parent_fd(root, parts, create=False) as parent:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         dir_fd=parent)
        except OSError as exc:
            raise _open_error(parts[-1], exc) from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnsafePathError(f"{path!r} is not a regular file")
            if info.st_size > MAX_FILE_BYTES:
                raise UnsafePathError(f"{path!r} is larger than {MAX_FILE_BYTES} bytes")
            return handle.read(MAX_FILE_BYTES + 1)


def write_file(root: Path, path: str, data: bytes) -> None:
    """Write `data` to a regular file under `root`, making parent directories as needed."""
    parts = split_path(path)
    if len(data) > MAX_FILE_BYTES:
        raise UnsafePathError(f"a file of more than {MAX_FILE_BYTES} bytes is refused")
    with _parent_fd(root, parts, create=True) as parent:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(parts[-1], flags | os.O_NONBLOCK, 0o644, dir_fd=parent)
        except OSError as exc:
            raise _open_error(parts[-1], exc) from None
        with os.fdopen(fd, "wb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UnsafePathError(f"{path!r} is not a regular file")
            handle.write(data)


def delete_file(root: Path, path: str) -> None:
    """Remove a file (or a symlink itself, never its target) under `root`."""
    parts = split_path(path)
    with _parent_fd(root, parts, create=False) as parent:
        try:
            info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        except OSError as exc:
            raise _open_error(parts[-1], exc) from None
        if stat.S_ISDIR(info.st_mode):
            raise UnsafePathError(f"{path!r} is a directory")
        os.unlink(parts[-1], dir_fd=parent)
