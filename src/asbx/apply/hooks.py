"""Apply progress hooks: the engine reports through these, never by printing."""

from __future__ import annotations

from typing import Any, Protocol

from asbx.apply.executor import Outcome
from asbx.plan.model import Change


class ApplyHooks(Protocol):
    def step_started(self, change: Change, phase: str) -> None: ...

    def step_output(self, change: Change, stream: str, text: str) -> None: ...

    def step_finished(self, change: Change, phase: str, outcome: Outcome[Any]) -> None: ...

    def note(self, message: str) -> None: ...


class NullApplyHooks:
    def step_started(self, change: Change, phase: str) -> None:
        pass

    def step_output(self, change: Change, stream: str, text: str) -> None:
        pass

    def step_finished(self, change: Change, phase: str, outcome: Outcome[Any]) -> None:
        pass

    def note(self, message: str) -> None:
        pass
