"""Positioned diagnostics: gathered while checking, rendered once (Terraform tfdiags style)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class SourcePos:
    """A 1-based line and column in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem: where it is (file position and dotted path), what it is, how to fix it."""

    message: str
    pos: SourcePos | None = None
    path: str = ""
    hint: str | None = None
    severity: Severity = Severity.ERROR

    def headline(self) -> str:
        parts = [str(self.pos)] if self.pos else []
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.headline()}\n  hint: {self.hint}"
        return self.headline()

    def sort_key(self) -> tuple[int, int, str]:
        if self.pos is None:
            return (1 << 30, 0, self.path)
        return (self.pos.line, self.pos.column, self.path)


@dataclass
class Diagnostics:
    """An ordered collection of diagnostics; checks append, the caller raises once."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        message: str,
        *,
        pos: SourcePos | None = None,
        path: str = "",
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.items.append(Diagnostic(message, pos, path, hint, severity))

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        unique = list(dict.fromkeys(self.items))
        return sorted(unique, key=Diagnostic.sort_key)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean "x"?' hint when one of `choices` is close to `word`."""
    matches = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f'did you mean "{matches[0]}"?' if matches else None
