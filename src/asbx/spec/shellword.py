"""BuildKit's Dockerfile word expansion (moby/buildkit `frontend/dockerfile/shell/lex.go`)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_SPECIAL_PARAMS = "@*#?-$!0"
_PATTERN_ESCAPED = frozenset("[]{}.+()|^$")


class ShellWordError(ValueError):
    """A word BuildKit refuses to expand (bad `${...}`, unmatched quote, `${X:?message}`)."""


def expand_word(word: str, env: Mapping[str, str], *, escape: str = "\\",
                skip_unset: bool = False) -> str:
    """`word` with quotes removed and `$VAR` / `${VAR...}` expanded from `env`, as BuildKit's
    ProcessWord does. With `skip_unset`, a plain `$VAR` or `${VAR}` naming an unset variable is
    kept as written (like BuildKit's SkipUnsetEnv, which also keeps `${VAR:-d}`; here the
    operators apply as in a build). Raises ShellWordError."""
    try:
        return _Lexer(word, env, escape, skip_unset).stop_on(None, raw_escapes=False)
    except ShellWordError as exc:
        raise ShellWordError(f'failed to process "{word}": {exc}') from None


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, skip_unset: bool) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.skip_unset = skip_unset
        self.raw_escapes = False

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        char = self.peek()
        self.pos += len(char)
        return char

    def stop_on(self, stop: str | None, *, raw_escapes: bool) -> str:
        """Read up to `stop` (consumed) or the end (stop None), expanding as it goes."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str | None) -> str:
        out: list[str] = []
        while self.peek():
            char = self.peek()
            if stop is not None and char == stop:
                self.next()
                return "".join(out)
            if char == "$":
                out.append(self.dollar())
                continue
            if char == "'":
                out.append(self.single_quoted())
                continue
            if char == '"':
                out.append(self.double_quoted())
                continue
            self.next()
            if char == self.escape:
                if self.raw_escapes:
                    out.append(char)
                char = self.next()
                if not char:
                    break
            out.append(char)
        if stop is not None:
            raise ShellWordError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def single_quoted(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            char = self.next()
            if not char:
                raise ShellWordError(
                    "unexpected end of statement while looking for matching single-quote")
            if char == "'":
                return "".join(out)
            out.append(char)

    def double_quoted(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise ShellWordError(
                    "unexpected end of statement while looking for matching double-quote")
            if char == '"':
                self.next()
                return "".join(out)
            if char == "$":
                out.append(self.dollar())
                continue
            char = self.next()
            if char == self.escape:
                if self.raw_escapes:
                    out.append(char)
                if not self.peek():
                    continue
                if self.peek() in ('"', "$", self.escape):
                    char = self.next()
            out.append(char)

    def name(self) -> str:
        """A variable name: digits, one special parameter, or letters, digits and `_`."""
        first = self.peek()
        if first.isdecimal():
            start = self.pos
            while self.peek().isdecimal():
                self.next()
            return self.text[start : self.pos]
        if first and first in _SPECIAL_PARAMS:
            return self.next()
        start = self.pos
        while self.peek() and (self.peek().isalpha() or self.peek().isdecimal()
                               or self.peek() == "_"):
            self.next()
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            if name not in self.env and self.skip_unset:
                return "$" + name
            return self.env.get(name, "")
        self.next()
        if not self.peek():
            raise ShellWordError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ShellWordError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if op == "}":
            if name not in self.env and self.skip_unset:
                return f"${{{name}}}"
            return self.env.get(name, "")
        if op == "/":
            return self.replace(name)
        null_is_unset = op == ":"
        if null_is_unset:
            op = self.next()
        ops = (":" if null_is_unset else "") + op
        if op not in ("+", "-", "?", "#", "%") and not null_is_unset:
            raise ShellWordError(f"unsupported modifier ({ops}) in substitution")
        return self.modifier(name, op, ops, null_is_unset)

    def modifier(self, name: str, op: str, ops: str, null_is_unset: bool) -> str:
        """`${name<op>word}` for the operators - + ? # % (and :- :+ :?)."""
        trims = op in ("#", "%")
        if null_is_unset and trims:
            raise ShellWordError(f"unsupported modifier ({ops}) in substitution")
        word = self._closed("}", "syntax error: missing '}'", raw_escapes=trims)
        is_set = name in self.env
        value = self.env.get(name, "")
        missing = not is_set or (null_is_unset and value == "")
        if op == "-":
            return word if missing else value
        if op == "+":
            return "" if missing else word
        if op == "?":
            if missing:
                default = "is not allowed to be unset" if not is_set else \
                    "is not allowed to be empty"
                raise ShellWordError(f"{name}: {word or default}")
            return value
        if op in ("#", "%"):
            greedy = word.startswith(op)
            if greedy:
                word = word[1:]
            if op == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise ShellWordError(f"unsupported modifier ({ops}) in substitution")

    def replace(self, name: str) -> str:
        """`${name/pattern/replacement}` (first match) and `${name//pattern/replacement}`."""
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self._closed("/", "syntax error: missing '/' in ${}", raw_escapes=True)
        replacement = self._closed("}", "syntax error: missing '}'", raw_escapes=True)
        value = self.env.get(name, "")
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            return regex.sub(lambda _: replacement, value)
        found = regex.search(value)
        if found is None:
            return value
        return value[: found.start()] + replacement + value[found.end() :]

    def _closed(self, stop: str, missing: str, *, raw_escapes: bool) -> str:
        try:
            return self.stop_on(stop, raw_escapes=raw_escapes)
        except ShellWordError:
            if not self.peek():
                raise ShellWordError(missing) from None
            raise


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (`*`, `?`, `\\` escapes; no brackets) as a regex."""
    out = ["^"] if anchored else []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append(".*" if greedy else ".*?")
        elif char == "?":
            out.append(".")
        elif char == "\\":
            if index < len(pattern) and pattern[index] in "}/":
                continue  # the escape belongs to ${...}, not to the pattern
            escaped = pattern[index] if index < len(pattern) else ""
            index += 1
            if escaped not in ("*", "?", "\\"):
                raise ShellWordError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")
            out.append("\\" + escaped)
        elif char in _PATTERN_ESCAPED:
            out.append("\\" + char)
        else:
            out.append(char)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    found = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[found.end() :] if found else value


def _reverse_pattern(pattern: str) -> str:
    """The pattern reversed, each `\\x` escape kept in its order (`a\\*c` -> `c\\*a`)."""
    tokens: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            tokens.append(pattern[index : index + 2])
            index += 2
        else:
            tokens.append(pattern[index])
            index += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    """Regexes find the leftmost match: reverse both to find the shortest/longest suffix."""
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]
