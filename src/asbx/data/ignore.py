"""Ignore rules for trees: gitignore semantics for workspaces, Docker's for build contexts."""

from __future__ import annotations

import abc
import posixpath
from collections.abc import Iterable, Sequence
from pathlib import Path

import pathspec
from pathspec import Pattern

from asbx.errors import DataError

ASBXIGNORE = ".asbxignore"
DOCKERIGNORE = ".dockerignore"


class IgnoreRules(abc.ABC):
    """Decides which relative paths ("a/b/c", "/"-separated) of a tree are left out.

    `excludes(path, is_dir=...)` is the whole answer for one path. `prune(dir)` says whether a
    walker may skip an excluded directory without looking inside: always under gitignore rules
    (git cannot re-include a file whose directory is excluded), and under Docker's rules only
    when no `!` exception could re-include something below it.
    """

    @abc.abstractmethod
    def excludes(self, path: str, *, is_dir: bool = False) -> bool: ...

    def prune(self, directory: str) -> bool:
        """True when `directory` is excluded and nothing below it can be re-included."""
        return self.excludes(directory, is_dir=True)


class _GitRules(IgnoreRules):
    def __init__(self, spec: pathspec.GitIgnoreSpec) -> None:
        self._spec = spec
        self._empty = len(spec) == 0

    def excludes(self, path: str, *, is_dir: bool = False) -> bool:
        if self._empty:
            return False
        return bool(self._spec.match_file(path + "/" if is_dir else path))


class _DockerRules(IgnoreRules):
    """Docker's matcher: the last pattern matching the path *or one of its parents* wins.

    pathspec's gitignore regexes rely on git pruning excluded directories (`/*` matches only
    top-level names), so the parent check is done here, once per directory and pattern.
    """

    def __init__(self, patterns: list[tuple[Pattern, bool]]) -> None:
        self._patterns = patterns  # (pattern, True to exclude / False for a `!` exception)
        self._reincludes = any(not exclude for _, exclude in patterns)
        self._ancestry_of: dict[str, tuple[bool, ...]] = {"": (False,) * len(patterns)}

    def excludes(self, path: str, *, is_dir: bool = False) -> bool:
        if not self._patterns:
            return False
        above = self._ancestry(path.rpartition("/")[0])
        matched = False
        for (pattern, exclude), parent_hit in zip(self._patterns, above, strict=True):
            if exclude == matched:
                continue  # cannot change the answer (Docker skips these too)
            if parent_hit or pattern.match_file(path) is not None:
                matched = exclude
        return matched

    def prune(self, directory: str) -> bool:
        return not self._reincludes and self.excludes(directory)

    def _ancestry(self, directory: str) -> tuple[bool, ...]:
        """Per pattern: does it match `directory` or one of its ancestors?"""
        known = self._ancestry_of.get(directory)
        if known is None:
            above = self._ancestry(directory.rpartition("/")[0])
            known = tuple(
                hit or pattern.match_file(directory) is not None
                for (pattern, _), hit in zip(self._patterns, above, strict=True)
            )
            self._ancestry_of[directory] = known
        return known


def gitignore_rules(patterns: Iterable[str]) -> IgnoreRules:
    """Rules with git's semantics: patterns without a slash match at any depth, `dir/` only dirs."""
    lines = [line for line in patterns if line.strip()]
    return _GitRules(pathspec.GitIgnoreSpec.from_lines(lines))


def workspace_rules(source: Path, patterns: Sequence[str] = ()) -> IgnoreRules:
    """The `ignore:` patterns of a workspace plus the `.asbxignore` file at the source root."""
    return gitignore_rules([*patterns, *read_ignore_file(source / ASBXIGNORE)])


def read_ignore_file(path: Path) -> list[str]:
    """The lines of an ignore file (empty when it does not exist); a UTF-8 BOM is dropped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read ignore file {path}: {exc}") from None
    return text.splitlines()


def dockerignore_file(context: Path, dockerfile: Path | None) -> Path:
    """The ignore file BuildKit uses: `<Dockerfile>.dockerignore` first, else the root's."""
    if dockerfile is not None:
        specific = dockerfile.with_name(dockerfile.name + DOCKERIGNORE)
        if specific.is_file():
            return specific
    return context / DOCKERIGNORE


def dockerignore_rules(lines: Iterable[str]) -> IgnoreRules:
    """Rules with Docker's `.dockerignore` semantics, expressed as anchored gitignore patterns.

    Docker (moby/patternmatcher) differs from git in ways this translation keeps:
    - every pattern is relative to the context root (`*.md` matches `README.md`, not
      `doc/x.md`; write `**/*.md` for any depth): each pattern is anchored with a leading `/`;
    - patterns are cleaned like Go's `filepath.Clean` (`./a/`, `a//b/` -> `a`, `a/b`), so a
      trailing `/` does not restrict a pattern to directories;
    - a pattern matching a directory excludes everything below it, and the last pattern that
      matches a path or one of its parents wins, so `!` can re-include `dir/keep` after `dir`
      (git cannot);
    - lines starting with `#` are comments and surrounding whitespace is trimmed.
    Known gaps: `.` and `/` (which Docker keeps as literal patterns) and patterns that climb out
    of the context with `..` are ignored, as they match no file of the context.
    """
    anchored = [pattern for line in lines if (pattern := _docker_pattern(line)) is not None]
    compiled = pathspec.PathSpec.from_lines("gitignore", anchored).patterns
    return _DockerRules([(p, bool(p.include)) for p in compiled if p.include is not None])


def _docker_pattern(line: str) -> str | None:
    """One `.dockerignore` line as an anchored gitignore pattern, or None for nothing."""
    if line.startswith("#"):
        return None
    pattern = line.strip()
    invert = pattern.startswith("!")
    if invert:
        pattern = pattern[1:].strip()
    if not pattern:
        return None
    cleaned = posixpath.normpath(pattern).lstrip("/")
    if cleaned in ("", ".") or cleaned == ".." or cleaned.startswith("../"):
        return None
    return ("!" if invert else "") + "/" + cleaned
