"""`asbx doctor [--json]`: check this machine for the selected runtime; exit 1 if unusable."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from asbx.cli.context import AppContext

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
_COLOUR = {"ok": "green", "warn": "yellow", "fail": "red", "skip": None}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the check results as JSON.")
@click.pass_obj
def doctor(app: AppContext, as_json: bool) -> None:
    """Check this machine: runtime, its service, containers, network backend, images, disk."""
    from asbx.doctor import Machine, passed, run_checks

    machine = Machine(requested=app.runtime_name, runner=app.runner(), home=app.home,
                      spec_refs=lambda: _spec_refs(app))
    results = run_checks(machine)
    if as_json:
        click.echo(json.dumps([result.as_json() for result in results], indent=2))
    else:
        for result in results:
            mark = _MARK[result.status]
            colour = _COLOUR[result.status]
            if app.color and colour:
                mark = click.style(mark, fg=colour, bold=True)
            fix = f" -- fix: {result.fix}" if result.fix and result.status in ("fail", "warn") \
                else ""
            click.echo(f"{mark} {result.name:<10} {result.detail}{fix}")
        failed = sum(result.status == "fail" for result in results)
        click.echo("\nasbx can run sandboxes here." if not failed else
                   f"\n{failed} check{'s' if failed != 1 else ''} failed: fix "
                   f"{'them' if failed != 1 else 'it'} and run `asbx doctor` again.")
    if not passed(results):
        raise click.exceptions.Exit(1)


def _spec_refs(app: AppContext) -> Sequence[str] | None:
    """The images the project's spec pulls or builds FROM; None when there is no spec."""
    from asbx.doctor import spec_image_refs
    from asbx.errors import SpecNotFoundError

    try:
        return spec_image_refs(app.load())
    except SpecNotFoundError:
        return None
