"""`asbx config`: the normalised, interpolated spec as YAML or JSON."""

from __future__ import annotations

import json

import click

from asbx.cli.context import AppContext


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@click.pass_obj
def config(app: AppContext, as_json: bool) -> int:
    """Print the spec as asbx understands it (defaults filled, variables substituted)."""
    from asbx.spec.normalise import normalised_spec

    data = normalised_spec(app.load().spec)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)
    return 0
