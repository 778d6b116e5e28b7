"""Apply progress: the plain line view and the live (TTY) view, driven like the applier does."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from asbx.addresses import Address
from asbx.apply.executor import Outcome, Status
from asbx.plan.model import Action, Change, Reason
from asbx.render.progress import LineProgress, LiveProgress

WEB = Change(Address.parse("sandbox.web"), Action.CREATE, Reason.NEW)
APP = Change(Address.parse("image.app"), Action.CREATE, Reason.NEW, verb="build")
DB = Change(Address.parse("sandbox.db"), Action.REPLACE, Reason.SPEC_CHANGED)


def _outcome(change: Change, status: Status, seconds: float = 0.5,
             error: BaseException | None = None) -> Outcome[object]:
    return Outcome((change.address, "create"), status, error=error, seconds=seconds)


def test_lines_say_what_each_step_does_and_how_it_ended() -> None:
    out = io.StringIO()
    progress = LineProgress(out)
    progress.step_started(APP, "create")
    progress.step_output(APP, "stdout", "STEP 1/2: FROM base\nSTEP 2/2: COPY . /\n")
    progress.step_finished(APP, "create", _outcome(APP, Status.OK, 1.25))
    progress.step_started(DB, "destroy")
    progress.step_finished(DB, "destroy", _outcome(DB, Status.FAILED, error=OSError("gone")))
    lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in out.getvalue().splitlines()]
    assert lines == [
        "image.app: building...",
        "image.app: building done (1.2s)",
        "sandbox.db: removing old...",
        "sandbox.db: FAILED: gone",
    ]


def test_verbose_lines_show_the_output_as_it_comes() -> None:
    out = io.StringIO()
    progress = LineProgress(out, show_output=True)
    progress.step_output(WEB, "stdout", "setup 1/1: make\nok\n")
    assert [line[9:] for line in out.getvalue().splitlines()] == [
        "sandbox.web: | setup 1/1: make", "sandbox.web: | ok"]


def _live() -> tuple[LiveProgress, io.StringIO]:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    return LiveProgress(console), screen


def _rows(progress: LiveProgress) -> list[str]:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    with console.capture() as captured:
        console.print(progress._render())
    return [line.rstrip() for line in captured.get().splitlines()]


def test_live_rows_tick_while_running_and_freeze_when_done() -> None:
    progress, screen = _live()
    try:
        progress.step_started(WEB, "create")
        progress.step_output(WEB, "stdout", "setup 1/2: pip install\n")
        first = _rows(progress)
        assert len(first) == 1
        assert "creating" in first[0]
        assert "sandbox.web" in first[0]
        assert first[0].endswith("setup 1/2: pip install")
        time.sleep(0.25)
        running = re.search(r"(\d+\.\d)s", _rows(progress)[0])
        assert running is not None
        assert float(running.group(1)) >= 0.2, "the clock of a running step ticks"

        progress.step_finished(WEB, "create", _outcome(WEB, Status.OK))
        done = _rows(progress)[0]
        time.sleep(0.25)
        assert _rows(progress)[0] == done, "a finished step's time stays put"
        assert "✓ done" in done
        assert "pip install" not in done

        progress.step_started(DB, "create")
        progress.step_finished(DB, "create", _outcome(DB, Status.SKIPPED))
        assert "- skipped" in _rows(progress)[1]
    finally:
        progress.close()
    assert "sandbox.web" in screen.getvalue()  # what stays on the terminal after the run


def test_a_long_output_line_keeps_its_start_and_is_not_read_as_markup() -> None:
    progress, _ = _live()
    try:
        progress.step_started(APP, "create")
        line = "chmod +x /usr/local/bin/entrypoint.sh [bold]" + " && echo configured" * 5
        progress.step_output(APP, "stdout", line + "\n")
        row = _rows(progress)[0]
        assert "chmod +x /usr/local/bin/entrypoint.sh [bold]" in row
        assert row.endswith("…")
    finally:
        progress.close()
