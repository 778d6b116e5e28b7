"""Ignore rules for trees: gitignore semantics for workspaces, Docker's for build contexts."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pathspec

from asbx.errors import DataError

ASBXIGNORE = ".asbxignore"
DOCKERIGNORE = ".dockerignore"


class IgnoreRules:
    """Decides which relative paths ("a/b/c", "/"-separated) of a tree are left out.

    `excludes(path, is_dir)` is the whole answer for one path. `prune(dir)` says whether a walker
    may skip an excluded directory without looking inside: always true under gitignore rules (git
    cannot re-include a file whose directory is excluded), and under Docker's rules only when no
    `!` exception could re-include something below it.
    """

    def __init__(self, spec: pathspec.PathSpec[Any], *, dir_suffix: bool, reincludes: bool) -> None:
        self._spec = spec
        self._dir_suffix = dir_suffix
        self._reincludes = reincludes
        self.empty = len(spec) == 0

    def excludes(self, path: str, *, is_dir: bool = False) -> bool:
        if self.empty:
            return False
        if is_dir and self._dir_suffix:
            path += "/"
        return bool(self._spec.match_file(path))

    def prune(self, directory: str) -> bool:
        """True when `directory` is excluded and nothing below it can be re-included."""
        return self.excludes(directory, is_dir=True) and not self._reincludes


def gitignore_rules(patterns: Iterable[str]) -> IgnoreRules:
    """Rules with git's semantics: patterns without a slash match at any depth, `dir/` only dirs."""
    lines = [line for line in patterns if line.strip()]
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return IgnoreRules(spec, dir_suffix=True, reincludes=False)


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
    - a pattern matching a directory excludes everything below it, and the last matching
      pattern wins even below an excluded directory, so `!` can re-include `dir/keep` after `dir`
      (git cannot): evaluation is last-match-wins over the full path (`pathspec.PathSpec`);
    - lines starting with `#` are comments and surrounding whitespace is trimmed.
    Known gaps: `.` and `/` (which Docker keeps as literal patterns) and patterns that climb out
    of the context with `..` are ignored, as they match no file of the context.
    """
    patterns = [anchored for line in lines if (anchored := _docker_pattern(line)) is not None]
    spec = pathspec.PathSpec.from_lines("gitignore", patterns)
    reincludes = any(pattern.startswith("!") for pattern in patterns)
    return IgnoreRules(spec, dir_suffix=False, reincludes=reincludes)


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
