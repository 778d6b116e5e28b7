"""A change of only memory/cpus on real runtimes: docker (and podman 5.1+ on SQLite) set it in the
running container (same id, new limit in inspect, setup not run again); podman 4 replaces it and
the plan says why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.contract.backends import require
from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

MIB = 2**20
SPEC = """
version: 1
name: NAME
sandboxes:
  web:
    image: localhost/asbx/busybox:latest
    memory: 64M
    setup:
      - sh -c 'echo ran >> /workspace/setup-runs.txt'
"""


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def _inspect(tool: str, project: Project) -> dict[str, object]:
    run = project.podman if tool == "podman" else _docker
    result = run("inspect", f"{project.name}-web")
    assert result.returncode == 0, result.stderr
    item: dict[str, object] = json.loads(result.stdout)[0]
    return item


def _memory(item: dict[str, object]) -> object:
    host = item["HostConfig"]
    assert isinstance(host, dict)
    return host["Memory"]


def test_docker_sets_a_new_memory_limit_in_the_running_container(project: Project) -> None:
    if not os.environ.get("DOCKER_HOST") or shutil.which("docker") is None:
        require("no docker here (scripts/test starts one)")
    project.extra_env["ASBX_RUNTIME"] = "docker"
    try:
        project.write(SPEC)
        project.asbx("apply", "-y", check=True)
        before = _inspect("docker", project)
        project.write(SPEC.replace("64M", "128M"))
        plan = project.asbx("plan", check=True).stdout
        assert "sandbox.web will be updated in place" in plan
        assert "forces replacement" not in plan
        project.asbx("apply", "-y", check=True)
        after = _inspect("docker", project)
        assert after["Id"] == before["Id"]
        assert (_memory(before), _memory(after)) == (64 * MIB, 128 * MIB)
        runs = (project.workspace("web") / "setup-runs.txt").read_text()
        assert runs == "ran\n"  # setup did not run again
        assert project.asbx("plan", "--detailed-exitcode").returncode == 0
        status = project.asbx("status", check=True).stdout
        assert "drifted" not in status
        (project.home / "state.db").unlink()  # a lost database: adopted, not replaced
        adopt = project.asbx("plan", check=True).stdout
        assert "sandbox.web will be adopted" in adopt
        project.asbx("apply", "-y", check=True)
        assert _inspect("docker", project)["Id"] == before["Id"]
        assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    finally:
        project.asbx("destroy", "-y")
        ids = _docker("ps", "-aq", "--filter", f"label=dev.asbx.project={project.name}")
        if ids.stdout.split():
            _docker("rm", "-f", *ids.stdout.split())


def _podman_blocker() -> str:
    from asbx.runtime.command import SubprocessRunner
    from asbx.runtime.podman import PodmanRuntime

    return PodmanRuntime(SubprocessRunner()).probe_capabilities().limits_update_blocker


def test_podman_updates_in_place_where_it_keeps_the_change_else_replaces_and_says_why(
        project: Project) -> None:
    """podman 5.1+ on SQLite keeps an `update`: same container, new limit in inspect. Older
    podman (4.3 here) does not: the sandbox is replaced, and the plan names the version."""
    blocker = _podman_blocker()
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    before = _inspect("podman", project)
    project.write(SPEC.replace("64M", "128M"))
    plan = project.asbx("plan", check=True).stdout
    project.asbx("apply", "-y", check=True)
    after = _inspect("podman", project)
    assert _memory(after) == 128 * MIB
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    if blocker:
        assert "sandbox.web must be replaced" in plan
        version = project.podman("version", "--format", "{{.Client.Version}}").stdout.strip()
        assert f"cpus/memory are not changed in place: `podman update` on podman {version}" \
            in plan or "SQLite" in plan
        assert after["Id"] != before["Id"]
        return
    assert "sandbox.web will be updated in place" in plan
    assert after["Id"] == before["Id"]
    assert (project.workspace("web") / "setup-runs.txt").read_text() == "ran\n"
