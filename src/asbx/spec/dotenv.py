"""`.env` files as Compose reads them (compose-spec/compose-go `dotenv/`), errors by line."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path

from asbx.spec.interpolation import InterpolationError, interpolate

_INLINE_SPACE = "\t\v\f\r \x85\xa0"  # compose-go's isSpace: whitespace but not a line break
_KEY_PUNCTUATION = "_.-[]"
_EXPORT_RE = re.compile(r"export[\t\n\f\r ]")
# The escapes compose-go expands inside double quotes (POSIX echo's, plus `\$` and `\"`).
_ESCAPE_RE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-9]{0,3})")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "c": "\\c", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t", "v": "\v", "$": "$$", '"': '"', "\\": "\\"}


class DotenvError(ValueError):
    """A `.env` file that Compose would refuse; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


OnUnset = Callable[[int, str], None]


def parse_dotenv(text: str, lookup: Mapping[str, str] | None = None,
                 on_unset: OnUnset | None = None) -> dict[str, str]:
    """The variables of a `.env` file's text, as compose-go's dotenv parser reads them.

    `lookup` (the environment) resolves a bare `KEY` line and wins over earlier keys of the
    file when `$VAR` is expanded in unquoted and double-quoted values; `on_unset(line, name)`
    hears of each plain `$VAR` that was unset and became "" (Compose warns). Raises DotenvError.
    """
    return _Parser(text.removeprefix("\ufeff"), lookup or {}, on_unset).parse()


def read_dotenv(path: Path, lookup: Mapping[str, str] | None = None,
                on_unset: OnUnset | None = None) -> dict[str, str]:
    """Parse the `.env` file at `path` (UTF-8; line endings kept as written, as Compose keeps
    them); raises OSError, UnicodeDecodeError, DotenvError."""
    return parse_dotenv(path.read_bytes().decode("utf-8"), lookup, on_unset)


def _go_space(char: str) -> bool:
    """Go's unicode.IsSpace (Python's isspace also counts the ASCII separators 0x1c-0x1f)."""
    return char.isspace() and char not in "\x1c\x1d\x1e\x1f"


def _key_char(char: str) -> bool:
    if char in _KEY_PUNCTUATION:
        return True
    category = unicodedata.category(char)
    return category.startswith("L") or category.startswith("N")


class _Parser:
    """One pass over the text; `line` follows the position, for errors."""

    def __init__(self, text: str, lookup: Mapping[str, str], on_unset: OnUnset | None) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lookup = lookup
        self.on_unset = on_unset
        self.out: dict[str, str] = {}

    def parse(self) -> dict[str, str]:
        while self._statement_start():
            self._statement()
        return self.out

    def _statement_start(self) -> bool:
        """Skip blank space and `#` comment lines; False at the end of the text."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "#":
                newline = text.find("\n", self.pos)
                self.pos = len(text) if newline < 0 else newline
            elif _go_space(char):
                self.line += char == "\n"
                self.pos += 1
            else:
                return True
        return False

    def _statement(self) -> None:
        start_line = self.line
        if _EXPORT_RE.match(self.text, self.pos):
            self.pos += len("export")
            self._skip_inline_space()
        key, inherited = self._key()
        if " " in key:
            raise DotenvError(start_line, f'key "{key}" cannot contain a space')
        if inherited:
            if not key:
                return  # a lone `export`
            if key in self.lookup:
                self.out[key] = self.lookup[key]
            return
        if not key:
            raise DotenvError(start_line, "a variable needs a name before `=`")
        self._skip_inline_space()
        self.out[key] = self._value(start_line)

    def _key(self) -> tuple[str, bool]:
        """The key up to `=`, `:` or a line break (a bare KEY inherits the environment's)."""
        text, start = self.text, self.pos
        for index in range(start, len(text)):
            char = text[index]
            if char in _INLINE_SPACE:
                continue
            if char in "=:\n":
                self.pos = index + 1
                if char == "\n":
                    self.line += 1
                return text[start:index].rstrip(), char == "\n"
            if not _key_char(char):
                shown = text[start:].split("\n", 1)[0]
                raise DotenvError(self.line, f'unexpected character "{char}" in variable name '
                                             f'"{shown}"')
        # A bare KEY on the last line: Compose reads the key as a value of the empty key
        # (a quirk); asbx inherits it like a bare KEY on any other line.
        self.pos = len(text)
        return text[start:].rstrip(), True

    def _skip_inline_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _INLINE_SPACE:
            self.pos += 1

    def _value(self, start_line: int) -> str:
        text = self.text
        quote = text[self.pos] if self.pos < len(text) else ""
        if quote not in ("'", '"'):
            return self._unquoted(start_line)
        value = self._quoted(quote, start_line)
        if quote == "'":
            return value
        return self._expand(_expand_escapes(value), start_line)

    def _unquoted(self, start_line: int) -> str:
        text = self.text
        newline = text.find("\n", self.pos)
        end = len(text) if newline < 0 else newline
        value = text[self.pos : end].split(" #", 1)[0]
        self.pos = end if newline < 0 else end + 1
        self.line += newline >= 0
        end = len(value)
        while end and _go_space(value[end - 1]):
            end -= 1
        return self._expand(value[:end], start_line)

    def _quoted(self, quote: str, start_line: int) -> str:
        """The text up to the closing quote: `\\<quote>` is the quote itself, any other
        escaped character keeps its backslash (double quotes expand escapes afterwards)."""
        text = self.text
        chars: list[str] = []
        index = self.pos + 1
        escaped = False
        while index < len(text):
            char = text[index]
            self.line += char == "\n"
            index += 1
            if escaped:
                escaped = False
                if char != quote:
                    chars.append("\\")
                chars.append(char)
            elif char == "\\":
                escaped = True
            elif char == quote:
                self.pos = index
                return "".join(chars)
            else:
                chars.append(char)
        shown = text[self.pos :].split("\n", 1)[0]
        raise DotenvError(start_line, f"unterminated quoted value {shown}")

    def _expand(self, value: str, line: int) -> str:
        if "$" not in value:
            return value
        unset: set[str] = set()
        try:
            expanded = interpolate(value, {**self.out, **self.lookup}, unset)
        except InterpolationError as exc:
            raise DotenvError(line, str(exc)) from None
        for name in sorted(unset):
            if self.on_unset is not None:
                self.on_unset(line, name)
        return expanded


def _expand_escapes(value: str) -> str:
    """Expand compose-go's escapes; `\\$` becomes `$$`, which interpolation makes `$`."""

    def one(match: re.Match[str]) -> str:
        escape = match.group(0)
        if escape[1] != "0":
            return _SIMPLE_ESCAPES[escape[1]]
        digits = escape[2:]
        # Go's octal escape needs exactly three digits and a value below 256.
        if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) < 256:
            return chr(int(digits, 8))
        return escape

    return _ESCAPE_RE.sub(one, value)
