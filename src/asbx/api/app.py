"""The HTTP API (FastAPI): /v1 routes over a SandboxService, errors as JSON, optional token."""

from __future__ import annotations

import hmac
import json
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from asbx import __version__
from asbx.api.files import UnsafePathError
from asbx.api.service import ConflictError, SandboxService, describe
from asbx.errors import (
    AsbxError,
    NotFoundError,
    SpecError,
    SpecNotFoundError,
    StateLockedError,
)


class SandboxOut(BaseModel):
    """A sandbox as the API reports it."""

    name: str
    image: str
    state: str
    container: str


class CreateSandbox(BaseModel):
    """`name` plus any field of a sandbox in sandboxes.yaml (checked by the spec's own model)."""

    model_config = ConfigDict(extra="allow")
    name: str


class ExecIn(BaseModel):
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    stdin: str | None = None
    timeout: float | None = Field(default=None, gt=0)


class ExecOut(BaseModel):
    exit_code: int
    stdout: str
    stderr: str


class SnapshotIn(BaseModel):
    name: str


class SnapshotOut(BaseModel):
    name: str
    sandbox: str
    digest: str


class PlanIn(BaseModel):
    spec: str = Field(description="Absolute path of a sandboxes.yaml (or its directory).")
    project: str | None = Field(None, description="Override the project name (as -p).")


class Health(BaseModel):
    status: str
    version: str
    project: str


def _status(exc: AsbxError) -> int:
    if isinstance(exc, NotFoundError | SpecNotFoundError):
        return 404
    if isinstance(exc, SpecError):
        return 422
    if isinstance(exc, UnsafePathError):
        return 400
    if isinstance(exc, ConflictError | StateLockedError):
        return 409
    return 500


def create_app(service: SandboxService, *, token: str | None = None) -> FastAPI:
    """The app; with `token`, every request must carry `Authorization: Bearer <token>`."""
    app = FastAPI(title="asbx", version=__version__,
                  description="Sandboxes declared in a server-owned project, applied by asbx.")

    @app.exception_handler(AsbxError)
    async def asbx_error(request: Request, exc: AsbxError) -> JSONResponse:
        return JSONResponse({"error": describe(exc), "hint": exc.hint}, status_code=_status(exc))

    if token is not None:
        expected = f"Bearer {token}".encode()

        @app.middleware("http")
        async def require_token(request: Request,
                                call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse({"error": "missing or wrong bearer token", "hint": None},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await call_next(request)

    _routes(app, service)
    from asbx.api.interactive import add_routes

    add_routes(app, service, f"Bearer {token}".encode() if token is not None else None)
    return app


def _routes(app: FastAPI, service: SandboxService) -> None:
    @app.get("/v1/health")
    def health() -> Health:
        return Health(status="ok", version=__version__, project=service.project)

    @app.post("/v1/projects/plan")
    def plan_project(body: PlanIn) -> dict[str, Any]:
        """What `asbx -f SPEC plan --json` prints (docs/plan-format.md); changes nothing."""
        from asbx.api.projects import plan_project

        return plan_project(service.home, service.direct_runtime, service.store, body.spec,
                            body.project)

    @app.post("/v1/projects/apply", response_class=StreamingResponse,
              responses={200: {"content": {"application/x-ndjson": {}}}})
    def apply_project(body: PlanIn) -> StreamingResponse:
        """`asbx -f SPEC apply -y` as NDJSON: {"event":"plan"}, then started / output /
        finished / note events as steps run, then {"event":"done","ok",counts} or
        {"event":"error","error"}."""
        from asbx.api.projects import apply_project

        def run(emit: Callable[[dict[str, Any]], None]) -> None:
            summary = apply_project(service.home, service.direct_runtime, service.store, body.spec,
                                    body.project, emit, lock_timeout=service.lock_timeout)
            emit({"event": "done", **summary})

        return StreamingResponse(_stream(run), media_type="application/x-ndjson")

    @app.get("/v1/sandboxes")
    def list_sandboxes() -> list[SandboxOut]:
        return [SandboxOut(**asdict(s)) for s in service.sandboxes()]

    @app.post("/v1/sandboxes", status_code=201)
    def create_sandbox(body: CreateSandbox) -> SandboxOut:
        fields: dict[str, Any] = dict(body.model_extra or {})
        return SandboxOut(**asdict(service.create(body.name, fields)))

    @app.get("/v1/sandboxes/{name}")
    def get_sandbox(name: str) -> SandboxOut:
        return SandboxOut(**asdict(service.get(name)))

    @app.delete("/v1/sandboxes/{name}", status_code=204)
    def delete_sandbox(name: str) -> None:
        service.delete(name)

    @app.post("/v1/sandboxes/{name}/start")
    def start_sandbox(name: str) -> SandboxOut:
        return SandboxOut(**asdict(service.start(name)))

    @app.post("/v1/sandboxes/{name}/stop")
    def stop_sandbox(name: str, grace: int = Query(10, ge=0, le=600)) -> SandboxOut:
        return SandboxOut(**asdict(service.stop(name, grace)))

    @app.post("/v1/sandboxes/{name}/snapshots", status_code=201)
    def snapshot(name: str, body: SnapshotIn) -> SnapshotOut:
        return SnapshotOut(**asdict(service.snapshot(name, body.name)))

    @app.get("/v1/snapshots")
    def list_snapshots() -> list[SnapshotOut]:
        return [SnapshotOut(**asdict(s)) for s in service.snapshots()]

    @app.delete("/v1/snapshots/{name}", status_code=204)
    def delete_snapshot(name: str) -> None:
        """Forget a snapshot and its archive; 422 while a sandbox is restored from it."""
        service.delete_snapshot(name)

    @app.post("/v1/sandboxes/{name}/exec")
    def exec_in(name: str, body: ExecIn) -> ExecOut:
        out = service.exec(name, body.command, env=body.env, stdin=body.stdin,
                           timeout=body.timeout)
        return ExecOut(**asdict(out))

    @app.post("/v1/sandboxes/{name}/exec/stream", response_class=StreamingResponse,
              responses={200: {"content": {"application/x-ndjson": {}}}})
    def exec_stream(name: str, body: ExecIn) -> StreamingResponse:
        """Output as it comes, one JSON object a line: {"stream","data"}..., then
        {"exit_code"} (or {"error"} if the exec failed after it began)."""
        service.get(name)  # a 404 before the stream starts
        return StreamingResponse(_stream_exec(service, name, body),
                                 media_type="application/x-ndjson")

    @app.get("/v1/sandboxes/{name}/files/{path:path}",
             response_class=Response, responses={200: {"content": {
                 "application/octet-stream": {}}}})
    def read_file(name: str, path: str) -> Response:
        return Response(service.read_file(name, path), media_type="application/octet-stream")

    @app.put("/v1/sandboxes/{name}/files/{path:path}", status_code=204,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}})
    async def write_file(name: str, path: str, request: Request) -> None:
        data = await request.body()
        await anyio.to_thread.run_sync(service.write_file, name, path, data)

    @app.delete("/v1/sandboxes/{name}/files/{path:path}", status_code=204)
    def delete_file(name: str, path: str) -> None:
        service.delete_file(name, path)


def _stream_exec(service: SandboxService, name: str, body: ExecIn) -> AsyncIterator[bytes]:
    def run(emit: Callable[[dict[str, Any]], None]) -> None:
        out = service.exec(name, body.command, env=body.env, stdin=body.stdin,
                           timeout=body.timeout,
                           on_output=lambda stream, data: emit({"stream": stream, "data": data}))
        emit({"exit_code": out.exit_code})

    return _stream(run)


async def _stream(work: Callable[[Callable[[dict[str, Any]], None]], None]
                  ) -> AsyncIterator[bytes]:
    """NDJSON of the events `work` emits, run in a worker thread; an asbx error ends the
    stream with {"event": "error", "error": ...}."""
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def run() -> None:
        try:
            work(events.put)
        except AsbxError as exc:
            events.put({"event": "error", "error": describe(exc)})
        finally:
            events.put(None)

    threading.Thread(target=run, name="asbx-api-stream", daemon=True).start()
    while (event := await anyio.to_thread.run_sync(events.get)) is not None:
        yield (json.dumps(event) + "\n").encode()


def openapi_text(app: FastAPI) -> str:
    """The OpenAPI document as checked in (schema/openapi.json)."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
