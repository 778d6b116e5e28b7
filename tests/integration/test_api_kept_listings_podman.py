"""The API server keeps its listings between requests (runtime/cached.py), fed by `podman
events`: a warm create runs `podman run` and one look at its container, nothing else — and
changes made behind its back (an impostor container, a CLI destroy, a dead event stream) are
still seen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asbx.client import Client
from tests.integration.conftest import BASE_IMAGE, Project
from tests.integration.test_api_podman import _stop, _wait_up

pytestmark = pytest.mark.integration


@pytest.fixture
def traced(project: Project) -> Iterator[tuple[Client, Path, subprocess.Popen[bytes]]]:
    """A server that logs every runtime command it runs (`-vv`) to a file."""
    project.home.mkdir(parents=True, exist_ok=True)
    log = project.home / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "asbx", "-vv", "serve", "--project", project.name],
            cwd=project.root, env=project.env, stdout=subprocess.DEVNULL, stderr=out)
    _wait_up(str(project.home / "asbx.sock"), proc)
    try:
        with Client(socket=project.home / "asbx.sock") as client:
            yield client, log, proc
    finally:
        _stop(proc)


def _commands(log: Path, since: int) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()[since:]
    return [line[2:] for line in lines if line.startswith("$ podman ")]


def _lines(log: Path) -> int:
    return len(log.read_text(errors="replace").splitlines())


def test_a_warm_create_runs_the_container_and_looks_at_it_nothing_else(
        traced: tuple[Client, Path, subprocess.Popen[bytes]]) -> None:
    client, log, _ = traced
    client.create("first", BASE_IMAGE)  # lists the project once
    for name in ("second", "third"):
        mark = _lines(log)
        assert client.create(name, BASE_IMAGE).state == "running"
        ran = [" ".join(c.split()[:3]) for c in _commands(log, mark)]
        assert ran == ["podman run -d", "podman ps -a"], ran
    assert client.exec("third", ["true"]).exit_code == 0


def test_an_impostor_made_just_before_a_create_is_not_adopted(
        traced: tuple[Client, Path, subprocess.Popen[bytes]], project: Project) -> None:
    """A container made behind the server's back, under the name and labels the next sandbox
    will have, between two creates: the kept listings cannot know it yet, so `podman run`
    meets the name; the container found is not asbx's (no config hash) and is replaced."""
    client, _, _ = traced
    client.create("first", BASE_IMAGE)
    name = f"{project.name}-second"
    made = project.podman("run", "-d", "--stop-timeout", "0", "--name", name, "--label",
                          f"dev.asbx.project={project.name}", "--label",
                          "dev.asbx.address=sandbox.second", BASE_IMAGE, "sleep", "3600")
    assert made.returncode == 0, made.stderr
    impostor = made.stdout.strip()
    info = client.create("second", BASE_IMAGE)
    assert info.state == "running"
    listed = project.podman("inspect", name, "--format", "{{.Id}} {{json .Config.Labels}}")
    container_id, labels = listed.stdout.split(" ", 1)
    assert container_id != impostor
    assert "dev.asbx.hash" in labels, labels
    assert client.exec("second", ["true"]).exit_code == 0


def test_a_cli_destroy_between_requests_is_seen(
        traced: tuple[Client, Path, subprocess.Popen[bytes]], project: Project) -> None:
    """`asbx destroy` of the server's project removes its containers; the server's kept
    listings still hold them (the events come later), but the state serial moved: the next
    request lists again, so a create and a delete plan against what is there."""
    client, _, _ = traced
    client.create("box", BASE_IMAGE)
    spec = project.home / "api" / "sandboxes.yaml"
    destroyed = project.asbx("-f", str(spec), "destroy", "-y")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert client.get("box").state == "missing"
    client.delete("box")
    assert client.create("box", BASE_IMAGE).state == "running"
    assert project.containers() == {f"{project.name}-box": "running"}


def _event_streams(server: subprocess.Popen[bytes]) -> list[int]:
    """Pids of `podman events` processes the server started (its descendants)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent = next((int(line.split()[1]) for line in status.splitlines()
                       if line.startswith("PPid:")), 0)
        if b"events" in argv and any(a.endswith(b"podman") for a in argv) and (
                parent == server.pid):
            found.append(int(entry.name))
    return found


def test_a_killed_event_stream_is_started_again_and_nothing_stale_is_used(
        traced: tuple[Client, Path, subprocess.Popen[bytes]], project: Project) -> None:
    client, log, server = traced
    client.create("first", BASE_IMAGE)
    streams = _event_streams(server)
    assert len(streams) == 1, streams
    os.kill(streams[0], signal.SIGKILL)
    # meanwhile, behind the server's back: the sandbox's container goes away
    project.podman("rm", "-f", "-t", "0", f"{project.name}-first")
    client.delete("first")
    assert project.containers() == {}
    deadline = time.monotonic() + 10
    while not (again := _event_streams(server)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert again
    assert again != streams
    mark = _lines(log)
    client.create("second", BASE_IMAGE)
    client.create("third", BASE_IMAGE)  # kept listings are used again once it runs
    ran = [" ".join(c.split()[:3]) for c in _commands(log, mark)]
    assert ran.count("podman run -d") == 2
    assert ran[-2:] == ["podman run -d", "podman ps -a"], ran
