"""`asbx serve`: the sandbox API on a unix socket (default) or TCP with a bearer token."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from asbx.cli.context import AppContext

if TYPE_CHECKING:
    from asbx.api.service import SandboxService


@click.command()
@click.option("--socket", "socket_path", type=click.Path(path_type=Path), metavar="PATH",
              help="Unix socket to listen on (default: $ASBX_HOME/asbx.sock).")
@click.option("--listen", metavar="HOST:PORT",
              help="Listen on TCP instead; requests need the token in $ASBX_HOME/api-token.")
@click.option("--project", "api_project", default="api", show_default=True,
              help="Name of the server-owned project the API's sandboxes are declared in.")
@click.option("--lock-timeout", default=60.0, show_default=True, type=float, metavar="SECONDS",
              help="How long a mutation waits for the project's lock before answering 409.")
@click.option("--openapi", is_flag=True, help="Print the OpenAPI document and exit.")
@click.pass_obj
def serve(app: AppContext, socket_path: Path | None, listen: str | None, api_project: str,
          lock_timeout: float, openapi: bool) -> int:
    """Serve the sandbox API (docs/api.md): create sandboxes, exec in them, move files."""
    from asbx.api.app import create_app, openapi_text
    from asbx.api.service import SandboxService

    if openapi:
        click.echo(openapi_text(create_app(_offline_service(app, api_project))), nl=False)
        return 0
    if listen and socket_path:
        raise click.UsageError("give --socket or --listen, not both")
    from asbx.runtime.cached import watched

    runtime, watcher = watched(app.runtime())  # listings kept between requests, events-fed
    service = SandboxService(app.home, runtime, app.store(), project=api_project,
                             lock_timeout=lock_timeout)
    try:
        _run(service, app.home, socket_path, listen)
    finally:
        if watcher is not None:
            watcher.stop()
    return 0


def _run(service: SandboxService, home: Path, socket_path: Path | None, listen: str | None
         ) -> None:
    import uvicorn

    from asbx.api.app import create_app
    from asbx.api.server import api_token, bind_unix, parse_listen

    if listen:
        host, port = parse_listen(listen)
        token = api_token(home)
        server = uvicorn.Server(uvicorn.Config(create_app(service, token=token), host=host,
                                               port=port, log_level="warning", lifespan="off"))
        click.echo(f"asbx serve: listening on http://{listen} (token in "
                   f"{home / 'api-token'})", err=True)
        server.run()
        return
    path = socket_path or home / "asbx.sock"
    sock = bind_unix(path)
    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            path.unlink(missing_ok=True)  # uvicorn re-raises SIGTERM after this: not later

    server = Server(uvicorn.Config(create_app(service), log_level="warning", lifespan="off"))
    click.echo(f"asbx serve: listening on {path}", err=True)
    sys.stderr.flush()
    server.run(sockets=[sock])


def _offline_service(app: AppContext, project: str) -> SandboxService:
    """A service that is never called: the OpenAPI document needs only the routes."""
    from asbx.api.service import SandboxService

    return SandboxService.__new__(SandboxService)
