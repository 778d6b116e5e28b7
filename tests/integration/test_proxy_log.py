"""The egress proxy's request log on podman: bounded against hostile requests, gone on destroy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
sandboxes:
  agent:
    image: localhost/asbx/busybox:latest
    network: {allow: ["10.0.0.0/8"]}
"""
# 300 CONNECTs, each for a host of 30 000 characters, sent from inside the sandbox
FLOOD = (
    'h=$(head -c 30000 /dev/zero | tr "\\0" a); i=0; while [ $i -lt 300 ]; do '
    'printf "CONNECT %s.example:443 HTTP/1.1\\r\\n\\r\\n" "$h" | nc -w 5 "$1" "$2" | head -1; '
    "i=$((i + 1)); done"
)


def _bytes_under(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_hostile_requests_grow_the_log_by_less_than_a_megabyte_and_destroy_removes_it(
        project: Project) -> None:
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    run_dir = project.home / "projects" / project.name / "sandboxes" / "agent" / "proxy"
    state = json.loads((run_dir / "proxy.json").read_text())
    before = _bytes_under(project.home)
    flood = project.podman("exec", f"{project.name}-agent", "sh", "-c", FLOOD, "flood",
                           str(state["host"]), str(state["port"]))
    answers = flood.stdout.splitlines()
    assert len(answers) == 300, flood.stderr
    assert all(a.startswith("HTTP/1.1 403") for a in answers), answers[:3]
    grown = _bytes_under(project.home) - before
    assert grown < 1_000_000, f"ASBX_HOME grew by {grown} bytes"
    lines = (run_dir / "proxy.log").read_text().splitlines()
    assert sum(" denied CONNECT " in line for line in lines) == 300
    assert max(len(line) for line in lines) < 600

    project.asbx("destroy", "-y", check=True)
    assert not run_dir.exists(), sorted(p.name for p in run_dir.iterdir())
