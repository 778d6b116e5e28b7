"""`asbx validate`: check one or more spec files; exit 0 when all are valid, 1 otherwise."""

from __future__ import annotations

from pathlib import Path

import click

from asbx.cli.context import AppContext
from asbx.errors import AsbxError


@click.command()
@click.option("-f", "--file", "file_options", multiple=True, type=click.Path(path_type=Path),
              help="A spec file to check (repeatable; adds to FILES).")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.pass_obj
def validate(app: AppContext, file_options: tuple[Path, ...], files: tuple[Path, ...]) -> int:
    """Check spec files (default: the project's) and report every problem.

    `asbx validate -f examples/*/sandboxes.yaml` checks every file the shell expands to.
    """
    from asbx.cli.report import report_error
    from asbx.render.diagnostics import render_diagnostics
    from asbx.spec.loader import display_name, find_spec, load_spec

    failed = 0
    for given in (*file_options, *files) or (app.spec_file,):
        try:
            path = find_spec(Path.cwd(), given)
            loaded = load_spec(path)
        except AsbxError as exc:  # SpecError included: every diagnostic, then the count
            failed += 1
            report_error(exc, None)
            continue
        if loaded.warnings:
            click.echo(render_diagnostics(loaded.warnings, color=app.color), err=True)
        click.echo(f"{display_name(path)}: valid ({len(loaded.graph.resources)} resources)")
    if failed:
        raise click.exceptions.Exit(1)
    return 0
