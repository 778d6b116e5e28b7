"""Commands in a spec: a string runs through `/bin/sh -c`; shown back as the user wrote it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

SHELL_PREFIX = ("/bin/sh", "-c")


def from_line(line: str) -> tuple[str, ...]:
    """The argv a string command runs as."""
    return (*SHELL_PREFIX, line)


def as_written(argv: Any) -> Any:
    """A command the way the user wrote it: a string step as its line (str), a list step as
    its argv (a tuple, one value); anything else unchanged."""
    if not isinstance(argv, list | tuple):
        return argv
    if len(argv) == 3 and tuple(argv[:2]) == SHELL_PREFIX and isinstance(argv[2], str):
        return argv[2]
    return tuple(argv)


def display(argv: Sequence[str]) -> str:
    """One line for output and messages: a string step as written, a list step shell-quoted."""
    written = as_written(argv)
    return written if isinstance(written, str) else shlex.join(written)
