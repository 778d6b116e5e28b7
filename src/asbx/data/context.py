"""Build-context digests: Dockerfile, args and the files a build sees, hashed with a stat cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from asbx.data.dockerignore import DockerignoreError
from asbx.data.ignore import IgnoreRules, dockerignore_file, dockerignore_rules, read_ignore_file
from asbx.errors import DataError
from asbx.plan.staleness import describe_context_change

DIGEST_VERSION = 1
CACHE_VERSION = 1
# A file whose mtime is this close to the scan is hashed but not cached: a write landing in the
# same timestamp tick as our read would leave size and mtime unchanged (git's "racy clean").
# Two seconds covers filesystems with 1-2 s timestamps (HFS+, FAT, ext3).
RACY_WINDOW_NS = 2_000_000_000
_NO_ARGS: Mapping[str, str] = MappingProxyType({})
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class ContextDigest:
    """The digest of a build's inputs, and each kept file's fingerprint by relative path.

    A fingerprint is "<mode> sha256:<hex of content>" for a file (mode in octal, e.g. 0755) and
    "link sha256:<hex of target>" for a symlink. Directories are represented by their files,
    so an empty directory or a directory's mode alone does not change the digest.
    `hashed_files`/`cached_files` say how many contents were read versus taken from the cache.
    """

    digest: str
    files: Mapping[str, str]
    hashed_files: int = field(default=0, compare=False)
    cached_files: int = field(default=0, compare=False)
    # What besides the files went into the digest: the Dockerfile's sha256 (and its path in the
    # context, if it is there), args, target, platform. Kept to explain the next change.
    inputs: Mapping[str, object] = field(default_factory=dict, compare=False)


def context_digest(
    context: Path,
    *,
    dockerfile: Path | None = None,
    inline: str | None = None,
    args: Mapping[str, str] = _NO_ARGS,
    target: str | None = None,
    platform: str | None = None,
    cache: Path | None = None,
    skip: Collection[Path] = (),
) -> ContextDigest:
    """sha256 over the Dockerfile text, build args, target, platform and the context's kept files.

    The Dockerfile is `inline` text, else `dockerfile` (relative to `context` unless absolute),
    else `context/Dockerfile`. Files are those `.dockerignore` keeps, with Docker's rules (see
    `asbx.data.ignore.dockerignore_rules`); `<Dockerfile>.dockerignore` wins over it, as in
    BuildKit. With `cache` (a JSON file), unchanged files (same size, mtime, ctime and inode)
    are not read again. Files in `skip` (asbx's own, e.g. sandboxes.lock) never count.
    """
    if not context.is_dir():
        raise DataError(f"build context {context} is not a directory")
    dockerfile_path: Path | None = None
    if inline is not None:
        text = inline.encode("utf-8")
    else:
        dockerfile_path = context / (dockerfile or Path("Dockerfile"))
        text = _read_dockerfile(dockerfile_path)
    rules = _context_rules(dockerignore_file(context, dockerfile_path))
    stat_cache = _StatCache(cache, context)
    skipped = {rel for rel in (_relative_to(path, context) for path in skip) if rel is not None}
    files = {rel: stat_cache.fingerprint(rel, path, st)
             for rel, path, st in _kept(context, rules) if rel not in skipped}
    stat_cache.save()
    header = {
        "version": DIGEST_VERSION,
        "dockerfile": hashlib.sha256(text).hexdigest(),
        "args": dict(sorted(args.items())),
        "target": target,
        "platform": platform,
    }
    in_context = _relative_to(dockerfile_path, context) if dockerfile_path else None
    return ContextDigest(
        digest=_combine(header, files),
        files=MappingProxyType(files),
        hashed_files=stat_cache.hashed,
        cached_files=stat_cache.hits,
        inputs={**{k: v for k, v in header.items() if k != "version"},
                "dockerfile_path": in_context},
    )


def _relative_to(path: Path, root: Path) -> str | None:
    try:
        return path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        return None


def describe_build_change(
    old_inputs: Mapping[str, object], old_files: Mapping[str, str], new: ContextDigest
) -> str:
    """Why a build's inputs differ, most telling first, e.g. "Dockerfile changed; build arg
    UV_VERSION changed" or "context changed: 1 file changed (src/app.py)"."""
    parts: list[str] = []
    dockerfile = new.inputs.get("dockerfile_path")
    if old_inputs and old_inputs.get("dockerfile") != new.inputs.get("dockerfile"):
        parts.append("Dockerfile changed")
    old_args, new_args = old_inputs.get("args"), new.inputs.get("args")
    if isinstance(old_args, dict) and isinstance(new_args, dict):
        names = sorted(n for n in old_args.keys() | new_args.keys()
                       if old_args.get(n) != new_args.get(n))
        if names:
            noun = "build arg" if len(names) == 1 else "build args"
            parts.append(f"{noun} {', '.join(names)} changed")
    for key in ("target", "platform"):
        if old_inputs and old_inputs.get(key) != new.inputs.get(key):
            parts.append(f"build {key} changed")
    files_old = dict(old_files)
    files_new = dict(new.files)
    if parts and isinstance(dockerfile, str):  # said above already
        files_old.pop(dockerfile, None)
        files_new.pop(dockerfile, None)
    if files_old != files_new or not parts:
        parts.append("context changed: " + describe_context_change(files_old, files_new))
    return "; ".join(parts)


def _read_dockerfile(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"Dockerfile {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read Dockerfile {path}: {exc.strerror}") from None


def _context_rules(ignore_file: Path) -> IgnoreRules:
    """The context's `.dockerignore` rules; a pattern Docker rejects is a DataError at file:line."""
    try:
        return dockerignore_rules(read_ignore_file(ignore_file))
    except DockerignoreError as exc:
        raise DataError(f"{ignore_file}:{exc.line}: {exc.message}") from None


def _kept(context: Path, rules: IgnoreRules) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) of every file and symlink the rules keep."""
    root = os.fspath(context.absolute())
    pending = [("", root)]
    while pending:
        rel_dir, abs_dir = pending.pop()
        try:
            listing = list(os.scandir(abs_dir))
        except PermissionError:
            if rel_dir and rules.excludes(rel_dir, is_dir=True):
                continue  # BuildKit (fsutil) skips an excluded directory it cannot read
            raise DataError(f"cannot read build context directory {abs_dir}: permission denied"
                            ) from None
        except OSError as exc:
            message = f"cannot read build context directory {abs_dir}: {exc.strerror}"
            raise DataError(message) from None
        for entry in listing:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                if isinstance(exc, PermissionError) and rules.excludes(rel):
                    continue  # listed but not searchable, and excluded: skipped, as by BuildKit
                raise DataError(f"cannot read build context entry {rel}: {exc.strerror}"
                                ) from None
            if stat.S_ISDIR(st.st_mode):
                if not rules.prune(rel):
                    pending.append((rel, entry.path))
            elif _is_file_or_link(st) and not rules.excludes(rel):
                yield rel, entry.path, st


def _is_file_or_link(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)


def _combine(header: Mapping[str, object], files: Mapping[str, str]) -> str:
    sha = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    sha.update(b"\n")
    for rel in sorted(files):
        sha.update(rel.encode("utf-8", "surrogateescape"))
        sha.update(b"\0")
        sha.update(files[rel].encode("ascii"))
        sha.update(b"\n")
    return "sha256:" + sha.hexdigest()


class _StatCache:
    """Fingerprints by absolute path, reused while (size, mtime, ctime, inode) are unchanged.

    One cache file may serve several contexts: entries under other roots are kept as they were.
    """

    def __init__(self, path: Path | None, context: Path) -> None:
        self.path = path
        self.prefix = os.fspath(context.absolute()) + os.sep
        self.old: dict[str, list[object]] = _load_cache(path) if path is not None else {}
        self.new: dict[str, list[object]] = {}
        self.hashed = 0
        self.hits = 0
        self.racy_before = time.time_ns() - RACY_WINDOW_NS

    def fingerprint(self, rel: str, path: str, st: os.stat_result) -> str:
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        cached = self.old.get(path)
        if cached is not None and cached[:4] == key and isinstance(cached[4], str):
            self.hits += 1
            self.new[path] = cached
            return cached[4]
        value = _fingerprint(rel, path, st)
        self.hashed += 1
        if st.st_mtime_ns < self.racy_before:
            self.new[path] = [*key, value]
        return value

    def save(self) -> None:
        if self.path is None or not self._dirty():
            return
        entries = {k: v for k, v in self.old.items() if not k.startswith(self.prefix)}
        entries.update(self.new)
        document = {"version": CACHE_VERSION, "entries": entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, separators=(",", ":"))
            os.replace(name, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def _dirty(self) -> bool:
        if len(self.new) != self.hits:
            return True
        return sum(1 for key in self.old if key.startswith(self.prefix)) != self.hits


def _load_cache(path: Path) -> dict[str, list[object]]:
    """The cache's entries; a missing, corrupt or foreign-version cache is simply empty."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("version") != CACHE_VERSION:
        return {}
    entries = document.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(v, list) and len(v) == 5}


def _fingerprint(rel: str, path: str, st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        return "link sha256:" + hashlib.sha256(os.fsencode(target)).hexdigest()
    try:
        fd = os.open(path, _OPEN_FILE)
    except OSError as exc:
        raise DataError(f"cannot read build context file {rel}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(f"build context file {rel} changed while being read")
        content = hashlib.file_digest(source, "sha256").hexdigest()
    return f"{stat.S_IMODE(st.st_mode):04o} sha256:{content}"
