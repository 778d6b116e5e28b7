"""`asbx start|stop [SANDBOX...]` and `asbx reap` (lifecycle timers, safe from cron)."""

from __future__ import annotations

import click

from asbx.cli.commands.targets import (
    complete_sandboxes,
    open_session,
    project_containers,
    sandbox_addresses,
    started,
)
from asbx.cli.context import AppContext
from asbx.runtime.base import ContainerState


@click.command()
@click.argument("sandboxes", nargs=-1, shell_complete=complete_sandboxes)
@click.pass_obj
def start(app: AppContext, sandboxes: tuple[str, ...]) -> int:
    """Start stopped sandboxes (all of the project's when none is named)."""
    session = open_session(app)
    wanted = sandbox_addresses(session, sandboxes)
    containers = project_containers(session)
    missing = 0
    for address in wanted:
        container = containers.get(address)
        if container is None:
            click.echo(f"{address}: not created (run asbx apply)", err=True)
            missing += 1
        elif container.state is ContainerState.RUNNING:
            click.echo(f"{address}: already running")
        else:
            session.runtime.start_container(container.name)
            started(session, address)
            click.echo(f"{address}: started")
    return 1 if missing else 0


@click.command()
@click.argument("sandboxes", nargs=-1, shell_complete=complete_sandboxes)
@click.option("-t", "--time", "grace", default=10, show_default=True,
              type=click.IntRange(min=0), help="Seconds to wait before killing.")
@click.pass_obj
def stop(app: AppContext, sandboxes: tuple[str, ...], grace: int) -> int:
    """Stop running sandboxes (all of the project's when none is named). Nothing is deleted."""
    from asbx.reap import mark_stopped

    session = open_session(app)
    wanted = sandbox_addresses(session, sandboxes)
    containers = project_containers(session)
    missing = 0
    for address in wanted:
        container = containers.get(address)
        if container is None:
            click.echo(f"{address}: not created", err=True)
            missing += 1 if sandboxes else 0
        elif container.state is not ContainerState.RUNNING:
            click.echo(f"{address}: already stopped")
        else:
            session.runtime.stop_container(container.name, timeout=grace)
            mark_stopped(session.home, session.project, address, container)
            click.echo(f"{address}: stopped")
    return 1 if missing else 0


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what is due; change nothing.")
@click.option("--all-projects", "all_projects", is_flag=True,
              help="Every project in ASBX_HOME (the default).")
@click.option("-p", "--project", "projects", multiple=True, metavar="NAME",
              help="Only this project (repeatable).")
@click.option("--lock-timeout", default=2.0, show_default=True, type=float, metavar="SECONDS",
              help="Skip a project whose lock is not free within this long.")
@click.pass_obj
def reap(app: AppContext, dry_run: bool, all_projects: bool, projects: tuple[str, ...],
         lock_timeout: float) -> int:
    """Enforce lifecycle timers: stop idle sandboxes, delete expired ones.

    Safe to run from cron, launchd or a systemd timer (see docs/operations.md): it never
    prompts, is idempotent, skips a project that another asbx holds locked, and one broken
    project does not stop the others. Exit 1 if anything failed.
    """
    from asbx.reap import ReapEvent, ReapOptions, summary
    from asbx.reap import reap as run_reap

    if all_projects and projects:
        raise click.UsageError("give either --all-projects or -p NAME, not both")
    chosen = projects or ((app.project_name,) if app.project_name and not all_projects else ())
    options = ReapOptions(dry_run=dry_run, projects=chosen, lock_timeout=lock_timeout)

    def show(event: ReapEvent) -> None:
        if event.outcome == "held" and not (app.verbose or dry_run):
            return  # a held sandbox is already stopped: said when it was stopped
        where = f"{event.project}: {event.subject}" if event.subject else event.project
        click.echo(f"{where}: {event.outcome}" + (f" ({event.detail})" if event.detail else ""),
                   err=event.failed)

    events = run_reap(app.store(), app.runtime(), app.home, options, show)
    click.echo(summary(events))
    return 1 if any(e.failed for e in events) else 0
