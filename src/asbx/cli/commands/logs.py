"""`asbx logs SANDBOX [-f] [--tail N]`: the main process's output; `--setup`: the last setup run."""

from __future__ import annotations

import json
from datetime import datetime

import click

from asbx.cli.commands.targets import (
    complete_sandboxes,
    live_container,
    open_session,
    run_attached,
    sandbox_address,
)
from asbx.cli.context import AppContext
from asbx.data.setup_log import SetupRun, read_setup_log
from asbx.errors import NotFoundError
from asbx.spec.commands import display as display_command


@click.command()
@click.argument("sandbox", shell_complete=complete_sandboxes)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output (^C to stop).")
@click.option("-n", "--tail", type=click.IntRange(min=1), metavar="N",
              help="Only the last N lines.")
@click.option("--setup", "setup", is_flag=True,
              help="The last setup run instead: each step's output, exit code and times.")
@click.option("--json", "as_json", is_flag=True, help="With --setup: as one JSON object.")
@click.pass_obj
def logs(app: AppContext, sandbox: str, follow: bool, tail: int | None, setup: bool,
         as_json: bool) -> int:
    """Print the output of SANDBOX's main process (or, with --setup, of its last setup run)."""
    if as_json and not setup:
        raise click.UsageError("--json goes with --setup")
    if setup and (follow or tail):
        raise click.UsageError("--setup shows a finished run: no --follow or --tail")
    session = open_session(app)
    address = sandbox_address(session, sandbox)
    if setup:
        run = read_setup_log(session.home, session.project, address.name)
        if run is None:
            raise NotFoundError(f"{address} has no setup run recorded",
                                hint="setup output is kept from the next apply that runs it")
        click.echo(json.dumps(run.to_json(), indent=2) if as_json else render_setup_run(run))
        return 0
    container = live_container(session, address)
    argv = session.runtime.logs_argv(container.name, follow=follow, tail=tail)
    # ^C is how one stops following: that ends it well (as in `docker compose logs -f`)
    return run_attached(app, argv, interrupted=0 if follow else None)


def render_setup_run(run: SetupRun) -> str:
    """Each step: a header line (command, exit code, duration), then its output indented."""
    lines = [f"setup of {run.sandbox} started {run.started_at} "
             f"(container {run.container_id[:12]}): {len(run.steps)} of {run.steps_total} "
             "steps ran"]
    for step in run.steps:
        outcome = "ok" if step.exit_code == 0 else f"FAILED, exit {step.exit_code}"
        lines.append(f"step {step.index}/{run.steps_total}: {display_command(step.command)}  "
                     f"({outcome}, {_seconds(step.started_at, step.finished_at)})")
        if step.truncated:
            lines.append("  … (earlier output cut: only the end is kept)")
        lines.extend(f"  {line}" for line in step.output.splitlines())
    return "\n".join(lines)


def _seconds(start: str, end: str) -> str:
    try:
        elapsed = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return "time unknown"
    return f"{elapsed:.1f}s"
