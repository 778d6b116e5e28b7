"""Reproducible images on real podman: context digests, FROM chains, build args, lock pinning."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

BUILD_SPEC = """
version: 1
name: NAME
images:
  base:
    build:
      context: ./base
      args: {FLAVOUR: vanilla}
  app:
    build: {context: ./app}
sandboxes:
  web:
    image: app
"""


def write_contexts(root: Path) -> None:
    (root / "base").mkdir()
    (root / "base" / "Dockerfile").write_text(
        "FROM localhost/asbx/busybox:latest\nARG FLAVOUR\n"
        "RUN echo $FLAVOUR > /flavour\nCOPY base.txt /base.txt\n"
    )
    (root / "base" / "base.txt").write_text("base v1\n")
    (root / "app").mkdir()
    # FROM through a global ARG; the literal `FROM base` form comes later in the test
    (root / "app" / "Dockerfile").write_text("ARG BASE=base\nFROM $BASE\nCOPY app.txt /app.txt\n")
    (root / "app" / "app.txt").write_text("app v1\n")
    (root / "app" / "notes.log").write_text("ignored\n")
    (root / "app" / ".dockerignore").write_text("*.log\n")


def changes(project: Project) -> dict[str, tuple[str, str]]:
    plan = json.loads(project.asbx("plan", "--json", check=True).stdout)
    return {
        c["address"]: (c["action"], c["detail"] or c["reason"])
        for c in plan["changes"]
        if c["action"] != "noop"
    }


def test_builds_follow_the_context_and_the_from_chain(project: Project) -> None:
    write_contexts(project.root)
    project.write(BUILD_SPEC)
    project.asbx("apply", "-y", check=True)
    web = f"{project.name}-web"
    assert (
        project.podman("exec", web, "cat", "/app.txt", "/base.txt", "/flavour").stdout
        == "app v1\nbase v1\nvanilla\n"
    )
    assert changes(project) == {}

    (project.root / "app" / "notes.log").write_text("still ignored, edited\n")
    assert changes(project) == {}, "a .dockerignore'd file never triggers a rebuild"

    (project.root / "app" / "app.txt").write_text("app v2\n")
    planned = changes(project)
    assert planned["image.app"][0] == "create"
    assert "app.txt" in planned["image.app"][1]
    assert planned["sandbox.web"][0] == "replace"
    assert "image.base" not in planned
    project.asbx("apply", "-y", check=True)
    assert project.podman("exec", web, "cat", "/app.txt").stdout == "app v2\n"

    (project.root / "base" / "base.txt").write_text("base v2\n")
    planned = changes(project)
    assert {"image.base", "image.app", "sandbox.web"} <= set(planned)
    project.asbx("apply", "-y", check=True)
    assert project.podman("exec", web, "cat", "/base.txt").stdout == "base v2\n"

    project.write(BUILD_SPEC.replace("vanilla", "chocolate"))
    planned = changes(project)
    assert planned["image.base"] == ("create", "build arg FLAVOUR changed")
    project.asbx("apply", "-y", check=True)
    assert project.podman("exec", web, "cat", "/flavour").stdout == "chocolate\n"

    (project.root / "app" / "Dockerfile").write_text("FROM base\nCOPY app.txt /app2.txt\n")
    assert changes(project)["image.app"] == ("create", "Dockerfile changed")
    project.asbx("apply", "-y", check=True)
    assert changes(project) == {}


def push(project: Project, source: str, target: str) -> str:
    """Push `source` to `target` in the registry; return the pushed manifest digest."""
    digest_file = project.root / f"digest-{uuid.uuid4().hex[:6]}"
    result = project.podman(
        "push", "--tls-verify=false", "--digestfile", str(digest_file), source, target
    )
    assert result.returncode == 0, result.stderr
    return digest_file.read_text().strip()


@pytest.fixture
def untag_after(project: Project) -> Iterator[list[str]]:
    """Names a test gives images it does not own (a pull tags the shared base image with the
    pulled ref): untagged afterwards, the images themselves kept."""
    names: list[str] = []
    yield names
    for name in names:
        project.podman("untag", name, name)


def test_lock_pins_digests_until_relocked(
    project: Project, registry: str, tmp_path: Path, untag_after: list[str]
) -> None:
    ref = f"{registry}/asbx-it/{project.name}:v1"
    untag_after.append(ref)
    first = push(project, "localhost/asbx/busybox:latest", ref)
    project.write(f"version: 1\nname: NAME\nsandboxes:\n  web:\n    image: {ref}\n")
    project.asbx("lock", check=True)
    lock = json.loads((project.root / "sandboxes.lock").read_text())
    (entry,) = lock["images"].values()
    assert entry == {"ref": ref, "digest": first}
    assert project.asbx("lock", "--check").returncode == 0

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        "FROM localhost/asbx/busybox:latest\nRUN echo second > /marker\n"
    )
    tag = f"localhost/asbx-it/{project.name}-second:latest"
    built = project.podman("build", "-q", "-t", tag, str(tmp_path / "ctx"))
    assert built.returncode == 0, built.stderr
    second = push(project, tag, ref)
    assert second != first
    # As if someone else pushed it: no local copy, so the next pull fetches it from the registry.
    image_id = project.podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    project.podman("rmi", "-f", image_id)

    project.asbx("apply", "-y", "--locked", check=True)
    marker = project.podman("exec", f"{project.name}-web", "cat", "/marker")
    assert marker.returncode != 0, "apply --locked must use the pinned (first) image"
    check = project.asbx("lock", "--check")
    assert check.returncode == 1
    assert "now resolves to" in check.stderr

    project.asbx("lock", check=True)
    assert second in (project.root / "sandboxes.lock").read_text()
    plan = project.asbx("plan", "--json", check=True)
    web = next(c for c in json.loads(plan.stdout)["changes"] if c["address"] == "sandbox.web")
    assert web["action"] == "replace"
    project.asbx("apply", "-y", "--locked", check=True)
    assert project.podman("exec", f"{project.name}-web", "cat", "/marker").stdout == "second\n"


def test_apply_locked_without_a_lock_fails_clearly(project: Project) -> None:
    project.write(
        "version: 1\nname: NAME\nsandboxes:\n  web:\n    image: localhost/asbx/busybox:latest\n"
    )
    result = project.asbx("apply", "-y", "--locked")
    assert result.returncode == 1
    assert "--locked needs sandboxes.lock beside the spec" in result.stderr


def test_apply_pull_fetches_a_moved_tag_and_replaces_the_sandboxes_on_it(
    project: Project, registry: str, tmp_path: Path
) -> None:
    ref = f"{registry}/asbx-it/{project.name}-pull:v1"
    push(project, "localhost/asbx/busybox:latest", ref)
    project.write(f"version: 1\nname: NAME\nsandboxes:\n  web:\n    image: {ref}\n")
    project.asbx("apply", "-y", check=True)
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        "FROM localhost/asbx/busybox:latest\nRUN echo moved > /marker\n"
    )
    tag = f"localhost/asbx-it/{project.name}-moved:latest"
    assert project.podman("build", "-q", "-t", tag, str(tmp_path / "ctx")).returncode == 0
    push(project, tag, ref)
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0, "a moved tag is not drift"

    pulled = project.asbx("apply", "-y", "--pull", check=True)
    output = pulled.stdout + pulled.stderr
    assert "Pulling 1 image(s) first (--pull)" in output
    assert "runs an older image than image." in output  # in the plan, shown after the pull
    assert "Apply complete: 0 added, 0 changed, 1 replaced" in output
    assert project.podman("exec", f"{project.name}-web", "cat", "/marker").stdout == "moved\n"
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    again = project.asbx("apply", "-y", "--pull", check=True)  # the tag did not move since
    assert "0 replaced" in again.stdout + again.stderr or "No changes" in again.stdout


def test_lock_check_plan_is_a_fixed_point_with_the_spec_directory_as_context(
    project: Project,
) -> None:
    """The lock is written into a context of `.`; it must not count toward that context."""
    (project.root / "Dockerfile").write_text(
        "FROM localhost/asbx/busybox:latest\nCOPY app.txt /app.txt\n"
    )
    (project.root / "app.txt").write_text("app\n")
    project.write(
        "version: 1\nname: NAME\nimages:\n  app:\n    build: {context: .}\n"
        "sandboxes:\n  web:\n    image: app\n"
    )
    project.asbx("apply", "-y", check=True)
    project.asbx("lock", check=True)
    check = project.asbx("lock", "--check")
    assert check.returncode == 0, check.stderr
    assert changes(project) == {}
    project.asbx("lock", check=True)
    assert project.asbx("lock", "--check").returncode == 0
    assert changes(project) == {}
    project.asbx("apply", "-y", "--locked", check=True)

    (project.root / "app.txt").write_text("app v2\n")
    assert project.asbx("lock", "--check").returncode == 1, "a real context change still counts"


def test_a_locked_local_image_is_used_by_its_local_id_never_pulled(
    project: Project, tmp_path: Path
) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        "FROM localhost/asbx/busybox:latest\nRUN echo local > /marker\n"
    )
    tag = f"localhost/asbx-it/{project.name}-local:latest"
    label = f"dev.asbx.project={project.name}"  # so the fixture removes it afterwards
    built = project.podman("build", "-q", "--label", label, "-t", tag, str(tmp_path / "ctx"))
    assert built.returncode == 0, built.stderr
    project.write(f"version: 1\nname: NAME\nsandboxes:\n  web:\n    image: {tag}\n")
    project.asbx("apply", "-y", check=True)

    locked = project.asbx("lock", check=True)
    assert "local image that no registry serves" in locked.stderr
    assert project.asbx("lock", "--check").returncode == 0
    planned = changes(project)
    (image,) = (address for address in planned if address.startswith("image."))
    assert planned[image][0] == "create"
    assert "will be taken from this machine's images" in project.asbx("plan").stdout
    applied = project.asbx("apply", "-y", "--locked")
    assert applied.returncode == 0, applied.stderr
    assert "pull" not in applied.stderr.lower()
    web = f"{project.name}-web"
    assert project.podman("exec", web, "cat", "/marker").stdout == "local\n"
    assert changes(project) == {}

    lock_file = project.root / "sandboxes.lock"
    lock = json.loads(lock_file.read_text())
    lock["images"][image.removeprefix("image.")]["digest"] = "sha256:" + "1" * 64
    lock_file.write_text(json.dumps(lock))
    failed = project.asbx("apply", "-y", "--locked")
    assert failed.returncode == 1
    assert "no image on this machine has it" in failed.stderr
    assert "unreachable" not in failed.stderr, "a locked local image is never pulled"


def test_a_saved_plan_refused_after_a_context_edit_names_the_file(project: Project) -> None:
    write_contexts(project.root)
    project.write(BUILD_SPEC)
    project.asbx("apply", "-y", check=True)
    saved = project.root / "plan.json"
    (project.root / "app" / "app.txt").write_text("app v2\n")
    project.asbx("plan", "-o", str(saved), check=True)
    (project.root / "app" / "app.txt").write_text("app v3\n")
    refused = project.asbx("apply", str(saved))
    assert refused.returncode == 1
    assert "plan is stale" in refused.stderr
    assert "the build context of image.app changed: 1 file changed (app.txt)" in refused.stderr
    assert "runtime" not in refused.stderr

    project.asbx("plan", "-o", str(saved), check=True)
    project.asbx("lock", check=True)
    refused = project.asbx("apply", str(saved))
    assert refused.returncode == 1
    assert "sandboxes.lock was created" in refused.stderr

    project.asbx("apply", "-y", check=True)
    project.asbx("plan", "-o", str(saved), check=True)
    project.podman("rm", "-f", "-t", "0", f"{project.name}-web")
    refused = project.asbx("apply", str(saved))
    assert refused.returncode == 1
    assert "the runtime changed" in refused.stderr
    project.asbx("plan", "-o", str(saved), check=True)
    project.asbx("apply", str(saved), check=True)
    assert project.podman("exec", f"{project.name}-web", "cat", "/app.txt").stdout == "app v3\n"
