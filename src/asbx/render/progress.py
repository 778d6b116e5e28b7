"""Apply progress: plain timestamped lines (no TTY) or a live per-resource view (TTY, rich)."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, TextIO

import click

from asbx.apply.executor import Outcome, Status
from asbx.plan.model import Action, Change

_VERBS = {
    Action.CREATE: "creating",
    Action.REPLACE: "replacing",
    Action.DELETE: "destroying",
    Action.START: "starting",
    Action.UPDATE: "updating",
}


_VERB_DOING = {"build": "building", "pull": "pulling", "local": "finding", "capture": "capturing",
               "import": "importing"}


def _doing(change: Change, phase: str) -> str:
    if change.action is Action.REPLACE:
        return "removing old" if phase == "destroy" else "creating new"
    if change.verb and change.action is Action.CREATE:
        return _VERB_DOING.get(change.verb, change.verb)
    if change.record_only:
        return "recording"
    return _VERBS.get(change.action, str(change.action.value))


TAIL_WIDTH = 70


def clip(text: str, width: int) -> str:
    """`text` cut on the right with an ellipsis: the start of a line says what it is."""
    return text if len(text) <= width else text[:width - 1] + "…"


def _headline(error: BaseException | None) -> str:
    """The first line of a step's error: the whole of it is printed once, in the summary."""
    lines = str(error).strip().splitlines()
    more = " (details below)" if len(lines) > 1 else ""
    return (lines[0] if lines else type(error).__name__) + more


class LineProgress:
    """One timestamped line per step start/finish; step output indented (verbose) or tailed."""

    def __init__(self, stream: TextIO | None = None, *, show_output: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.show_output = show_output
        self._lock = threading.Lock()
        self._tails: dict[str, deque[str]] = {}

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            self.stream.flush()

    def step_started(self, change: Change, phase: str) -> None:
        self._line(f"{change.address}: {_doing(change, phase)}...")

    def step_output(self, change: Change, stream: str, text: str) -> None:
        tail = self._tails.setdefault(str(change.address), deque(maxlen=15))
        for line in text.splitlines():
            tail.append(line)
            if self.show_output:
                self._line(f"{change.address}: | {line}")

    def step_finished(self, change: Change, phase: str, outcome: Outcome[Any]) -> None:
        if outcome.status is Status.OK:
            self._line(f"{change.address}: {_doing(change, phase)} done ({outcome.seconds:.1f}s)")
        elif outcome.status is Status.FAILED:
            self._line(f"{change.address}: FAILED: {_headline(outcome.error)}")
        else:
            self._line(f"{change.address}: {outcome.status.value}")

    def note(self, message: str) -> None:
        self._line(message)

    def close(self) -> None:
        pass


class LiveProgress(LineProgress):
    """A rich live table: one row per resource with status, elapsed time and output tail.

    Rows are redrawn from the renderer at each refresh, so a running step's clock ticks even
    when it prints nothing; a finished step's time stays at what it took.
    """

    def __init__(self, console: Any = None) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self._rows: dict[str, _Row] = {}
        self._console = console or Console(stderr=True)
        self._live = Live(console=self._console, refresh_per_second=8, transient=False,
                          get_renderable=self._render)
        self._live.start()

    def _render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self._lock:
            for address, row in self._rows.items():
                end = row.finished or now
                elapsed = f"{end - row.started:5.1f}s" if row.started else ""
                table.add_row(row.state, address, elapsed, Text(clip(row.tail, TAIL_WIDTH)))
        return table

    def _row(self, change: Change) -> _Row:
        return self._rows.setdefault(str(change.address), _Row())

    def step_started(self, change: Change, phase: str) -> None:
        with self._lock:
            row = self._row(change)
            row.state, row.started, row.finished = (
                f"[yellow]⟳[/] {_doing(change, phase)}", time.monotonic(), 0.0)
            row.tail = ""
        self._live.refresh()

    def step_output(self, change: Change, stream: str, text: str) -> None:
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            with self._lock:
                self._row(change).tail = lines[-1]

    def step_finished(self, change: Change, phase: str, outcome: Outcome[Any]) -> None:
        marks = {
            Status.OK: "[green]✓[/] done",
            Status.FAILED: "[red]✗[/] failed",
            Status.SKIPPED: "[dim]- skipped[/]",
            Status.CANCELLED: "[dim]- cancelled[/]",
        }
        with self._lock:
            row = self._row(change)
            row.state = marks[outcome.status]
            row.finished = time.monotonic() if row.started else 0.0
            if outcome.status is not Status.FAILED:
                row.tail = ""
        self._live.refresh()

    def note(self, message: str) -> None:
        self._console.print(message)

    def close(self) -> None:
        self._live.stop()


@dataclass
class _Row:
    state: str = "…"
    started: float = 0.0
    finished: float = 0.0
    tail: str = ""


def make_progress(*, tty: bool, verbose: int) -> LineProgress:
    if tty and verbose == 0:
        return LiveProgress()
    return LineProgress(show_output=verbose > 0)


def echo_err(text: str) -> None:
    click.echo(text, err=True)
