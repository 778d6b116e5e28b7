"""`asbx logs SANDBOX [-f] [--tail N]`: the sandbox's main-process output, on this terminal."""

from __future__ import annotations

import click

from asbx.cli.commands.targets import (
    complete_sandboxes,
    live_container,
    open_session,
    run_attached,
    sandbox_address,
)
from asbx.cli.context import AppContext


@click.command()
@click.argument("sandbox", shell_complete=complete_sandboxes)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output (^C to stop).")
@click.option("-n", "--tail", type=click.IntRange(min=1), metavar="N",
              help="Only the last N lines.")
@click.pass_obj
def logs(app: AppContext, sandbox: str, follow: bool, tail: int | None) -> int:
    """Print the output of SANDBOX's main process."""
    session = open_session(app)
    address = sandbox_address(session, sandbox)
    container = live_container(session, address)
    argv = session.runtime.logs_argv(container.name, follow=follow, tail=tail)
    # ^C is how one stops following: that ends it well (as in `docker compose logs -f`)
    return run_attached(app, argv, interrupted=0 if follow else None)
