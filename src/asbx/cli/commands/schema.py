"""`asbx schema`: print the JSON Schema of sandboxes.yaml (the checked-in file comes from it)."""

from __future__ import annotations

import json

import click


@click.command()
@click.pass_obj
def schema(_app: object) -> int:
    """Print the JSON Schema (2020-12) for sandboxes.yaml."""
    from asbx.spec.schema import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2, sort_keys=False))
    return 0
