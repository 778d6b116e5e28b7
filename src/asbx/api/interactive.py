"""Interactive exec over a WebSocket: stdin streamed in, stdout/stderr streamed out, exit code.

Protocol (`/v1/sandboxes/{name}/exec/ws`): the client's first message is JSON
`{"command": [...], "env": {...}, "timeout": N}`; then binary messages are stdin bytes and a
text message `{"eof": true}` closes stdin. The server sends JSON text messages
`{"stream": "stdout"|"stderr", "data": "..."}` as output comes, then `{"exit_code": N}` (or
`{"error": "...", "status": N}`), and closes. With a token, the handshake needs the same
`Authorization: Bearer` header as every other request (checked here: HTTP middleware does not
see WebSocket handshakes)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import threading
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from asbx.api.service import SandboxService, describe
from asbx.errors import AsbxError, NotFoundError

POLICY_VIOLATION = 1008  # WebSocket close code: the token is missing or wrong


def add_routes(app: FastAPI, service: SandboxService, expected: bytes | None) -> None:
    """Register the WebSocket exec; `expected` is `b"Bearer <token>"` or None (socket mode)."""
    from asbx.api.app import ExecIn

    @app.websocket("/v1/sandboxes/{name}/exec/ws")
    async def exec_ws(websocket: WebSocket, name: str) -> None:
        given = websocket.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            await websocket.close(code=POLICY_VIOLATION, reason="missing or wrong bearer token")
            return
        await websocket.accept()
        try:
            start = ExecIn.model_validate(await websocket.receive_json())
            await anyio.to_thread.run_sync(service.get, name)  # 404 before anything runs
        except ValidationError as exc:
            await _finish(websocket, {"error": str(exc), "status": 422})
            return
        except NotFoundError as exc:
            await _finish(websocket, {"error": describe(exc), "status": 404})
            return
        except (WebSocketDisconnect, ValueError):
            return
        await _session(websocket, service, name, start)


async def _session(websocket: WebSocket, service: SandboxService, name: str,
                   start: Any) -> None:
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    read_end, write_end = os.pipe()
    stdin = os.fdopen(read_end, "rb")
    writer = _StdinWriter(write_end)

    def emit(event: dict[str, Any] | None) -> None:
        loop.call_soon_threadsafe(events.put_nowait, event)

    def run() -> None:
        try:
            out = service.exec(name, start.command, env=start.env, stdin=stdin,
                               timeout=start.timeout,
                               on_output=lambda s, d: emit({"stream": s, "data": d}))
            emit({"exit_code": out.exit_code})
        except AsbxError as exc:
            emit({"error": describe(exc), "status": 404 if isinstance(exc, NotFoundError)
                  else 500})
        finally:
            stdin.close()
            emit(None)

    threading.Thread(target=run, name="asbx-api-exec-ws", daemon=True).start()
    receiving = asyncio.create_task(_receive(websocket, writer))
    try:
        while (event := await events.get()) is not None:
            await websocket.send_json(event)
        await websocket.close()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await receiving
        writer.close()


async def _receive(websocket: WebSocket, writer: _StdinWriter) -> None:
    """Stdin frames into the pipe until `{"eof": true}` or the client goes."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await anyio.to_thread.run_sync(writer.write, message["bytes"])
            elif '"eof"' in (message.get("text") or ""):
                return
    finally:
        writer.close()


class _StdinWriter:
    """The write end of the command's stdin; closed once (EOF), writes after that dropped."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            fd = self._fd
        view = memoryview(data)
        while fd is not None and view:
            try:
                view = view[os.write(fd, view):]
            except (BrokenPipeError, OSError):  # the command stopped reading, or ended
                return

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


async def _finish(websocket: WebSocket, event: dict[str, Any]) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_json(event)
        await websocket.close()
