"""Typed Python clients (Client, AsyncClient) for `asbx serve`, over its unix socket or TCP
with the bearer token."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import quote

import httpx


class ApiError(Exception):
    """The server refused or failed a request; `message` is the server's own."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(f"{status}: {message}" + (f" (hint: {hint})" if hint else ""))
        self.status = status
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Sandbox:
    name: str
    image: str
    state: str
    container: str


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


class Client:
    """`Client(socket=path)` (default `$ASBX_HOME/asbx.sock`) or `Client(url=..., token=...)`."""

    def __init__(self, *, socket: str | Path | None = None, url: str | None = None,
                 token: str | None = None, timeout: float = 300.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._ws = _WebSocketTarget(url, None if url is not None else
                                    str(socket or _default_socket()), headers)
        if url is not None:
            self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout)
        else:
            transport = httpx.HTTPTransport(uds=str(socket or _default_socket()))
            self._http = httpx.Client(transport=transport, base_url="http://asbx",
                                      headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def exec_interactive(self, name: str, command: list[str], *,
                         env: dict[str, str] | None = None,
                         timeout: float | None = None) -> InteractiveExec:
        """Start `command` with its stdin open: `send()` input, `close_stdin()`, read
        `events()` (`{"stream","data"}` ..., then `{"exit_code"}`) or `wait()` for all.
        Use it as a context manager (it closes the connection)."""
        from websockets.sync.client import connect, unix_connect

        path = f"/v1/sandboxes/{_seg(name)}/exec/ws"
        target = self._ws
        stack = contextlib.ExitStack()  # websockets wants its connections used as contexts
        try:
            if target.socket is not None:
                connection = stack.enter_context(unix_connect(
                    target.socket, f"ws://asbx{path}", additional_headers=target.headers))
            else:
                assert target.url is not None
                base = target.url.replace("https://", "wss://").replace("http://", "ws://")
                connection = stack.enter_context(connect(
                    base.rstrip("/") + path, additional_headers=target.headers))
        except Exception as exc:  # the handshake refused (401/403) or nothing listens
            stack.close()
            raise ApiError(getattr(getattr(exc, "response", None), "status_code", 0) or 503,
                           f"cannot open the exec session: {exc}") from None
        connection.send(json.dumps({"command": command, "env": env or {}, "timeout": timeout}))
        return InteractiveExec(connection, stack)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            self._raise(response)
        return response

    @staticmethod
    def _raise(response: httpx.Response) -> NoReturn:
        try:
            body = response.json()
            message, hint = _detail(body), body.get("hint")
        except ValueError:
            message, hint = response.text, None
        raise ApiError(response.status_code, message, hint)

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/health").json()
        return result

    def plan(self, spec: str | Path, project: str | None = None) -> dict[str, Any]:
        """The plan of the spec at `spec` (an absolute path), as `asbx plan --json` gives it."""
        result: dict[str, Any] = self._call(
            "POST", "/v1/projects/plan", json={"spec": str(spec), "project": project}).json()
        return result

    def sandboxes(self) -> list[Sandbox]:
        return [Sandbox(**s) for s in self._call("GET", "/v1/sandboxes").json()]

    def get(self, name: str) -> Sandbox:
        return Sandbox(**self._call("GET", f"/v1/sandboxes/{_seg(name)}").json())

    def create(self, name: str, image: str, **fields: Any) -> Sandbox:
        """Create sandbox `name`; `fields` are those of a sandbox in sandboxes.yaml."""
        body = {"name": name, "image": image, **fields}
        return Sandbox(**self._call("POST", "/v1/sandboxes", json=body).json())

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/v1/sandboxes/{_seg(name)}")

    def start(self, name: str) -> Sandbox:
        return Sandbox(**self._call("POST", f"/v1/sandboxes/{_seg(name)}/start").json())

    def stop(self, name: str, grace: int = 10) -> Sandbox:
        return Sandbox(**self._call("POST", f"/v1/sandboxes/{_seg(name)}/stop",
                                    params={"grace": grace}).json())

    def snapshot(self, name: str, snapshot: str) -> dict[str, str]:
        """Capture sandbox `name`'s /workspace as `snapshot` (retaken if it exists); create
        from it with `workspace={"snapshot": snapshot}`."""
        result: dict[str, str] = self._call(
            "POST", f"/v1/sandboxes/{_seg(name)}/snapshots", json={"name": snapshot}).json()
        return result

    def snapshots(self) -> list[dict[str, str]]:
        """The server project's snapshots: {name, sandbox, digest} each."""
        result: list[dict[str, str]] = self._call("GET", "/v1/snapshots").json()
        return result

    def delete_snapshot(self, snapshot: str) -> None:
        self._call("DELETE", f"/v1/snapshots/{_seg(snapshot)}")

    def exec(self, name: str, command: list[str], *, env: dict[str, str] | None = None,
             stdin: str | None = None, timeout: float | None = None) -> ExecResult:
        body = {"command": command, "env": env or {}, "stdin": stdin, "timeout": timeout}
        return ExecResult(**self._call("POST", f"/v1/sandboxes/{_seg(name)}/exec",
                                       json=body).json())

    def exec_stream(self, name: str, command: list[str], *, env: dict[str, str] | None = None,
                    stdin: str | None = None, timeout: float | None = None
                    ) -> Iterator[dict[str, Any]]:
        """The output as it comes: {"stream": "stdout"|"stderr", "data": ...} events, then
        {"exit_code": N}; a failure after the stream began is raised as ApiError."""
        body = {"command": command, "env": env or {}, "stdin": stdin, "timeout": timeout}
        yield from self._events(f"/v1/sandboxes/{_seg(name)}/exec/stream", body)

    def apply(self, spec: str | Path, project: str | None = None) -> Iterator[dict[str, Any]]:
        """`asbx -f SPEC apply -y` on the server: its progress events as they come, the last
        {"event": "done", "ok": ..., "added": ..., ...}; an error is raised as ApiError."""
        yield from self._events("/v1/projects/apply", {"spec": str(spec), "project": project})

    def _events(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        with self._http.stream("POST", path, json=body) as response:
            if response.status_code >= 400:
                response.read()
                self._raise(response)
            for line in response.iter_lines():
                if not line:
                    continue
                event: dict[str, Any] = json.loads(line)
                if event.get("event") == "error":
                    raise ApiError(500, str(event["error"]))
                yield event

    def read_file(self, name: str, path: str) -> bytes:
        return self._call("GET", _file_url(name, path)).content

    def write_file(self, name: str, path: str, data: bytes | str) -> None:
        content = data.encode() if isinstance(data, str) else data
        self._call("PUT", _file_url(name, path), content=content,
                   headers={"Content-Type": "application/octet-stream"})

    def delete_file(self, name: str, path: str) -> None:
        self._call("DELETE", _file_url(name, path))


@dataclass(frozen=True)
class _WebSocketTarget:
    url: str | None
    socket: str | None
    headers: dict[str, str]


class InteractiveExec:
    """A command running in a sandbox with its stdin open (see Client.exec_interactive)."""

    def __init__(self, connection: Any, stack: contextlib.ExitStack) -> None:
        self._connection = connection
        self._stack = stack

    def send(self, data: bytes | str) -> None:
        """Write to the command's stdin."""
        self._connection.send(data.encode() if isinstance(data, str) else bytes(data))

    def close_stdin(self) -> None:
        """End the command's stdin (EOF)."""
        self._connection.send(json.dumps({"eof": True}))

    def events(self) -> Iterator[dict[str, Any]]:
        """Output events as they come, ending with {"exit_code": N}; an error is raised."""
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                message = self._connection.recv()
            except ConnectionClosed:
                return
            event: dict[str, Any] = json.loads(message)
            if "error" in event:
                raise ApiError(int(event.get("status", 500)), str(event["error"]))
            yield event
            if "exit_code" in event:
                return

    def wait(self) -> ExecResult:
        """Everything until the command ends: exit code, stdout, stderr."""
        out: dict[str, list[str]] = {"stdout": [], "stderr": []}
        code = -1
        for event in self.events():
            if "exit_code" in event:
                code = int(event["exit_code"])
            else:
                out[str(event["stream"])].append(str(event["data"]))
        return ExecResult(code, "".join(out["stdout"]), "".join(out["stderr"]))

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> InteractiveExec:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncInteractiveExec:
    """A command running in a sandbox with its stdin open (see AsyncClient.exec_interactive)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def send(self, data: bytes | str) -> None:
        await self._connection.send(data.encode() if isinstance(data, str) else bytes(data))

    async def close_stdin(self) -> None:
        await self._connection.send(json.dumps({"eof": True}))

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Output events as they come, ending with {"exit_code": N}; an error is raised."""
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                message = await self._connection.recv()
            except ConnectionClosed:
                return
            event: dict[str, Any] = json.loads(message)
            if "error" in event:
                raise ApiError(int(event.get("status", 500)), str(event["error"]))
            yield event
            if "exit_code" in event:
                return

    async def wait(self) -> ExecResult:
        out: dict[str, list[str]] = {"stdout": [], "stderr": []}
        code = -1
        async for event in self.events():
            if "exit_code" in event:
                code = int(event["exit_code"])
            else:
                out[str(event["stream"])].append(str(event["data"]))
        return ExecResult(code, "".join(out["stdout"]), "".join(out["stderr"]))

    async def aclose(self) -> None:
        await self._connection.close()

    async def __aenter__(self) -> AsyncInteractiveExec:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


def _seg(value: str) -> str:
    return quote(value, safe="")


def _file_url(name: str, path: str) -> str:
    return f"/v1/sandboxes/{_seg(name)}/files/{quote(path, safe='/')}"


def _detail(body: Any) -> str:
    """The message of an asbx error body, or of FastAPI's own 422 (a list of problems)."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)


class AsyncClient:
    """The asyncio twin of Client (same constructor, same methods, awaited)."""

    def __init__(self, *, socket: str | Path | None = None, url: str | None = None,
                 token: str | None = None, timeout: float = 300.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._ws = _WebSocketTarget(url, None if url is not None else
                                    str(socket or _default_socket()), headers)
        if url is not None:
            self._http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)
        else:
            transport = httpx.AsyncHTTPTransport(uds=str(socket or _default_socket()))
            self._http = httpx.AsyncClient(transport=transport, base_url="http://asbx",
                                           headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            Client._raise(response)
        return response

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = (await self._call("GET", "/v1/health")).json()
        return result

    async def sandboxes(self) -> list[Sandbox]:
        return [Sandbox(**s) for s in (await self._call("GET", "/v1/sandboxes")).json()]

    async def get(self, name: str) -> Sandbox:
        return Sandbox(**(await self._call("GET", f"/v1/sandboxes/{_seg(name)}")).json())

    async def create(self, name: str, image: str, **fields: Any) -> Sandbox:
        body = {"name": name, "image": image, **fields}
        return Sandbox(**(await self._call("POST", "/v1/sandboxes", json=body)).json())

    async def delete(self, name: str) -> None:
        await self._call("DELETE", f"/v1/sandboxes/{_seg(name)}")

    async def exec(self, name: str, command: list[str], *, env: dict[str, str] | None = None,
                   stdin: str | None = None, timeout: float | None = None) -> ExecResult:
        body = {"command": command, "env": env or {}, "stdin": stdin, "timeout": timeout}
        response = await self._call("POST", f"/v1/sandboxes/{_seg(name)}/exec", json=body)
        return ExecResult(**response.json())

    async def exec_interactive(self, name: str, command: list[str], *,
                               env: dict[str, str] | None = None,
                               timeout: float | None = None) -> AsyncInteractiveExec:
        """The asyncio twin of Client.exec_interactive (`async with`, awaited methods)."""
        from websockets.asyncio.client import connect, unix_connect

        path = f"/v1/sandboxes/{_seg(name)}/exec/ws"
        target = self._ws
        try:
            if target.socket is not None:
                connection = await unix_connect(target.socket, f"ws://asbx{path}",
                                                additional_headers=target.headers)
            else:
                assert target.url is not None
                base = target.url.replace("https://", "wss://").replace("http://", "ws://")
                connection = await connect(base.rstrip("/") + path,
                                           additional_headers=target.headers)
        except Exception as exc:  # the handshake refused (401/403) or nothing listens
            raise ApiError(getattr(getattr(exc, "response", None), "status_code", 0) or 503,
                           f"cannot open the exec session: {exc}") from None
        await connection.send(json.dumps({"command": command, "env": env or {},
                                          "timeout": timeout}))
        return AsyncInteractiveExec(connection)

    async def read_file(self, name: str, path: str) -> bytes:
        return (await self._call("GET", _file_url(name, path))).content

    async def write_file(self, name: str, path: str, data: bytes | str) -> None:
        content = data.encode() if isinstance(data, str) else data
        await self._call("PUT", _file_url(name, path), content=content,
                         headers={"Content-Type": "application/octet-stream"})


def _default_socket() -> Path:
    from asbx.paths import asbx_home

    return asbx_home(None) / "asbx.sock"
