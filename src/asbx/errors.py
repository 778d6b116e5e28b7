"""The AsbxError tree: the only exceptions meant to reach the CLI, each with its exit code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asbx.diagnostics import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class AsbxError(Exception):
    """A known, user-facing failure: the CLI prints it and exits 1."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class SpecError(AsbxError):
    """The spec (sandboxes.yaml) is invalid; carries every problem found in one pass."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        errors = sum(1 for d in self.diagnostics if d.severity.value == "error")
        warnings = len(self.diagnostics) - errors
        counts = [_counted(errors, "error")] + ([_counted(warnings, "warning")] if warnings else [])
        super().__init__(f"{', '.join(counts)} in the spec")


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


class SpecNotFoundError(AsbxError):
    """No sandboxes.yaml was found."""


class StateError(AsbxError):
    """The state store is unreadable, from a newer asbx, or inconsistent."""


class StateLockedError(StateError):
    """Another asbx process holds the project's lock."""


class PlanStaleError(AsbxError):
    """A saved plan no longer matches the state or the spec."""


class PlanError(AsbxError):
    """The plan cannot be carried out as asked (data loss refused, unsupported field, ...)."""

    def __init__(self, problems: Sequence[str], *, hint: str | None = None) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class RuntimeUnavailableError(AsbxError):
    """The container runtime is missing or not running."""


class RuntimeCommandError(AsbxError):
    """A runtime command failed; shows the command, its exit code and its output."""

    def __init__(
        self, argv: Sequence[str], returncode: int, stdout: str = "", stderr: str = ""
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(self._describe())

    def _describe(self) -> str:
        lines = [f"command failed (exit {self.returncode}): {' '.join(self.argv)}"]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            text = text.strip()
            if text:
                tail = text.splitlines()[-20:]
                lines.append(f"  {name}:")
                lines.extend(f"    {line}" for line in tail)
        return "\n".join(lines)


class ContainerNotRunningError(RuntimeCommandError):
    """An exec the runtime refused because the container is not running (nothing ran)."""


class RuntimeTimeoutError(RuntimeCommandError):
    """A runtime command ran past its timeout and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float, stdout: str = "", stderr: str = ""):
        self.timeout = timeout
        super().__init__(argv, 124, stdout, stderr)

    def _describe(self) -> str:
        return f"command timed out after {self.timeout:g}s: {' '.join(self.argv)}"


class NotFoundError(AsbxError):
    """A named runtime object, snapshot or resource does not exist."""


class NameConflictError(AsbxError):
    """A runtime object could not be created: another one already has its name."""


class DataError(AsbxError):
    """A workspace, snapshot or archive is invalid or unsafe (tar-slip, digest mismatch, ...)."""


class ApplyError(AsbxError):
    """One or more changes failed during apply; details were already reported."""
