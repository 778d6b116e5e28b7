"""`asbx graph`: the resource graph as DOT or Mermaid, optionally coloured by the plan."""

from __future__ import annotations

import click

from asbx.addresses import Address
from asbx.cli.context import AppContext

Planned = tuple[dict[Address, str], dict[Address, tuple[Address, ...]]]


@click.command()
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot",
              show_default=True, help="Graphviz DOT (pipe to `dot -Tsvg`) or Mermaid.")
@click.option("--plan", "with_plan", is_flag=True,
              help="Colour each resource by what `asbx plan` would do (asks the runtime).")
@click.pass_obj
def graph(app: AppContext, fmt: str, with_plan: bool) -> int:
    """Print the dependency graph of sandboxes.yaml (dependency -> dependent)."""
    from asbx.render.graph import graph_view, render_dot, render_mermaid

    loaded = app.load()
    actions, extra = _planned(app) if with_plan else ({}, {})
    view = graph_view(loaded.graph, actions, extra)
    click.echo(render_dot(view) if fmt == "dot" else render_mermaid(view), nl=False)
    return 0


def _planned(app: AppContext) -> Planned:
    """Each planned address's action (bookkeeping-only changes count as no-ops)."""
    from asbx.plan.model import Action, PlanOptions
    from asbx.workflow import make_plan

    session = app.session()
    planned = make_plan(session, PlanOptions())
    actions: dict[Address, str] = {}
    extra: dict[Address, tuple[Address, ...]] = {}
    for change in planned.plan.changes:
        shown = change.action if change.counts else Action.NOOP
        actions[change.address] = shown.value
        if change.address not in session.loaded.graph.resources:
            record = planned.state.records.get(change.address)
            extra[change.address] = record.dependencies if record else ()
    return actions, extra
