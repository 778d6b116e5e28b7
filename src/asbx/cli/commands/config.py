"""`asbx config`: the normalised, interpolated spec as YAML or JSON."""

from __future__ import annotations

import json
from typing import Any

import click

from asbx.cli.context import AppContext


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON with the values as they are (no $ escaping).")
@click.pass_obj
def config(app: AppContext, as_json: bool) -> int:
    """Print the spec as asbx understands it (defaults filled, variables substituted).

    The YAML output is itself a valid sandboxes.yaml: a `$` in a value is printed as `$$`.
    With -p, `name:` is the project name given (what the other commands act on).
    """
    from asbx.spec.normalise import escape_dollars, normalised_spec

    data = normalised_spec(app.load().spec)
    if app.project_name:
        data = _with_name(data, app.effective_project_name())
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        import yaml

        text = yaml.safe_dump(escape_dollars(data), sort_keys=False, default_flow_style=False)
        click.echo(text, nl=False)
    return 0


def _with_name(data: dict[str, Any], name: str) -> dict[str, Any]:
    """`data` with `name:` set, placed right after `version:` as in a written spec."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key != "name":
            out[key] = value
        if key == "version":
            out["name"] = name
    out.setdefault("name", name)
    return out
