"""Plan and apply against real podman: convergence, drift, failures, locking, crashes, destroy."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
images:
  base:
    ref: localhost/asbx/busybox:latest
volumes:
  cache: {}
sandboxes:
  web:
    image: base
    memory: 256M
    volumes: ["cache:/cache"]
    setup:
      - echo built > /workspace/built.txt
  worker:
    image: base
    depends_on: [web]
  solo:
    image: base
"""


def test_apply_converges_and_second_apply_changes_nothing(project: Project) -> None:
    project.write(SPEC)
    first = project.asbx("apply", "-y", check=True)
    assert "Apply complete: 4 added" in first.stderr + first.stdout
    assert project.containers() == {
        f"{project.name}-web": "running",
        f"{project.name}-worker": "running",
        f"{project.name}-solo": "running",
    }
    assert (project.workspace("web") / "built.txt").read_text() == "built\n"
    second = project.asbx("-vv", "apply", "-y", check=True)
    assert "No changes." in second.stdout
    commands = [line for line in second.stderr.splitlines() if line.startswith("$ ")]
    assert len(commands) <= 4, commands
    assert all(any(verb in c for verb in (" ps ", " images ", " volume ls ")) for c in commands)
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0


def test_a_wrongly_guessed_project_name_is_dropped_and_the_real_one_locked_and_listed(
    project: Project,
) -> None:
    # `"name":` is not read by the early guess (it guesses the directory's name), so apply
    # locks and lists the guessed project first, finds out, and starts again: still 3 listings.
    project.write(SPEC.replace("name: NAME", '"name": NAME'))
    project.asbx("apply", "-y", check=True)
    assert len(project.containers()) == 3
    second = project.asbx("-vv", "apply", "-y", check=True)
    assert "No changes." in second.stdout
    commands = [line for line in second.stderr.splitlines() if line.startswith("$ ")]
    listed = [c for c in commands if f"label=dev.asbx.project={project.name} " in c]
    assert len(listed) == 2, commands  # ps and volume ls, once each
    assert any("label=dev.asbx.project=" in c and project.name not in c for c in commands)


def test_plan_reports_replacement_and_out_of_band_deletion(project: Project) -> None:
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    project.write(SPEC.replace("memory: 256M", "memory: 512M"))
    changed = project.asbx("plan", "--detailed-exitcode")
    assert changed.returncode == 2
    assert "-/+ sandbox.web" in changed.stdout
    assert '~ memory: "256M" -> "512M"   # forces replacement' in changed.stdout
    project.write(SPEC)
    project.podman("rm", "-f", "-t", "0", f"{project.name}-solo")
    missing = project.asbx("plan", "--detailed-exitcode", "--json")
    assert missing.returncode == 2
    change = next(
        c for c in json.loads(missing.stdout)["changes"] if c["address"] == "sandbox.solo"
    )
    assert (change["symbol"], change["reason_text"]) == ("+", "missing in runtime")


def test_destroy_removes_containers_and_keeps_volumes_and_workspaces(project: Project) -> None:
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    project.podman("exec", f"{project.name}-web", "sh", "-c", "echo keep > /cache/data")
    destroyed = project.asbx("destroy", "-y", check=True)
    assert "note: volume.cache: kept with its data (destroy --volumes deletes it)" in (
        destroyed.stdout)
    assert project.containers() == {}
    assert project.volumes() == [f"{project.name}-cache"]
    assert (project.workspace("web") / "built.txt").exists()
    project.asbx("apply", "-y", check=True)
    kept = project.podman("exec", f"{project.name}-web", "cat", "/cache/data")
    assert kept.stdout == "keep\n"
    project.asbx("destroy", "-y", "--volumes", "--workspaces", check=True)
    assert project.volumes() == []
    assert not project.workspace("web").exists()


def test_failing_setup_skips_dependents_and_rerun_converges(project: Project) -> None:
    broken = SPEC.replace("echo built > /workspace/built.txt", "sh -c 'echo about to fail; exit 7'")
    project.write(broken)
    result = project.asbx("apply", "-y")
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "exited 7" in output
    assert "about to fail" in output
    assert "sandbox.worker: skipped (upstream failed)" in output
    assert f"{project.name}-solo" in project.containers()
    assert f"{project.name}-worker" not in project.containers()
    state = project.asbx("state", "list", check=True)
    assert "sandbox.web (tainted)" in state.stdout
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    assert len(project.containers()) == 3


def test_concurrent_applies_one_runs_one_gets_the_lock_message(project: Project) -> None:
    project.write(SPEC.replace("echo built > /workspace/built.txt", "sleep 3"))
    first = project.popen("apply", "-y")
    deadline = time.monotonic() + 60
    while f"{project.name}-web" not in project.containers():  # it holds the lock by now
        assert time.monotonic() < deadline
        assert first.poll() is None
        time.sleep(0.1)
    second = project.asbx("apply", "-y")
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 1
    assert f"project {project.name} is locked by pid {first.pid}" in second.stderr
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    assert len(project.containers()) == 3


def test_kill_9_midway_then_apply_converges_without_duplicates(project: Project) -> None:
    project.write(SPEC.replace("echo built > /workspace/built.txt", "sleep 4"))
    victim = project.popen("apply", "-y", "--parallelism", "1")
    deadline = time.monotonic() + 60
    while f"{project.name}-web" not in project.containers():  # web's 4 s setup has begun
        assert time.monotonic() < deadline
        assert victim.poll() is None
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    between = json.loads(project.asbx("state", "show", "sandbox.web", check=True).stdout)
    assert (between["status"], between["outputs"]["setup"]) == ("tainted", "pending")
    project.asbx("apply", "-y", check=True)
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    names = project.containers()
    assert sorted(names) == sorted(f"{project.name}-{n}" for n in ("web", "worker", "solo"))
    assert set(names.values()) == {"running"}
    web = json.loads(project.asbx("state", "show", "sandbox.web", check=True).stdout)
    assert (web["status"], web["outputs"]["setup"]) == ("ok", "done")  # ran, not adopted


def test_state_lost_adopts_running_sandboxes(project: Project) -> None:
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    ids = project.podman("ps", "-q", "--filter", f"label=dev.asbx.project={project.name}").stdout
    (project.home / "state.db").unlink()
    for extra in ("state.db-wal", "state.db-shm"):
        (project.home / extra).unlink(missing_ok=True)
    plan = project.asbx("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout
    assert "will be adopted (found in runtime, not in state)" in plan.stdout
    project.asbx("apply", "-y", check=True)
    after = project.podman("ps", "-q", "--filter", f"label=dev.asbx.project={project.name}").stdout
    assert sorted(after.split()) == sorted(ids.split())


def test_saved_plan_applies_once_and_is_refused_when_stale(project: Project) -> None:
    project.write(SPEC)
    saved = project.root / "plan.json"
    project.asbx("plan", "-o", str(saved), check=True)
    assert json.loads(saved.read_text())["summary"]["add"] == 4
    project.asbx("apply", str(saved), check=True)
    assert len(project.containers()) == 3
    again = project.asbx("apply", str(saved))
    assert again.returncode == 1
    assert "plan is stale: since it was made, the state changed (serial" in again.stderr

    project.asbx("plan", "-o", str(saved), check=True)
    project.write(SPEC.replace("memory: 256M", "memory: 300M"))
    edited = project.asbx("apply", str(saved))
    assert edited.returncode == 1
    assert "plan is stale: since it was made, sandboxes.yaml" in edited.stderr
    assert "runtime" not in edited.stderr


def test_apply_without_a_terminal_needs_yes(project: Project) -> None:
    project.write(SPEC)
    result = project.asbx("apply")
    assert result.returncode == 1
    assert "no terminal to ask on" in result.stderr
    assert project.containers() == {}


def test_ctrl_c_lets_the_running_step_finish_starts_nothing_new_and_exits_130(
    project: Project,
) -> None:
    project.write(SPEC.replace("echo built > /workspace/built.txt",
                               "sleep 3 && echo built > /workspace/built.txt"))
    victim = project.popen("apply", "-y", "--parallelism", "1")
    deadline = time.monotonic() + 60
    while f"{project.name}-web" not in project.containers():  # web's setup is starting
        assert time.monotonic() < deadline
        assert victim.poll() is None
        time.sleep(0.1)
    os.kill(victim.pid, signal.SIGINT)
    _out, err = victim.communicate(timeout=60)
    assert victim.returncode == 130, err
    assert "Interrupted: finishing running steps" in err
    assert (project.workspace("web") / "built.txt").read_text() == "built\n"
    web = json.loads(project.asbx("state", "show", "sandbox.web", check=True).stdout)
    assert (web["status"], web["outputs"]["setup"]) == ("ok", "done")
    assert sorted(project.containers()) == [f"{project.name}-web"]  # nothing new was started
    project.asbx("apply", "-y", check=True)
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    assert len(project.containers()) == 3
