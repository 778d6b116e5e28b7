"""The `asbx` command group, its global options, and the single error boundary."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from asbx import __version__
from asbx.cli.context import AppContext
from asbx.errors import EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, AsbxError

COMMANDS = {
    "validate": "asbx.cli.commands.validate:validate",
    "config": "asbx.cli.commands.config:config",
    "schema": "asbx.cli.commands.schema:schema",
    "plan": "asbx.cli.commands.plan:plan",
    "apply": "asbx.cli.commands.apply:apply",
    "destroy": "asbx.cli.commands.apply:destroy",
    "state": "asbx.cli.commands.state:state",
    "status": "asbx.cli.commands.status:status",
    "ps": "asbx.cli.commands.status:status",
    "exec": "asbx.cli.commands.exec:exec_command",
    "shell": "asbx.cli.commands.exec:shell",
    "logs": "asbx.cli.commands.logs:logs",
    "start": "asbx.cli.commands.lifecycle:start",
    "stop": "asbx.cli.commands.lifecycle:stop",
    "reap": "asbx.cli.commands.lifecycle:reap",
    "graph": "asbx.cli.commands.graph:graph",
    "init": "asbx.cli.commands.init:init",
    "completion": "asbx.cli.commands.completion:completion",
    "lock": "asbx.cli.commands.lock:lock",
    "snapshot": "asbx.cli.commands.snapshot:snapshot",
    "gc": "asbx.cli.commands.gc:gc",
    "policy": "asbx.cli.commands.policy:policy",
    "doctor": "asbx.cli.commands.doctor:doctor",
    "render": "asbx.cli.commands.render:render",
    "serve": "asbx.cli.commands.serve:serve",
    "mcp": "asbx.cli.commands.mcp:mcp",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs (fast --version)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module_name, attr = target.split(":")
        module = __import__(module_name, fromlist=[attr])
        command: click.Command = getattr(module, attr)
        return command


def _check_project_name(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """An invalid -p is a usage error (exit 1), not a crash deep inside a command."""
    if value is None:
        return None
    from asbx.spec.values import check_name

    try:
        return check_name(value)
    except ValueError as exc:
        hint = getattr(exc, "hint", None)
        raise click.BadParameter(f"{exc}{f' ({hint})' if hint else ''}") from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="asbx")
@click.option(
    "-f",
    "--file",
    "spec_file",
    type=click.Path(path_type=Path),
    envvar="ASBX_FILE",
    help="Spec file (default: sandboxes.yaml here or above).",
)
@click.option(
    "-p",
    "--project-name",
    envvar="ASBX_PROJECT_NAME",
    callback=_check_project_name,
    help="Override the project name.",
)
@click.option(
    "--runtime",
    type=click.Choice(["apple", "container", "podman", "docker"]),
    envvar="ASBX_RUNTIME",
    help="Container runtime (default: detected); `container` is Apple's, as `apple`.",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="ASBX_HOME",
    help="asbx data directory (state, workspaces, snapshots).",
)
@click.option("--no-color", is_flag=True, help="Disable colour (also NO_COLOR).")
@click.option("-v", "--verbose", count=True, help="More output (-vv shows runtime commands).")
@click.pass_context
def cli(
    ctx: click.Context,
    spec_file: Path | None,
    project_name: str | None,
    runtime: str | None,
    home: Path | None,
    no_color: bool,
    verbose: int,
) -> None:
    """asbx: sandboxes declared in your repository, made real on your machine."""
    app = ctx.ensure_object(AppContext)  # run() passes its own, to find --home after a crash
    app.spec_file = spec_file
    app.project_name = project_name
    app.runtime_name = runtime
    app.home_override = home
    app.color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    app.verbose = verbose


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; known errors exit 1, ^C exits 130, anything else exits 3 with a crash log."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    app = AppContext()
    try:
        result = cli.main(args=argv, prog_name="asbx", standalone_mode=False, obj=app)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # click already ended the line for a ^C inside a command; a prompt's abort did not
        if not isinstance(exc.__cause__, (KeyboardInterrupt, EOFError)):
            click.echo(err=True)
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except click.UsageError as exc:
        exc.show()
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except AsbxError as exc:
        from asbx.cli.report import report_error

        report_error(exc, argv)
        return exc.exit_code
    except Exception as exc:  # the boundary: nothing unexpected reaches the user as a traceback
        from asbx.cli.report import report_crash

        report_crash(exc, argv, app.home_override)
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0
