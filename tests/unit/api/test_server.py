"""The token file, the owner-only socket, and the bearer check of the app."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import httpx
import pytest

from asbx.api.app import create_app
from asbx.api.server import api_token, bind_unix, parse_listen
from asbx.api.service import SandboxService
from asbx.errors import AsbxError


def _service(project: str = "api") -> SandboxService:
    service = SandboxService.__new__(SandboxService)
    service.project = project
    return service


def test_token_is_made_once_owner_only(tmp_path: Path) -> None:
    token = api_token(tmp_path)
    assert len(token) >= 32
    assert stat.S_IMODE((tmp_path / "api-token").stat().st_mode) == 0o600
    assert api_token(tmp_path) == token


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    api_token(tmp_path)
    os.chmod(tmp_path / "api-token", 0o644)
    with pytest.raises(AsbxError, match="readable by others"):
        api_token(tmp_path)


def test_socket_is_owner_only_and_a_non_socket_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "run" / "asbx.sock"
    sock = bind_unix(path)
    try:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        with pytest.raises(AsbxError, match="already listens"):
            bind_unix(path)
    finally:
        sock.close()
    bind_unix(path).close()  # a stale socket is replaced
    other = tmp_path / "file"
    other.write_text("keep")
    with pytest.raises(AsbxError, match="not a socket"):
        bind_unix(other)
    assert other.read_text() == "keep"


def _get(app: object, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://asbx") as client:
            return await client.get("/v1/health", headers=headers)

    return anyio.run(go)


def test_bearer_token_is_required_when_set() -> None:
    app = create_app(_service(), token="s3cret")
    assert _get(app, {}).status_code == 401
    assert _get(app, {"Authorization": "Bearer nope"}).status_code == 401
    ok = _get(app, {"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert ok.json()["project"] == "api"
    assert _get(create_app(_service()), {}).status_code == 200  # the socket needs no token


@pytest.mark.parametrize("value", ["8080", "host:", ":80", "h:0", "h:70000", "h:x"])
def test_listen_must_be_host_and_port(value: str) -> None:
    with pytest.raises(AsbxError):
        parse_listen(value)


def test_listen_forms() -> None:
    assert parse_listen("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_listen("[::1]:80") == ("::1", 80)
