"""The single command runner: every subprocess asbx starts goes through here (never a shell)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from asbx.runtime.base import OutputCallback


@dataclass(frozen=True)
class CommandRequest:
    """One process to run: argv (no shell), optional stdin bytes, extra env, cwd and timeout."""

    argv: tuple[str, ...]
    stdin: bytes | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float = 0.0
    timed_out: bool = False


class CommandRunner(Protocol):
    """Runs a request and returns its result; never raises for a non-zero exit (callers decide)."""

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult: ...


def argv_of(*parts: str | Sequence[str]) -> tuple[str, ...]:
    """Flatten argv pieces: strings and sequences of strings."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.extend(part)
    return tuple(out)
