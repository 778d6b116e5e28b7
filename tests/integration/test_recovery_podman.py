"""State loss and leftovers on real podman: adoption by labels, superseded images, workspaces."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
images:
  app:
    build:
      context: ./app
      args: { GREETING: hello }
volumes:
  cache: {}
sandboxes:
  web:
    image: app
    env: { TOKEN: not-a-real-secret }
    volumes: ["cache:/cache"]
    setup:
      - sh -c 'echo ran >> /workspace/setup.log'
  worker:
    image: app
    depends_on: [web]
"""

DOCKERFILE = """FROM localhost/asbx/busybox:latest
ARG GREETING
RUN echo "$GREETING" > /greeting
"""


def _write_project(project: Project, dockerfile: str = DOCKERFILE) -> None:
    (project.root / "app").mkdir(exist_ok=True)
    (project.root / "app" / "Dockerfile").write_text(dockerfile)
    project.write(SPEC)


def _lose_state(project: Project) -> None:
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (project.home / name).unlink(missing_ok=True)


def _container_ids(project: Project) -> dict[str, str]:
    out = project.podman(
        "ps", "-a", "--filter", f"label=dev.asbx.project={project.name}", "--format", "json"
    ).stdout
    return {c["Names"][0]: c["Id"] for c in json.loads(out or "[]")}


def _project_images(project: Project) -> list[str]:
    """Tags of this project's built images, from the runtime's own listing."""
    out = project.podman(
        "images", "--filter", f"label=dev.asbx.project={project.name}", "--format", "json"
    ).stdout
    return sorted(n for i in json.loads(out or "[]") for n in i.get("Names") or ())


def test_state_lost_adopts_built_image_sandboxes_volume_and_snapshot(project: Project) -> None:
    _write_project(project)
    project.write(SPEC + "snapshots:\n  deps: { sandbox: web }\n")
    project.asbx("apply", "-y", check=True)
    captured = json.loads(project.asbx("state", "show", "snapshot.deps", check=True).stdout)
    ids = _container_ids(project)
    images = _project_images(project)
    assert len(ids) == 2
    assert len(images) == 1
    _lose_state(project)

    plan = project.asbx("plan", "--json", check=True)
    changes = {c["address"]: c for c in json.loads(plan.stdout)["changes"]}
    assert {a: (c["action"], c["reason"]) for a, c in changes.items()} == {
        "image.app": ("update", "adopted"),
        "volume.cache": ("update", "adopted"),
        "sandbox.web": ("update", "adopted"),
        "sandbox.worker": ("update", "adopted"),
        "snapshot.deps": ("update", "adopted"),
    }
    text = project.asbx("plan", check=True).stdout
    assert text.count("will be adopted (found in runtime, not in state)") == 5, text
    assert "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy." in text

    project.asbx("apply", "-y", check=True)
    assert _container_ids(project) == ids  # the same containers, not new ones
    assert _project_images(project) == images  # no rebuild
    assert (project.workspace("web") / "setup.log").read_text() == "ran\n"  # setup not re-run
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    web = json.loads(project.asbx("state", "show", "sandbox.web", check=True).stdout)
    assert (web["status"], web["outputs"]["setup"]) == ("ok", "adopted")
    deps = json.loads(project.asbx("state", "show", "snapshot.deps", check=True).stdout)
    assert deps["outputs"]["digest"] == captured["outputs"]["digest"]  # the same archive


def test_state_lost_does_not_adopt_a_container_whose_setup_never_finished(
    project: Project,
) -> None:
    _write_project(project)
    (project.root / "sandboxes.yaml").write_text(
        SPEC.replace("NAME", project.name).replace(
            "sh -c 'echo ran >> /workspace/setup.log'",
            "sh -c 'sleep 30; echo ran >> /workspace/setup.log'",
        )
    )
    victim = project.popen("apply", "-y")
    deadline = time.monotonic() + 120
    while f"{project.name}-web" not in project.containers():  # web's setup is running
        assert time.monotonic() < deadline
        assert victim.poll() is None
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    _lose_state(project)

    plan = project.asbx("plan", "--json", check=True)
    changes = {c["address"]: c for c in json.loads(plan.stdout)["changes"]}
    assert (changes["sandbox.web"]["action"], changes["sandbox.web"]["reason"]) == (
        "replace",
        "tainted",
    )
    assert (changes["image.app"]["action"], changes["image.app"]["reason"]) == (
        "update",
        "adopted",
    )


def test_rebuilds_leave_no_superseded_images_and_destroy_removes_the_built_one(
    project: Project,
) -> None:
    _write_project(project)
    project.asbx("apply", "-y", check=True)
    (first,) = _project_images(project)
    for n in (1, 2):
        _write_project(project, DOCKERFILE + f"RUN echo {n} > /version\n")
        applied = project.asbx("apply", "-y", check=True)
        assert "removed superseded image" in applied.stdout
        (current,) = _project_images(project)  # the runtime's listing: one image left
        assert current != first
    worker_image = project.podman(
        "inspect", "--format", "{{.ImageName}}", f"{project.name}-worker"
    ).stdout.strip()
    assert worker_image == current

    project.asbx("destroy", "-y", check=True)
    assert _project_images(project) == []
    assert project.containers() == {}


def test_gc_removes_superseded_images_no_container_uses(project: Project) -> None:
    _write_project(project)
    project.asbx("apply", "-y", check=True)
    (first,) = _project_images(project)
    # A rebuild whose apply fails later (a broken setup) keeps the old image; gc removes it.
    (project.root / "app" / "Dockerfile").write_text(DOCKERFILE + "RUN echo 2 > /version\n")
    project.write(SPEC.replace("echo ran >> /workspace/setup.log", "exit 3"))
    assert project.asbx("apply", "-y").returncode == 1
    assert len(_project_images(project)) == 2
    listed = project.asbx("gc", "--dry-run", check=True).stdout
    assert f"superseded image: {first}" in listed
    assert len(_project_images(project)) == 2, "--dry-run removes nothing"
    assert "nothing removed" in project.asbx("gc", check=True).stdout  # no terminal, no -y
    project.asbx("gc", "-y", check=True)
    (left,) = _project_images(project)
    assert left != first


def test_destroy_workspaces_removes_workspaces_a_plain_destroy_left(project: Project) -> None:
    _write_project(project)
    project.asbx("apply", "-y", check=True)
    project.asbx("destroy", "-y", check=True)
    assert project.workspace("web").is_dir()
    assert project.workspace("worker").is_dir()
    plan = project.asbx("destroy", "-y", "--workspaces", check=True)
    assert "sandbox.web will be destroyed" in plan.stdout
    assert not project.workspace("web").exists()
    assert not project.workspace("worker").exists()
    assert "No changes" in project.asbx("destroy", "-y", "--workspaces", check=True).stdout


def test_gc_workspaces_removes_only_sandboxes_gone_from_spec_and_state(
    project: Project, tmp_path: Path
) -> None:
    _write_project(project)
    project.asbx("apply", "-y", check=True)
    # Another project in the same ASBX_HOME keeps everything it has.
    other = project.home / "projects" / "someone-else" / "sandboxes" / "web" / "workspace"
    other.mkdir(parents=True)
    project.write(SPEC.split("  worker:")[0])  # worker leaves the spec
    project.asbx("apply", "-y", check=True)  # its container goes, its workspace stays
    assert project.workspace("worker").is_dir()
    project.asbx("gc", "-y", check=True)  # without --workspaces: data is kept
    assert project.workspace("worker").is_dir()
    listed = project.asbx("gc", "--dry-run", "--workspaces", check=True).stdout
    assert "stray workspace: sandbox worker" in listed
    assert "sandbox web" not in listed
    project.asbx("gc", "-y", "--workspaces", check=True)
    assert not project.workspace("worker").parent.exists()
    assert project.workspace("web").is_dir()
    assert other.is_dir()
    assert project.containers() == {f"{project.name}-web": "running"}


def test_gc_keeps_superseded_images_in_use_and_images_built_from_them(
    project: Project, tmp_path: Path
) -> None:
    _write_project(project)
    project.asbx("apply", "-y", check=True)
    (first,) = _project_images(project)
    # Someone runs the old image outside asbx, and builds their own image FROM it (which
    # inherits its dev.asbx.* labels).
    label = f"dev.asbx.project={project.name}"  # so the fixture's cleanup removes it
    runner = project.podman(
        "run", "-d", "--label", label, "--network", "none", first, "sleep", "600"
    )
    assert runner.returncode == 0, runner.stderr
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "Dockerfile").write_text(f"FROM {first}\nRUN echo mine > /mine\n")
    own = f"localhost/{project.name}-own:1"
    built = project.podman("build", "-q", "-t", own, str(tmp_path / "own"))
    assert built.returncode == 0, built.stderr

    _write_project(project, DOCKERFILE + "RUN echo 2 > /version\n")
    applied = project.asbx("apply", "-y", check=True)
    assert "removed superseded image" not in applied.stdout
    listed = project.asbx("gc", "--dry-run", check=True).stdout
    assert f"superseded image: {first}" not in listed, "a container runs it"
    assert own not in listed
    project.asbx("gc", "-y", check=True)
    assert first in _project_images(project)
    assert own in _project_images(project)

    project.podman("rm", "-f", "-t", "0", runner.stdout.strip())
    project.asbx("gc", "-y", check=True)  # no container uses it now; the child keeps its parent
    assert own in _project_images(project)
    assert project.podman("image", "exists", own).returncode == 0
