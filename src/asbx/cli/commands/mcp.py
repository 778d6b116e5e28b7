"""`asbx mcp`: the sandbox tools for coding agents, as an MCP server on stdio."""

from __future__ import annotations

import click

from asbx.cli.context import AppContext


@click.command("mcp")
@click.option("--project", "api_project", default="api", show_default=True,
              help="The server-owned project its sandboxes are declared in (as asbx serve).")
@click.option("--lock-timeout", default=60.0, show_default=True, type=float, metavar="SECONDS")
@click.pass_obj
def mcp(app: AppContext, api_project: str, lock_timeout: float) -> int:
    """Serve the sandbox tools over MCP on stdio (create, exec, read/write_file, delete)."""
    from asbx.api.mcp_server import create_mcp
    from asbx.api.service import SandboxService
    from asbx.runtime.cached import watched

    runtime, watcher = watched(app.runtime())  # listings kept between calls, events-fed
    service = SandboxService(app.home, runtime, app.store(), project=api_project,
                             lock_timeout=lock_timeout)
    try:
        create_mcp(service).run("stdio")
    finally:
        if watcher is not None:
            watcher.stop()
    return 0
