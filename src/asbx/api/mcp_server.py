"""`asbx mcp`: an MCP server over stdio whose tools call the same SandboxService as the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from asbx.errors import AsbxError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from asbx.api.service import SandboxService


def create_mcp(service: SandboxService) -> MCPServer:
    """The MCP server: create, exec, read_file, write_file, snapshot, delete (errors as tool
    errors)."""
    from mcp.server.mcpserver import MCPServer

    server: MCPServer = MCPServer(
        "asbx", instructions="Create sandboxes (containers with a /workspace), run commands in "
        "them, read and write their workspace files, delete them.", log_level="WARNING")

    @server.tool()
    def create(name: str, image: str, fields: dict[str, Any] | None = None) -> dict[str, str]:
        """Create sandbox NAME from IMAGE; FIELDS are any sandbox fields of sandboxes.yaml
        (memory, cpus, env, network, ...). Returns its name, image, state and container."""
        with _errors():
            info = service.create(name, {"image": image, **(fields or {})})
        return {"name": info.name, "image": info.image, "state": info.state,
                "container": info.container}

    @server.tool()
    def exec(name: str, command: list[str], stdin: str | None = None,
             timeout: float | None = None, env: dict[str, str] | None = None
             ) -> dict[str, Any]:
        """Run COMMAND (an argv list) in sandbox NAME; returns exit_code, stdout, stderr."""
        with _errors():
            out = service.exec(name, command, env=env, stdin=stdin, timeout=timeout)
        return {"exit_code": out.exit_code, "stdout": out.stdout, "stderr": out.stderr}

    @server.tool()
    def read_file(name: str, path: str) -> str:
        """The text of a file under sandbox NAME's /workspace (PATH relative to it)."""
        with _errors():
            data = service.read_file(name, path)
        return data.decode("utf-8", errors="replace")

    @server.tool()
    def write_file(name: str, path: str, content: str) -> str:
        """Write CONTENT to PATH under sandbox NAME's /workspace (parents are made)."""
        with _errors():
            service.write_file(name, path, content.encode())
        return f"wrote {len(content.encode())} bytes to /workspace/{path}"

    @server.tool()
    def snapshot(name: str, snapshot: str) -> dict[str, str]:
        """Capture sandbox NAME's /workspace as SNAPSHOT (retaken if it exists); create a
        sandbox from it with fields {"workspace": {"snapshot": SNAPSHOT}}."""
        with _errors():
            info = service.snapshot(name, snapshot)
        return {"name": info.name, "sandbox": info.sandbox, "digest": info.digest}

    @server.tool()
    def delete(name: str) -> str:
        """Delete sandbox NAME (its container and workspace)."""
        with _errors():
            service.delete(name)
        return f"deleted {name}"

    return server


@contextmanager
def _errors() -> Iterator[None]:
    """asbx's errors reach the agent as tool errors with their message and hint."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        yield
    except AsbxError as exc:
        from asbx.api.service import describe

        hint = f" (hint: {exc.hint})" if exc.hint else ""
        raise ToolError(describe(exc) + hint) from None
