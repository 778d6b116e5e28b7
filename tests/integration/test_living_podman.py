"""Living with sandboxes on real podman: exec, shell, logs, start/stop, reap, status, graph."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pexpect
import pytest

from tests.integration.conftest import BASE_IMAGE, Project

pytestmark = pytest.mark.integration

ONE_BOX = f"""
version: 1
name: NAME
sandboxes:
  box:
    image: {BASE_IMAGE}
    env: {{ FROM_SPEC: spec-value }}
"""


def asbx(project: Project, *args: str, stdin: str = "", timeout: float = 180
         ) -> subprocess.CompletedProcess[str]:
    """Run the CLI with `stdin` as its standard input (never the test runner's own)."""
    return project.asbx(*args, timeout=timeout, stdin=stdin)


def applied(project: Project, spec: str) -> None:
    project.write(spec)
    project.asbx("apply", "-y", check=True)


def container_state(project: Project, sandbox: str) -> str | None:
    return project.containers().get(f"{project.name}-{sandbox}")


@pytest.fixture
def box(project: Project) -> Project:
    applied(project, ONE_BOX)
    return project


# -- exec


def _commands(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    return [line.split()[1:] for line in result.stderr.splitlines() if line.startswith("$ ")]


def test_exec_on_a_running_sandbox_is_one_runtime_call_by_container_id(box: Project) -> None:
    container_id = box.podman("inspect", "--format", "{{.Id}}",
                              f"{box.name}-box").stdout.strip()
    result = asbx(box, "-vv", "exec", "box", "--", "true")
    assert result.returncode == 0, result.stderr
    commands = _commands(result)
    assert len(commands) == 1, result.stderr
    assert commands[0][:2] == ["podman", "exec"]
    assert container_id in commands[0]  # the container apply made, by id


def test_exec_never_enters_a_same_named_container_asbx_did_not_make(box: Project) -> None:
    name = f"{box.name}-box"
    box.podman("rm", "-f", "-t", "0", name)
    made = box.podman("run", "-d", "--name", name, BASE_IMAGE, "sleep", "3600")
    assert made.returncode == 0, made.stderr
    try:
        result = asbx(box, "exec", "box", "--", "sh", "-c", "echo entered > /entered")
        assert result.returncode == 1
        assert "sandbox.box has not been created" in result.stderr
        assert box.podman("exec", name, "cat", "/entered").returncode != 0  # never ran there
    finally:
        box.podman("rm", "-f", "-t", "0", name)


def test_a_command_printing_the_runtimes_refusal_is_not_run_twice(box: Project) -> None:
    """exec reads a refusal (not running, not found) from stderr, where the command writes
    too: a command that prints one and exits 255 has run, and must not run again."""
    script = ("echo ran >> /workspace/runs; echo 'Error: can only create exec sessions on "
              "running containers: container state improper' >&2; exit 255")
    result = asbx(box, "exec", "box", "--", "sh", "-c", script)
    assert result.returncode != 0
    assert (box.workspace("box") / "runs").read_text() == "ran\n"


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exec_returns_the_command_exit_code(box: Project, code: int) -> None:
    result = asbx(box, "exec", "box", "--", "sh", "-c", f"echo out; echo err >&2; exit {code}")
    assert result.returncode == code
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_exec_timeout_kills_the_command_and_exits_124(box: Project) -> None:
    started = time.monotonic()
    result = asbx(box, "exec", "--timeout", "1", "box", "--", "sh", "-c", "echo begun; sleep 30")
    assert result.returncode == 124
    assert time.monotonic() - started < 20
    assert "begun" in result.stdout
    assert "ran past --timeout 1s and was killed" in result.stderr
    left = asbx(box, "exec", "box", "--", "ps")
    assert "sleep 30" not in left.stdout  # killed inside the sandbox, not only the client


def test_exec_passes_env_workdir_and_keeps_the_spec_env(box: Project) -> None:
    result = asbx(box, "exec", "--env", "GREETING=hi there", "-w", "/bin", "box",
                  "sh", "-c", 'echo "$GREETING|$FROM_SPEC|$(pwd)"')
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi there|spec-value|/bin\n"


def test_exec_passes_stdin_through(box: Project) -> None:
    text = "line one\nline two\n" * 1000
    result = asbx(box, "exec", "box", "--", "wc", "-l", stdin=text)
    assert result.stdout.strip() == "2000"
    echoed = asbx(box, "exec", "box", "--", "cat", stdin="héllo\n")
    assert echoed.stdout == "héllo\n"


def test_exec_streams_stdin_and_does_not_wait_for_input_it_never_reads(box: Project) -> None:
    size = 64 * 1024 * 1024
    with subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE) as src:
        counted = subprocess.run(
            [sys.executable, "-m", "asbx", "exec", "box", "--", "wc", "-c"], cwd=box.root,
            env=box.env, stdin=src.stdout, capture_output=True, text=True, timeout=120,
            check=False)
    assert counted.stdout.strip() == str(size), counted.stderr
    # stdin is a pipe nobody ever writes to or closes: the command ignores it and asbx returns
    read_end, write_end = os.pipe()
    try:
        quick = subprocess.run(
            [sys.executable, "-m", "asbx", "exec", "box", "--", "echo", "done"], cwd=box.root,
            env=box.env, stdin=read_end, capture_output=True, text=True, timeout=30, check=False)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert (quick.returncode, quick.stdout) == (0, "done\n"), quick.stderr


def test_exec_starts_a_stopped_sandbox_first(box: Project) -> None:
    assert asbx(box, "stop", "box").returncode == 0
    assert container_state(box, "box") == "exited"
    result = asbx(box, "exec", "box", "--", "echo", "awake")
    assert result.returncode == 0
    assert result.stdout == "awake\n"
    assert "sandbox.box is stopped; starting it" in result.stderr
    assert container_state(box, "box") == "running"


def test_exec_on_unknown_or_uncreated_sandboxes_says_what_to_do(project: Project) -> None:
    project.write(ONE_BOX)
    unknown = asbx(project, "exec", "bx", "--", "true")
    assert unknown.returncode == 1
    assert "no sandbox 'bx'" in unknown.stderr
    assert 'did you mean "box"?' in unknown.stderr
    uncreated = asbx(project, "exec", "box", "--", "true")
    assert uncreated.returncode == 1
    assert "sandbox.box has not been created" in uncreated.stderr
    assert "asbx apply" in uncreated.stderr


def test_exec_detach_returns_at_once_and_the_command_runs_on(box: Project) -> None:
    result = asbx(box, "exec", "-d", "box", "--", "sh", "-c", "sleep 1; echo finished")
    assert result.returncode == 0, result.stderr
    pid = result.stdout.strip()
    assert pid.isdigit()
    log = result.stderr.split("goes to ")[1].split(" ")[0]
    deadline = time.monotonic() + 20
    while (out := asbx(box, "exec", "box", "--", "cat", log).stdout) != "finished\n":
        assert time.monotonic() < deadline, out
        time.sleep(0.3)


# -- shell, logs, start/stop


def test_shell_under_a_pseudo_terminal(box: Project) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "asbx", "shell", "box"], cwd=str(box.root),
                          env={**box.env, "TERM": "dumb"}, encoding="utf-8", timeout=60)
    try:
        child.expect(r"[#$] ")
        child.sendline("echo $((6*7))")
        child.expect(r"\r\n42\r\n")
        child.sendline("exit 7")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 7


def test_shell_without_a_terminal_points_at_exec(box: Project) -> None:
    result = asbx(box, "shell", "box")
    assert result.returncode == 1
    assert "needs a terminal" in result.stderr


def test_logs_print_the_main_process_output(project: Project) -> None:
    applied(project, ONE_BOX + "    command: \"for i in 1 2 3; do echo line-$$i; done; "
                              "exec tail -f /dev/null\"\n")
    deadline = time.monotonic() + 20
    while True:
        result = asbx(project, "logs", "box", "--tail", "2")
        if "line-3" in result.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert result.returncode == 0
    assert result.stdout.split() == ["line-2", "line-3"]


def test_logs_follow_streams_new_output_until_interrupted(project: Project) -> None:
    applied(project, ONE_BOX + "    command: \"i=0; while true; do echo tick-$$i; i=$$((i+1)); "
                              "sleep 0.2; done\"\n")
    # its own process group, which gets the SIGINT as a terminal's ^C reaches its foreground job
    follower = subprocess.Popen([sys.executable, "-m", "asbx", "logs", "-f", "box"],
                                cwd=project.root, env=project.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert follower.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    try:
        while len(seen) < 8 and time.monotonic() < deadline:
            line = follower.stdout.readline()
            assert line, "logs -f ended by itself"
            seen.append(line.strip())
    finally:
        os.killpg(follower.pid, signal.SIGINT)
        _rest, err = follower.communicate(timeout=30)
    numbers = [int(line.removeprefix("tick-")) for line in seen]
    assert numbers == list(range(numbers[0], numbers[0] + 8)), seen  # in order, none lost
    assert follower.returncode == 0, err  # ^C is how one stops following (podman says 1)


def test_start_and_stop_all_or_named_sandboxes(project: Project) -> None:
    applied(project, ONE_BOX + f"  other:\n    image: {BASE_IMAGE}\n")
    stopped = asbx(project, "stop")
    assert stopped.returncode == 0
    assert set(stopped.stdout.splitlines()) == {"sandbox.box: stopped", "sandbox.other: stopped"}
    assert set(project.containers().values()) == {"exited"}
    assert asbx(project, "stop", "box").stdout == "sandbox.box: already stopped\n"
    assert asbx(project, "start", "other").stdout == "sandbox.other: started\n"
    assert container_state(project, "other") == "running"
    assert container_state(project, "box") == "exited"
    assert asbx(project, "start").returncode == 0
    assert set(project.containers().values()) == {"running"}


# -- lifecycle and reap

LIFECYCLE = f"""
version: 1
name: NAME
sandboxes:
  idle:
    image: {BASE_IMAGE}
    lifecycle: {{ idle_timeout: 2s }}
  busy:
    image: {BASE_IMAGE}
    lifecycle: {{ idle_timeout: 2s }}
  doomed:
    image: {BASE_IMAGE}
    lifecycle: {{ max_lifetime: 2s, delete_workspace: true }}
  snapped:
    image: {BASE_IMAGE}
    lifecycle: {{ max_lifetime: 2s }}
  precious:
    image: {BASE_IMAGE}
    lifecycle: {{ max_lifetime: 2s }}
  forever:
    image: {BASE_IMAGE}
snapshots:
  snap: {{ sandbox: snapped }}
"""


def plan_changes(project: Project) -> dict[str, tuple[str, str]]:
    result = project.asbx("plan", "--json", check=True)
    return {c["address"]: (c["action"], c["reason"]) for c in json.loads(result.stdout)["changes"]
            if c["action"] != "noop"}


def test_reap_enforces_timers_and_plan_shows_it_as_drift(project: Project) -> None:
    applied(project, LIFECYCLE)
    (project.workspace("precious") / "work.txt").write_text("unsaved work")
    (project.workspace("doomed") / "scratch.txt").write_text("throwaway")
    running = asbx(project, "exec", "-d", "busy", "--", "sleep", "30")
    assert running.returncode == 0, running.stderr
    time.sleep(3)
    before = project.containers()

    dry = asbx(project, "reap", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert project.containers() == before
    assert "sandbox.idle: would stop (idle for" in dry.stdout
    assert "sandbox.doomed: would delete" in dry.stdout
    assert "sandbox.snapped: would delete" in dry.stdout
    assert "sandbox.precious: would stop" in dry.stdout
    assert "sandbox.busy: busy" in dry.stdout
    assert "forever" not in dry.stdout
    assert plan_changes(project) == {
        "sandbox.doomed": ("replace", "expired"),
        "sandbox.snapped": ("replace", "expired"),
        "snapshot.snap": ("create", "dependency_replaced"),
        "sandbox.precious": ("replace", "expired"),
    }

    reaped = asbx(project, "reap")
    assert reaped.returncode == 0, reaped.stderr
    assert "sandbox.idle: stopped" in reaped.stdout
    assert "sandbox.doomed: deleted" in reaped.stdout
    assert "snapshot.snap" in reaped.stdout  # why deleting snapped's workspace is safe
    assert "stopped instead of deleted" in reaped.stdout  # precious
    after = project.containers()
    name = project.name
    assert after[f"{name}-idle"] == "exited"
    assert after[f"{name}-busy"] == "running"
    assert f"{name}-doomed" not in after
    assert f"{name}-snapped" not in after
    assert after[f"{name}-precious"] == "exited"
    assert after[f"{name}-forever"] == "running"
    assert not project.workspace("doomed").exists()
    assert (project.workspace("precious") / "work.txt").read_text() == "unsaved work"

    assert plan_changes(project) == {
        "sandbox.idle": ("start", "stopped"),
        "sandbox.doomed": ("create", "reaped"),
        "sandbox.snapped": ("create", "reaped"),
        "snapshot.snap": ("create", "dependency_replaced"),
        "sandbox.precious": ("replace", "expired"),
    }
    again = asbx(project, "reap")
    assert again.stdout.strip().splitlines()[-1] == "reap: nothing to do"


def test_reap_skips_a_project_whose_spec_is_gone(project: Project) -> None:
    applied(project, LIFECYCLE.replace("idle_timeout: 2s", "idle_timeout: 1h"))
    (project.root / "sandboxes.yaml").rename(project.root / "moved.yaml")
    result = asbx(project, "reap")
    assert result.returncode == 0
    assert f"{project.name}: skipped (its spec" in result.stdout
    assert "is gone" in result.stdout


# -- status and graph


def test_status_is_one_listing_per_kind_at_50_sandboxes(project: Project) -> None:
    boxes = "".join(f"  box{i:02d}:\n    image: {BASE_IMAGE}\n"
                    f"    lifecycle: {{ idle_timeout: 30m }}\n" for i in range(50))
    project.write(f"version: 1\nname: NAME\nsandboxes:\n{boxes}")
    project.asbx("apply", "-y", "--parallelism", "8", check=True, timeout=600)
    started = time.monotonic()
    result = asbx(project, "-vv", "status", "--json")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stderr.splitlines() if line.startswith("$ ")]
    assert len(commands) == 3, commands
    assert sorted(c.split()[2] for c in commands) == ["images", "ps", "volume"]
    data = json.loads(result.stdout)
    sandboxes = [r for r in data["resources"] if r["kind"] == "sandbox"]
    assert len(sandboxes) == 50
    assert {r["state"] for r in sandboxes} == {"running"}
    assert all(r["idle_stop_at"] for r in sandboxes)
    print(f"\nstatus --json, 50 sandboxes: {len(commands)} runtime calls, {elapsed:.2f}s")
    table = asbx(project, "ps")
    assert table.returncode == 0
    assert sum(" running " in line for line in table.stdout.splitlines()) == 50


def test_status_shows_drift_missing_and_stopped(project: Project) -> None:
    applied(project, ONE_BOX + f"  other:\n    image: {BASE_IMAGE}\n")
    project.podman("rm", "-f", "-t", "0", f"{project.name}-other")
    project.podman("stop", "-t", "0", f"{project.name}-box")
    data = json.loads(asbx(project, "status", "--json").stdout)
    states = {r["address"]: r["state"] for r in data["resources"]}
    assert states["sandbox.box"] == "stopped"
    assert states["sandbox.other"] == "missing"
    assert next(iter(states.values())) == "present"  # the image


def test_graph_with_plan_colours_pending_changes(box: Project) -> None:
    box.write(ONE_BOX + f"  extra:\n    image: {BASE_IMAGE}\n")
    result = asbx(box, "graph", "--plan", "--format", "mermaid")
    assert result.returncode == 0, result.stderr
    assert '"+ sandbox.extra"' in result.stdout
    assert "act_create" in result.stdout
    dot = asbx(box, "graph")
    assert '"sandbox.box"' in dot.stdout
