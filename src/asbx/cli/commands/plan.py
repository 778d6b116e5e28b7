"""`asbx plan`: show what apply would change (text, --json, -o FILE, --detailed-exitcode)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from asbx.cli.context import AppContext
from asbx.cli.options import plan_options, planning_options
from asbx.errors import EXIT_CHANGES


@click.command()
@planning_options
@click.option("--destroy", "destroy", is_flag=True, help="Plan a destroy instead.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the plan as JSON (see docs/plan-format.md)."
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), help="Save the plan for `asbx apply FILE`."
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 if no changes, 2 if changes, 1 on error."
)
@click.pass_obj
def plan(
    app: AppContext,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    refresh: bool,
    remove_orphans: bool,
    allow_data_loss: bool,
    pull: bool,
    destroy: bool,
    as_json: bool,
    out: Path | None,
    detailed_exitcode: bool,
) -> int:
    """Show the changes that `asbx apply` would make. Changes nothing."""
    options = plan_options(
        targets,
        replace,
        destroy=destroy,
        remove_orphans=remove_orphans,
        allow_data_loss=allow_data_loss,
        refresh=refresh,
        pull=pull,
    )
    guess = app.guess_project() if options.refresh else None
    if guess is not None:  # no lock to wait for: start listing while the spec loads
        app.observe_ahead(guess)
    session = app.session()
    if options.refresh and session.project != guess:
        app.observe_ahead(session.project)
    # imported while the listings run
    from asbx.render.plan_json import plan_to_json
    from asbx.render.plan_text import render_plan_text
    from asbx.workflow import make_plan

    planned = make_plan(session, options)
    app.forget_early()
    data = plan_to_json(planned.plan)
    if out is not None:
        out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_plan_text(data, color=app.color))
        if out is not None:
            click.echo(f"\nSaved the plan to {out}. Apply it with: asbx apply {out}")
    if planned.plan.errors:
        return 1
    if detailed_exitcode and planned.plan.pending:
        return EXIT_CHANGES
    return 0
