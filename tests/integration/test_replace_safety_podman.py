"""Data safety on real podman: a failed build keeps the running sandbox, destroy verifies."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

APP_SPEC = """
version: 1
name: NAME
images:
  app:
    build: {context: ./app}
sandboxes:
  dev:
    image: app
"""


def _container_id(project: Project, name: str) -> str:
    out = project.podman("inspect", "--format", "{{.Id}} {{.State.Status}}", name).stdout.split()
    assert out[1:] == ["running"], out
    return out[0]


def test_a_failing_build_leaves_the_running_sandbox_in_place(project: Project) -> None:
    app = project.root / "app"
    app.mkdir()
    dockerfile = app / "Dockerfile"
    dockerfile.write_text("FROM localhost/asbx/busybox:latest\nRUN echo v1 > /version\n")
    project.write(APP_SPEC)
    project.asbx("apply", "-y", check=True)
    dev = f"{project.name}-dev"
    before = _container_id(project, dev)

    dockerfile.write_text(dockerfile.read_text() + "RUN false\n")
    failed = project.asbx("apply", "-y")
    assert failed.returncode == 1, failed.stderr
    assert "removing old" not in failed.stderr
    assert "kept: sandbox.dev was not replaced" in failed.stderr
    assert failed.stderr.count("STEP 1/") == 1, "the build's output is printed once: " + (
        failed.stderr)
    assert _container_id(project, dev) == before, "the old container still runs"
    status = json.loads(project.asbx("status", "--json", check=True).stdout)
    states = {r["address"]: r["state"] for r in status["resources"]}
    assert states["sandbox.dev"] == "running", status

    dockerfile.write_text("FROM localhost/asbx/busybox:latest\nRUN echo v2 > /version\n")
    project.asbx("apply", "-y", check=True)
    assert _container_id(project, dev) != before
    assert project.podman("exec", dev, "cat", "/version").stdout == "v2\n"
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0


THREE_SPEC = """
version: 1
name: NAME
sandboxes:
  a: {image: "localhost/asbx/busybox:latest"}
  b: {image: "localhost/asbx/busybox:latest"}
  c: {image: "localhost/asbx/busybox:latest"}
"""


def test_destroy_after_one_was_removed_by_hand_removes_the_others(project: Project) -> None:
    project.write(THREE_SPEC)
    project.asbx("apply", "-y", check=True)
    assert len(project.containers()) == 3
    project.podman("rm", "-f", "-t", "0", f"{project.name}-b")

    result = project.asbx("destroy", "-y")
    assert result.returncode == 0, result.stderr
    assert project.containers() == {}, "podman's `rm -f A B C` removes nothing if B is missing"
    assert project.asbx("plan", "--detailed-exitcode", "--json").returncode == 2, (
        "state forgot them: a plan creates all three again"
    )
