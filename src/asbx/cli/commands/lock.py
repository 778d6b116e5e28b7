"""`asbx lock [--check]`: pin every pulled image to its digest and every build to its context."""

from __future__ import annotations

import click

from asbx.cli.context import AppContext


@click.command()
@click.option(
    "--check", is_flag=True, help="Exit 1 if sandboxes.lock is out of date; write nothing."
)
@click.pass_obj
def lock(app: AppContext, check: bool) -> int:
    """Write sandboxes.lock beside the spec (check it in), or check that it is current."""
    from asbx.lockfile import lock_path, new_lock, read_lock, stale_entries, write_lock
    from asbx.runtime.pull_errors import PullError
    from asbx.workflow import context_digests, resolve_digests

    session = app.session()
    path = lock_path(session.loaded.path)
    state = session.store.snapshot(session.project)
    contexts = {n: c.digest for n, c in context_digests(session, state)[0].items()}
    try:
        resolved = resolve_digests(session, warn=lambda m: click.echo(f"warning: {m}", err=True))
    except PullError as exc:  # one sentence and a hint follow; -v adds the runtime's own words
        if app.verbose:
            click.echo(exc.output, err=True)
        raise
    if check:
        current = read_lock(path)
        if current is None:
            click.echo(f"{path.name} does not exist; create it with `asbx lock`", err=True)
            return 1
        problems = stale_entries(current, session.loaded.graph, contexts, resolved)
        for problem in problems:
            click.echo(f"stale: {problem}", err=True)
        if problems:
            click.echo(f"{path.name} is out of date; run `asbx lock`", err=True)
            return 1
        click.echo(f"{path.name} is up to date")
        return 0
    write_lock(path, new_lock(session.loaded.graph, resolved, contexts))
    click.echo(f"wrote {path} ({len(resolved)} pinned, {len(contexts)} builds)")
    return 0
