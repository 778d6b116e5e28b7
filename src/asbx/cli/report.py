"""What the error boundary prints: known errors rendered, crashes logged with their traceback."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

import click

from asbx import __version__
from asbx.errors import AsbxError, SpecError


def _color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stderr.isatty()


def report_error(exc: AsbxError, argv: list[str] | None) -> None:
    """Print a known error (all diagnostics of a SpecError) to stderr."""
    color = _color()
    if isinstance(exc, SpecError):
        from asbx.render.diagnostics import render_diagnostics

        click.echo(render_diagnostics(exc.diagnostics, color=color), err=True)
        click.echo(f"\n{exc.message}.", err=True)
        return
    label = click.style("error:", fg="red", bold=True) if color else "error:"
    click.echo(f"{label} {exc.message}", err=True)
    if exc.hint:
        hint = click.style("hint:", fg="cyan") if color else "hint:"
        click.echo(f"  {hint} {exc.hint}", err=True)


def report_crash(exc: BaseException, argv: list[str] | None, home: Path | None = None) -> None:
    """Write the traceback to a log file and tell the user one line and where the log is.

    `home` is the --home of the invocation (None: $ASBX_HOME, else the platform directory).
    """
    log_file: Path | None
    try:
        from asbx.paths import asbx_home

        log_dir = asbx_home(home) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        with log_file.open("w", encoding="utf-8") as handle:
            handle.write(f"asbx {__version__}\nargv: {argv if argv is not None else sys.argv}\n\n")
            traceback.print_exception(exc, file=handle)
    except OSError:
        log_file = None
    where = f"; the traceback is in {log_file}" if log_file else ""
    detail = _one_line(str(exc))
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    click.echo(f"asbx: an unexpected error occurred: {what}{where}", err=True)


def _one_line(text: str, limit: int = 160) -> str:
    """The first line of an exception's message, shortened: the log has the rest."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    if len(first) > limit or len(lines) > 1:
        first = first[: limit - 3].rstrip() + "..."
    return first
