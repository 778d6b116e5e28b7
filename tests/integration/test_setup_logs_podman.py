"""`asbx logs SANDBOX --setup` on real podman: the last setup run, per step, after apply."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
images:
  base:
    ref: localhost/asbx/busybox:latest
sandboxes:
  web:
    image: base
    setup:
      - echo first-step-says-hi
      - sh -c 'echo to-stderr >&2; echo done > /workspace/done.txt'
"""


def test_logs_setup_shows_each_step_after_a_successful_apply(project: Project) -> None:
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    shown = project.asbx("logs", "web", "--setup", check=True).stdout
    lines = shown.splitlines()
    assert lines[0].startswith("setup of web started ")
    assert "2 of 2 steps ran" in lines[0]
    # each step as the user wrote it in sandboxes.yaml, not the argv it ran as
    assert lines[1].startswith("step 1/2: echo first-step-says-hi  (ok, ")
    assert lines[2] == "  first-step-says-hi"
    assert lines[3].startswith(
        "step 2/2: sh -c 'echo to-stderr >&2; echo done > /workspace/done.txt'  (ok, ")
    assert "  to-stderr" in lines[4:]
    data = json.loads(project.asbx("logs", "web", "--setup", "--json", check=True).stdout)
    assert data["sandbox"] == "web"
    assert data["steps_total"] == 2
    container_id = project.podman("inspect", "--format", "{{.Id}}",
                                  f"{project.name}-web").stdout.strip()
    assert data["container_id"] == container_id
    first, second = data["steps"]
    assert first["command"] == ["/bin/sh", "-c", "echo first-step-says-hi"]
    assert first["exit_code"] == 0
    assert first["output"] == "first-step-says-hi\n"
    assert first["started_at"] <= first["finished_at"] <= second["started_at"]
    assert second["output"] == "to-stderr\n"
    assert second["truncated"] is False


def test_a_failed_setup_points_to_its_log_which_keeps_the_failing_step(project: Project) -> None:
    project.write(SPEC.replace("echo first-step-says-hi", "sh -c 'echo about to fail; exit 7'"))
    result = project.asbx("apply", "-y")
    assert result.returncode == 1
    assert "setup step 1 (sh -c 'echo about to fail; exit 7') exited 7" in result.stderr
    assert "asbx logs web --setup" in result.stdout + result.stderr
    data = json.loads(project.asbx("logs", "web", "--setup", "--json", check=True).stdout)
    assert [s["exit_code"] for s in data["steps"]] == [7]  # the second step never ran
    assert data["steps"][0]["output"] == "about to fail\n"
    shown = project.asbx("logs", "web", "--setup", check=True).stdout
    assert "1 of 2 steps ran" in shown
    assert "(FAILED, exit 7, " in shown


def test_logs_setup_without_a_run_says_so_and_json_needs_setup(project: Project) -> None:
    project.write(SPEC)
    missing = project.asbx("logs", "web", "--setup")
    assert missing.returncode != 0
    assert "sandbox.web has no setup run recorded" in missing.stderr
    json_alone = project.asbx("logs", "web", "--json")
    assert json_alone.returncode != 0
    assert "--json goes with --setup" in json_alone.stderr
