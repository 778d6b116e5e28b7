"""schema/openapi.json is what `asbx serve --openapi` prints (regenerate it when routes change)."""

from __future__ import annotations

from pathlib import Path

from asbx.api.app import create_app, openapi_text
from asbx.api.service import SandboxService

REPO = Path(__file__).resolve().parents[3]


def test_checked_in_openapi_is_fresh() -> None:
    fresh = openapi_text(create_app(SandboxService.__new__(SandboxService)))
    checked_in = (REPO / "schema" / "openapi.json").read_text(encoding="utf-8")
    assert checked_in == fresh, "run: asbx serve --openapi > schema/openapi.json"


def test_openapi_names_every_route() -> None:
    paths = create_app(SandboxService.__new__(SandboxService)).openapi()["paths"]
    assert set(paths) == {
        "/v1/health", "/v1/projects/plan", "/v1/projects/apply", "/v1/sandboxes",
        "/v1/sandboxes/{name}", "/v1/sandboxes/{name}/exec",
        "/v1/sandboxes/{name}/exec/stream", "/v1/sandboxes/{name}/snapshots",
        "/v1/sandboxes/{name}/start", "/v1/sandboxes/{name}/stop",
        "/v1/sandboxes/{name}/files/{path}", "/v1/snapshots", "/v1/snapshots/{name}",
    }
