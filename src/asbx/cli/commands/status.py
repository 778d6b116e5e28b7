"""`asbx status` (alias `ps`): every resource's live state in one table, or --json."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import click

from asbx.cli.context import AppContext


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (keys documented in docs/operations.md).")
@click.pass_obj
def status(app: AppContext, as_json: bool) -> int:
    """Show every resource of the project: live state, limits, age, activity, deadlines.

    One runtime listing per kind (containers, images, volumes), whatever the project's size.
    Also available as `asbx ps`.
    """
    from asbx.cli.commands.targets import open_session
    from asbx.observe import observe
    from asbx.reap import refresh_marks
    from asbx.render.status import (
        StatusInput,
        build_status,
        render_status_table,
        status_to_json,
    )
    from asbx.workflow import observe_egress

    session = open_session(app)
    observed = observe_egress(
        session, observe(session.runtime, session.project, archives(session.home)))
    now = time.time()
    marks = refresh_marks(session.home, session.project, observed.containers, now)
    report = build_status(StatusInput(
        project=session.project,
        runtime=session.runtime.name,
        spec=session.loaded.spec,
        graph=session.loaded.graph,
        state=session.store.snapshot(session.project),
        observed=observed,
        marks=marks,
        now=now,
    ))
    if as_json:
        click.echo(json.dumps(status_to_json(report), indent=2))
    else:
        width = shutil.get_terminal_size((200, 24)).columns
        click.echo(render_status_table(report, color=app.color, width=width))
    return 0


def archives(home: Path) -> list[str]:
    """Digests of the snapshot archives in the shared store (a directory listing, no runtime)."""
    root = home / "snapshots" / "sha256"
    if not root.is_dir():
        return []
    return ["sha256:" + p.name.removesuffix(".tar.zst") for p in root.glob("*.tar.zst")]
