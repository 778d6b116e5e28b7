"""Minimal Dockerfile reading, as BuildKit reads it: the `FROM` references (image-to-image
dependencies) with global `ARG`s expanded, and their rewriting to the real references of images
asbx built."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from asbx.spec.shellword import ShellWordError, expand_word

_DIRECTIVE_RE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_FIELD_RE = re.compile(r"[^\t\v\f\r ]+")
# BuildKit's heredocs (`RUN <<EOF`, `COPY <<-"EOF" /dst`): their bodies are not instructions.
_HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})
_HEREDOC_RE = re.compile(r"(?:^|(?<=\s))(\d*)<<(-?)([\"']?)([^\s<\"']+)\3")


class DockerfileError(ValueError):
    """An instruction BuildKit would refuse; `line` is its first 1-based line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class _Instruction:
    """One logical instruction: its keyword (lower case), the rest of its text with
    continuations joined, and its first and last physical line (0-based)."""

    keyword: str
    rest: str
    first: int
    last: int


@dataclass(frozen=True)
class _From:
    instruction: _Instruction
    ref: str  # the base name with global ARGs expanded (unset ones kept as written)
    raw: str  # the base name as written
    flags: tuple[str, ...]
    alias: str | None
    is_stage: bool


def from_references(text: str, args: Mapping[str, str] | None = None) -> list[str]:
    """The images FROM lines name, leaving out earlier stages (`FROM x AS b` ... `FROM b`).

    Global `ARG`s (before the first FROM) are expanded into FROM lines as BuildKit does (quotes,
    `${A:-d}`, `${A#pattern}`, ARGs using earlier ARGs; build `args` win over defaults); a
    variable that is not set at all stays as written. Raises DockerfileError.
    """
    refs: list[str] = []
    for found in _froms(text, args or {}):
        if not found.is_stage and found.ref not in refs:
            refs.append(found.ref)
    return refs


def rewrite_from(text: str, replacements: Mapping[str, str],
                 args: Mapping[str, str] | None = None) -> str:
    """`text` with each FROM naming a key of `replacements` (after ARG expansion, as in
    `from_references`) pointing at its value instead; earlier stages are left alone.

    Only the reference of a FROM line changes (`FROM $BASE AS b` -> `FROM <real> AS b`). A
    Dockerfile `from_references` rejects is returned unchanged.
    """
    try:
        froms = _froms(text, args or {})
    except DockerfileError:
        return text
    lines = text.splitlines(keepends=True)
    for found in froms:
        if found.is_stage or found.ref not in replacements:
            continue
        _replace_ref(lines, found, replacements[found.ref])
    return "".join(lines)


def _replace_ref(lines: list[str], found: _From, real: str) -> None:
    first, last = found.instruction.first, found.instruction.last
    if first == last:
        line = lines[first]
        words = list(re.finditer(r"\S+", line))
        ref = next(w for w in words[1:] if not w.group(0).startswith("--"))
        lines[first] = line[: ref.start()] + real + line[ref.end() :]
        return
    endings = [line[len(line.rstrip("\r\n")) :] for line in lines[first : last + 1]]
    alias = f" AS {found.alias}" if found.alias else ""
    rebuilt = " ".join(("FROM", *found.flags, real)) + alias
    lines[first : last + 1] = [rebuilt + endings[0], *endings[1:]]  # same line count


def _froms(text: str, args: Mapping[str, str]) -> list[_From]:
    instructions, escape = _instructions(text)
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    found: list[_From] = []
    for instruction in instructions:
        if instruction.keyword == "arg" and not found:
            _global_arg(instruction, args, global_args, escape)
        elif instruction.keyword == "from":
            entry = _from(instruction, global_args, stages, escape)
            found.append(entry)
            if entry.alias:
                stages.add(entry.alias.lower())
    return found


def _global_arg(instruction: _Instruction, args: Mapping[str, str],
                global_args: dict[str, str], escape: str) -> None:
    """`ARG a=1 b="two words" c`: each default expanded with the ARGs before it."""
    words = _words(instruction.rest, escape)
    if not words:
        raise DockerfileError(instruction.first + 1, "ARG requires at least one argument")
    for word in words:
        name, has_value, value = word.partition("=")
        if has_value and not name:
            raise DockerfileError(instruction.first + 1, "ARG names can not be blank")
        if name in args:
            global_args[name] = args[name]
        elif has_value:
            global_args[name] = _expand(value, global_args, instruction, escape)


def _from(instruction: _Instruction, global_args: Mapping[str, str], stages: set[str],
          escape: str) -> _From:
    fields = _FIELD_RE.findall(instruction.rest)
    count = 0
    while count < len(fields) and fields[count].startswith("--"):
        count += 1
    flags, rest = tuple(fields[:count]), fields[count:]
    line = instruction.first + 1
    if len(rest) not in (1, 3) or (len(rest) == 3 and rest[1].lower() != "as"):
        raise DockerfileError(line, "FROM requires either one or three arguments "
                                    "(FROM <image> [AS <name>])")
    ref = _expand(rest[0], global_args, instruction, escape, skip_unset=True)
    if not ref:
        raise DockerfileError(line, f"base name ({rest[0]}) should not be blank")
    return _From(instruction, ref, rest[0], flags, rest[2] if len(rest) == 3 else None,
                 ref.lower() in stages)


def _expand(word: str, env: Mapping[str, str], instruction: _Instruction, escape: str,
            *, skip_unset: bool = False) -> str:
    try:
        return expand_word(word, env, escape=escape, skip_unset=skip_unset)
    except ShellWordError as exc:
        raise DockerfileError(instruction.first + 1,
                              f"{instruction.keyword.upper()}: {exc}") from None


def _instructions(text: str) -> tuple[list[_Instruction], str]:
    """Logical instructions as BuildKit's parser joins them: a UTF-8 BOM dropped, the
    `# escape=` directive honoured, comment lines skipped (also inside continuations), a line
    ending in the escape character continued by the next non-empty line."""
    lines = text.removeprefix("\ufeff").splitlines()
    escape = _escape_directive(lines)
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    out: list[_Instruction] = []
    index = 0
    while index < len(lines):
        first = index
        line = lines[index].lstrip(" \t")
        index += 1
        if not line or line.startswith("#"):
            continue
        joined, ended = _trim_continuation(line, continuation)
        while not ended and index < len(lines):
            part = lines[index]
            index += 1
            if part.lstrip(" \t").startswith("#") or not part.strip(" \t"):
                continue
            piece, ended = _trim_continuation(part, continuation)
            joined += piece
        stripped = joined.strip()
        head = _FIELD_RE.match(stripped)
        if head is None:
            continue
        rest = stripped[head.end() :].lstrip("\t\v\f\r ")
        keyword = head.group(0).lower()
        if keyword in _HEREDOC_INSTRUCTIONS:
            index = _skip_heredocs(rest, lines, index)
        out.append(_Instruction(keyword, rest, first, index - 1))
    return out, escape


def _skip_heredocs(rest: str, lines: list[str], index: int) -> int:
    """The index after the bodies of the `<<EOF` / `<<-EOF` heredocs `rest` opens (their lines
    are data, never instructions)."""
    for heredoc in _HEREDOC_RE.finditer(rest):
        strip_tabs, name = heredoc.group(2) == "-", heredoc.group(4)
        while index < len(lines):
            line = lines[index].lstrip("\t") if strip_tabs else lines[index]
            index += 1
            if line == name:
                break
    return index


def _trim_continuation(line: str, continuation: re.Pattern[str]) -> tuple[str, bool]:
    """The line without a trailing escape character, and whether the instruction ends here."""
    trimmed = continuation.sub("", line)
    return trimmed, trimmed == line


def _escape_directive(lines: list[str]) -> str:
    """The `# escape=` parser directive among the leading `# key=value` lines (default `\\`)."""
    escape = "\\"
    for line in lines:
        directive = _DIRECTIVE_RE.match(line.removeprefix("\ufeff").strip())
        if directive is None:
            break
        if directive.group(1).lower() == "escape" and directive.group(2) in ("\\", "`"):
            escape = directive.group(2)
    return escape


def _words(rest: str, escape: str) -> list[str]:
    """BuildKit's parseWords: whitespace-separated words, quotes and escapes kept in them
    but spaces inside quotes not splitting (`a="x y" b` -> [`a="x y"`, `b`])."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    index = 0
    while index < len(rest):
        char = rest[index]
        index += 1
        if not quote and char.isspace():
            if word or blank_ok:
                words.append("".join(word))
            word, blank_ok = [], False
            continue
        if quote and char == quote:
            quote = ""
        elif not quote and char in "'\"":
            quote, blank_ok = char, True
        if char == escape and quote != "'":
            if index >= len(rest):
                continue  # an escape at the end is dropped
            word.append(char)
            char = rest[index]
            index += 1
        word.append(char)
    if word or blank_ok:
        words.append("".join(word))
    return words
