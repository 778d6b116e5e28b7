"""Sandbox workspaces on the host: where they live, seeding one from a directory, removing one."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asbx.data.ignore import IgnoreRules, workspace_rules
from asbx.data.secrets import SecretRules
from asbx.errors import DataError

WORKSPACE_DIR = "workspace"
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class SeedResult:
    """What `seed_workspace` copied: regular files and their bytes, and what it left out.

    `skipped_links` are symlinks that resolve outside the source (never copied);
    `skipped_special` are FIFOs, sockets and device nodes (a workspace holds none);
    `skipped_secrets` are secret files (asbx.data.secrets) that `include` did not list.
    """

    files: int
    bytes: int
    skipped_links: tuple[str, ...]
    skipped_special: tuple[str, ...] = ()
    skipped_secrets: tuple[str, ...] = ()  # secret files `include:` did not list


def workspace_path(home: Path, project: str, sandbox: str) -> Path:
    """`$home/projects/<project>/sandboxes/<sandbox>/workspace`; both names must be plain names."""
    for what, name in (("project", project), ("sandbox", sandbox)):
        check_path_component(what, name)
    return home / "projects" / project / "sandboxes" / sandbox / WORKSPACE_DIR


SETUP_MARKER = "setup-done"


def setup_marker(home: Path, project: str, sandbox: str) -> Path:
    """`.../sandboxes/<sandbox>/setup-done`: the id of the container whose setup finished.

    Beside the workspace, never in it (the sandbox cannot write it), and outside the state
    database, so adoption after losing the database can tell a finished setup from a crash.
    """
    return workspace_path(home, project, sandbox).parent / SETUP_MARKER


def read_setup_marker(home: Path, project: str, sandbox: str) -> str:
    """The container id recorded by `write_setup_marker`, or "" (absent or not a plain file)."""
    path = setup_marker(home, project, sandbox)
    if path.is_symlink() or not path.is_file():
        return ""
    return path.read_text(encoding="utf-8").strip()


def write_setup_marker(home: Path, project: str, sandbox: str, container_id: str) -> None:
    path = setup_marker(home, project, sandbox)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(container_id + "\n", encoding="utf-8")


LIMITS_NOTE = "limits-set"


def limits_note(home: Path, project: str, sandbox: str) -> Path:
    """`.../sandboxes/<sandbox>/limits-set`: "<container id> <config hash>" after an in-place
    limits update, whose container keeps the label hash it was made with: how adoption after
    a lost database tells such a container from one changed outside asbx."""
    return workspace_path(home, project, sandbox).parent / LIMITS_NOTE


def read_limits_note(home: Path, project: str, sandbox: str) -> tuple[str, str] | None:
    """(container id, config hash) from `write_limits_note`, or None."""
    path = limits_note(home, project, sandbox)
    if path.is_symlink() or not path.is_file():
        return None
    words = path.read_text(encoding="utf-8").split()
    return (words[0], words[1]) if len(words) == 2 else None


def write_limits_note(home: Path, project: str, sandbox: str, container_id: str,
                      config_hash: str) -> None:
    path = limits_note(home, project, sandbox)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(f"{container_id} {config_hash}\n", encoding="utf-8")


def check_path_component(what: str, name: str) -> None:
    """Refuse a name that is not one safe path component (no `/`, NUL, `.` or `..`)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise DataError(f"{what} name {name!r} cannot be used as a directory name")


def seed_workspace(source: Path, dest: Path, ignore: Sequence[str] = (),
                   include: Sequence[str] = ()) -> SeedResult:
    """Copy `source` into an empty or missing `dest`, honouring `ignore` and `source/.asbxignore`.

    Secret files (`.env`, private keys, ...: asbx.data.secrets) are left out unless a pattern of
    `include` matches them.

    Patterns use gitignore syntax relative to `source`; `.git` is copied unless ignored. Regular
    files, directories and symlinks are copied with their permission bits (setuid, setgid and
    sticky bits are dropped, owners are not copied) and file mtimes. A symlink is copied only if
    it resolves inside `source`; one written as an absolute path, or climbing out and back in,
    is rewritten as the equivalent relative link. The copy is built in a directory beside `dest`
    and renamed into place, so `dest` never holds a partial copy.
    """
    if not source.is_dir():
        raise DataError(f"cannot seed a workspace from {source}: not a directory")
    rules = workspace_rules(source, ignore)
    with staging_directory(dest, "seed") as staging:
        copier = _TreeCopier(source, staging, rules, SecretRules(include))
        try:
            copier.copy()
        except OSError as exc:
            message = f"cannot copy {exc.filename} into the workspace: {exc.strerror}"
            raise DataError(message) from None
        except RecursionError:
            raise DataError(f"cannot copy {source}: directories nested too deeply") from None
        staging.chmod(stat.S_IMODE(source.stat().st_mode) & 0o777)
        move_into_place(staging, dest)
    return copier.result()


def remove_workspace(path: Path, *, home: Path | None = None) -> None:
    """Delete a workspace directory; refuses anything not shaped like one (or outside `home`).

    The path must end in `projects/<project>/sandboxes/<name>/workspace`, both as given and once
    symlinks are resolved, and must not itself be a symlink. A missing workspace is not an error.
    """
    _check_workspace_layout(path, home)
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        raise DataError(f"refusing to remove {path}: not a directory")
    remove_tree(path)


def _check_workspace_layout(path: Path, home: Path | None) -> None:
    candidates = [path.absolute()]
    if os.path.lexists(path):
        candidates.append(path.resolve())
    for candidate in candidates:
        parts = candidate.parts
        shaped = (
            len(parts) >= 6
            and parts[-1] == WORKSPACE_DIR
            and parts[-3] == "sandboxes"
            and parts[-5] == "projects"
            and ".." not in parts
        )
        if not shaped:
            raise DataError(
                f"refusing to remove {path}: not a workspace "
                "(expected .../projects/<project>/sandboxes/<name>/workspace)"
            )
    if home is not None:
        inside = [home.absolute(), home.resolve()]
        if not any(c.is_relative_to(h / "projects") for c in candidates for h in inside):
            raise DataError(f"refusing to remove {path}: not inside {home}")


def remove_tree(path: Path) -> None:
    """shutil.rmtree (symlink-safe), also emptying directories that were made read-only."""
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=_retry_writable)
    else:
        shutil.rmtree(path, onerror=_retry_writable)


def _retry_writable(function: Callable[..., Any], path: str, _exc: object) -> None:
    """rmtree error hook: make the parent directory writable once and try again."""
    parent = os.path.dirname(path)
    os.chmod(parent, stat.S_IMODE(os.lstat(parent).st_mode) | stat.S_IRWXU)
    function(path)


@contextlib.contextmanager
def staging_directory(dest: Path, purpose: str) -> Iterator[Path]:
    """A new private directory beside `dest`, removed again unless it was moved into place."""
    ensure_empty_target(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{purpose}-", dir=dest.parent))
    try:
        yield staging
    finally:
        if os.path.lexists(staging):
            remove_tree(staging)


def ensure_empty_target(dest: Path) -> None:
    """Refuse a destination that exists and is anything but an empty, real directory."""
    if not os.path.lexists(dest):
        return
    if dest.is_symlink() or not dest.is_dir():
        raise DataError(f"{dest} exists and is not a directory")
    if any(dest.iterdir()):
        raise DataError(f"{dest} is not empty; refusing to write over it")


def move_into_place(staging: Path, dest: Path) -> None:
    """Rename a finished staging directory to `dest` (which must be missing or empty)."""
    try:
        os.replace(staging, dest)
    except OSError as exc:
        raise DataError(f"cannot move the new tree into {dest}: {exc.strerror}") from None


class _TreeCopier:
    """Copies one source tree into a staging directory, never following symlinks."""

    def __init__(self, source: Path, target: Path, rules: IgnoreRules,
                 secrets: SecretRules) -> None:
        self.source = source
        self.secrets = secrets
        self.skipped_secrets: list[str] = []
        self.real_source = source.resolve()
        self.target = target
        self.rules = rules
        self.files = 0
        self.bytes = 0
        self.skipped_links: list[str] = []
        self.skipped_special: list[str] = []
        self.dir_times: list[tuple[Path, os.stat_result]] = []
        self._staging_id = _identity(target.stat())

    def copy(self) -> None:
        self._copy_dir("")
        for directory, st in self.dir_times:
            os.utime(directory, ns=(st.st_atime_ns, st.st_mtime_ns))

    def result(self) -> SeedResult:
        return SeedResult(
            files=self.files,
            bytes=self.bytes,
            skipped_links=tuple(self.skipped_links),
            skipped_special=tuple(self.skipped_special),
            skipped_secrets=tuple(self.skipped_secrets),
        )

    def _copy_dir(self, rel: str) -> None:
        with os.scandir(self.source / rel if rel else self.source) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            st = entry.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.rules.excludes(child, is_dir=is_dir):
                continue
            if not is_dir and self.secrets.skips(child):
                self.skipped_secrets.append(child)
                continue
            if is_dir:
                self._copy_subdir(child, st)
            elif stat.S_ISREG(st.st_mode):
                self._copy_file(child, st)
            elif stat.S_ISLNK(st.st_mode):
                self._copy_link(child)
            else:
                self.skipped_special.append(child)

    def _copy_subdir(self, rel: str, st: os.stat_result) -> None:
        if _identity(st) == self._staging_id:
            return  # dest lies inside source: do not copy the copy into itself
        target = self.target / rel
        os.mkdir(target, 0o700)
        self._copy_dir(rel)
        os.chmod(target, stat.S_IMODE(st.st_mode) & 0o777)
        self.dir_times.append((target, st))

    def _copy_file(self, rel: str, st: os.stat_result) -> None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        src_fd = os.open(self.source / rel, flags)
        try:
            if not stat.S_ISREG(os.fstat(src_fd).st_mode):
                self.skipped_special.append(rel)
                return
            out_flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            dst_fd = os.open(self.target / rel, out_flags, 0o600)
            try:
                self.bytes += _copy_fd(src_fd, dst_fd)
                os.fchmod(dst_fd, stat.S_IMODE(st.st_mode) & 0o777)
                os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
        self.files += 1

    def _copy_link(self, rel: str) -> None:
        link = self.source / rel
        text = os.readlink(link)
        resolved = Path(os.path.realpath(link))
        if not resolved.is_relative_to(self.real_source):
            self.skipped_links.append(rel)
            return
        parent = posixpath_parent(rel)
        lexical = os.path.normpath(os.path.join(parent, text))
        if os.path.isabs(text) or lexical == ".." or lexical.startswith("../"):
            inside = resolved.relative_to(self.real_source).as_posix()
            text = os.path.relpath(inside or ".", parent or ".")
        os.symlink(text, self.target / rel)


def posixpath_parent(rel: str) -> str:
    """The parent of a relative "/"-separated path ("" for a top-level name)."""
    return rel.rpartition("/")[0]


def _copy_fd(src_fd: int, dst_fd: int) -> int:
    copied = 0
    while chunk := os.read(src_fd, _COPY_CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view):]
        copied += len(chunk)
    return copied


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)

