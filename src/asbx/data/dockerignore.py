"""`.dockerignore` rules as Docker applies them: moby/patternmatcher, walked as fsutil does."""

from __future__ import annotations

import enum
import posixpath
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# patternmatcher escapes these in its regex; every other character but `*?[]\` is kept as is.
_REGEX_SPECIAL = frozenset(".+()|{}$")
# fsutil: an exception pattern with one of these (after a trailing /** or /*) may re-include
# something at any depth, so no excluded directory may be skipped unread.
_FSUTIL_PATTERN_CHARS = frozenset("*[]?^\\")


class DockerignoreError(ValueError):
    """A pattern Docker rejects; `line` is its 1-based line in the ignore file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Kind(enum.Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEX = "regex"


@dataclass(frozen=True)
class DockerPattern:
    """One cleaned pattern: `exclusion` is a `!` exception; `line` is where it was read."""

    text: str
    exclusion: bool
    line: int
    kind: _Kind
    regex: re.Pattern[str] | None

    def matches(self, path: str) -> bool:
        """patternmatcher's Pattern.match for one slash-separated relative path."""
        if self.kind is _Kind.EXACT:
            return path == self.text
        if self.kind is _Kind.PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind is _Kind.SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None


def read_patterns(lines: Iterable[str]) -> list[tuple[int, str]]:
    """(line number, pattern) as patternmatcher's ignorefile.ReadAll yields them: `#` lines
    and blank ones dropped, spaces trimmed, `!` kept in front of the cleaned path, and a
    leading `/` dropped (patterns are relative to the context root)."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(lines, 1):
        line = raw.removeprefix("\ufeff") if number == 1 else raw
        if line.startswith("#"):
            continue
        pattern = _go_trim(line)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = _go_trim(pattern[1:])
        if pattern:
            pattern = _go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append((number, "!" + pattern if invert else pattern))
    return out


def compile_patterns(numbered: Iterable[tuple[int, str]]) -> list[DockerPattern]:
    """patternmatcher.New: each pattern checked as Go's filepath.Match checks it, and its
    regex compiled up front (Docker compiles it on first use and then fails the build)."""
    patterns: list[DockerPattern] = []
    for number, raw in numbered:
        text = _go_trim(raw)
        if not text:
            continue
        text = _go_clean(text)
        exclusion = text.startswith("!")
        if exclusion:
            if text == "!":
                raise DockerignoreError(number, 'illegal exclusion pattern: "!"')
            text = text[1:]
        problem = _glob_syntax_error(text)
        if problem is not None:
            raise DockerignoreError(number, f'syntax error in pattern "{text}": {problem}')
        kind, source = _translate(text)
        regex = None
        if kind is _Kind.REGEX:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    regex = re.compile(source)
            except re.error as exc:
                raise DockerignoreError(
                    number, f'syntax error in pattern "{text}": {exc.msg}') from None
        patterns.append(DockerPattern(text, exclusion, number, kind, regex))
    return patterns


class DockerMatcher:
    """Decides paths as fsutil's walk does: MatchesUsingParentResults, each directory's
    per-pattern results handed down to what is below it."""

    def __init__(self, patterns: Sequence[DockerPattern]) -> None:
        self.patterns = tuple(patterns)
        self.exceptions = tuple(p for p in self.patterns if p.exclusion)
        self.prefix_exceptions_only = not any(
            set(_without_trailing_glob(p.text)) & _FSUTIL_PATTERN_CHARS for p in self.exceptions
        )
        self._infos: dict[str, tuple[bool, tuple[bool, ...]]] = {
            "": (False, (False,) * len(self.patterns))}

    def excludes(self, path: str) -> bool:
        """True when `path` ("a/b", relative to the context) is left out of the context."""
        if not self.patterns:
            return False
        return self._decide(path, self._directory(path.rpartition("/")[0]))[0]

    def can_skip(self, directory: str) -> bool:
        """fsutil's shortcut: an excluded directory is not even opened when no exception could
        re-include anything below it."""
        if not self.excludes(directory) or not self.prefix_exceptions_only:
            return False
        below = directory + "/"
        return not any((_without_trailing_glob(p.text) + "/").startswith(below)
                       for p in self.exceptions)

    def _directory(self, path: str) -> tuple[bool, ...]:
        """Per pattern, whether it matched `path` or a parent (cached: files share parents)."""
        known = self._infos.get(path)
        if known is None:
            known = self._decide(path, self._directory(path.rpartition("/")[0]))
            if len(self._infos) < 100_000:
                self._infos[path] = known
        return known[1]

    def _decide(self, path: str, parent: tuple[bool, ...]) -> tuple[bool, tuple[bool, ...]]:
        """patternmatcher's MatchesUsingParentResults: (excluded, per-pattern matches)."""
        matched = False
        info: list[bool] = []
        for pattern, parent_hit in zip(self.patterns, parent, strict=True):
            hit = parent_hit
            if not hit:
                if pattern.exclusion != matched:
                    info.append(False)
                    continue
                hit = pattern.matches(path)
            info.append(hit)
            if hit:
                matched = not pattern.exclusion
        return matched, tuple(info)


def _go_trim(text: str) -> str:
    """Go's strings.TrimSpace (Python's strip also trims 0x1c-0x1f)."""
    return text.strip(" \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                      "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _go_clean(path: str) -> str:
    """Go's path.Clean: like normpath, but a leading `//` becomes `/`."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _without_trailing_glob(text: str) -> str:
    return text.removesuffix("/**").removesuffix("/*")


def _glob_syntax_error(pattern: str) -> str | None:
    """Why Go's filepath.Match rejects `pattern` (it checks the whole pattern), or None."""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern):
                return "a trailing \\ escapes nothing"
            index += 2
        elif char == "[":
            index = _class_end(pattern, index + 1)
            if index < 0:
                return "a malformed [...] character class"
        else:
            index += 1
    return None


def _class_end(pattern: str, index: int) -> int:
    """The index after the `]` closing the class that starts at `index`, or -1."""
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    ranges = 0
    while True:
        if index < len(pattern) and pattern[index] == "]" and ranges:
            return index + 1
        index = _class_char(pattern, index)
        if index < 0:
            return -1
        if pattern[index] == "-":
            index = _class_char(pattern, index + 1)
            if index < 0:
                return -1
        ranges += 1


def _class_char(pattern: str, index: int) -> int:
    """Go's getEsc: one (escaped) class character; -1 if bad or if the class ends after it."""
    if index >= len(pattern) or pattern[index] in "-]":
        return -1
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            return -1
    index += 1
    return index if index < len(pattern) else -1


def _translate(pattern: str) -> tuple[_Kind, str]:
    """patternmatcher's compile: the match kind and (for REGEX) the regex, unanchored."""
    kind = _Kind.EXACT
    out: list[str] = []
    index = 0
    first = True
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            if index < len(pattern) and pattern[index] == "*":
                index += 1
                if index < len(pattern) and pattern[index] == "/":
                    index += 1
                if index >= len(pattern):
                    if kind is _Kind.EXACT:
                        kind = _Kind.PREFIX
                    else:
                        out.append(".*")
                        kind = _Kind.REGEX
                else:
                    out.append("(.*/)?")
                    kind = _Kind.REGEX
                if first:
                    kind = _Kind.SUFFIX
            else:
                out.append("[^/]*")
                kind = _Kind.REGEX
        elif char == "?":
            out.append("[^/]")
            kind = _Kind.REGEX
        elif char in _REGEX_SPECIAL:
            out.append("\\" + char)
        elif char == "\\":
            if index < len(pattern):
                out.append("\\" + pattern[index])
                index += 1
                kind = _Kind.REGEX
            else:
                out.append("\\\\")
        elif char in "[]":
            out.append(char)
            kind = _Kind.REGEX
        else:
            out.append(char)
        first = False
    return kind, "".join(out)
