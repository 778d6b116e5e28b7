"""Ignore rules for trees: gitignore semantics for workspaces, Docker's for build contexts."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from asbx.data.dockerignore import DockerMatcher, compile_patterns, read_patterns
from asbx.errors import DataError

if TYPE_CHECKING:  # imported on use: loading a spec never needs it (~15 ms)
    import pathspec

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
    """Docker's rules (see asbx.data.dockerignore): the last pattern matching the path *or one
    of its parents* wins, and `dir/` is the same pattern as `dir`."""

    def __init__(self, matcher: DockerMatcher) -> None:
        self._matcher = matcher

    def excludes(self, path: str, *, is_dir: bool = False) -> bool:
        return self._matcher.excludes(path)

    def prune(self, directory: str) -> bool:
        return self._matcher.can_skip(directory)


def gitignore_rules(patterns: Iterable[str]) -> IgnoreRules:
    """Rules with git's semantics: patterns without a slash match at any depth, `dir/` only dirs."""
    import pathspec

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
    """Rules with Docker's `.dockerignore` semantics (moby/patternmatcher, as BuildKit's fsutil
    walks a context with it): every pattern is relative to the context root (`*.md` matches
    `README.md`, not `doc/x.md`; `**/*.md` matches at any depth), a pattern matching a
    directory excludes everything below it, the last matching pattern wins (so `!dir/keep`
    after `dir` re-includes), `#` starts a comment only at the start of a line.
    Raises DockerignoreError (with the line) for a pattern Docker rejects.
    """
    return _DockerRules(DockerMatcher(compile_patterns(read_patterns(lines))))
