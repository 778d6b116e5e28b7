"""Allowlist networking through apply on real podman: proxy env, decisions, recovery, cleanup.

Only local addresses are used: the "upstream" is an HTTP server on the sandbox network's
gateway address, allowed through a CIDR entry covering podman's internal networks on the port
the upstream listens on (an entry without a port allows only 80 and 443).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asbx.network.manager import is_proxy_process
from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
sandboxes:
  agent:
    image: localhost/asbx/busybox:latest
    network: {allow: ["10.0.0.0/8:PORT"]}
"""


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from upstream\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def proxy_state(project: Project) -> dict[str, object]:
    path = project.home / "projects" / project.name / "sandboxes" / "agent" / "proxy" / "proxy.json"
    state: dict[str, object] = json.loads(Path(path).read_text())
    return state


def free_port() -> int:
    """A port free on every address a moment ago (the upstream binds it later)."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def sandbox_sh(project: Project, script: str) -> str:
    return project.podman("exec", f"{project.name}-agent", "sh", "-c", script).stdout


def test_allowlisted_sandbox_reaches_only_listed_hosts_through_its_proxy(project: Project) -> None:
    upstream = free_port()
    project.write(SPEC.replace("PORT", str(upstream)))
    project.asbx("apply", "-y", check=True)
    state = proxy_state(project)
    gateway, port = str(state["host"]), int(str(state["port"]))
    inspect = json.loads(project.podman("network", "inspect", f"asbx-{project.name}-agent").stdout)
    assert inspect[0]["internal"] is True
    assert inspect[0]["dns_enabled"] is False, "podman's DNS would forward names: a way out"
    env = sandbox_sh(project, "env")
    assert f"HTTP_PROXY=http://{gateway}:{port}" in env
    server = ThreadingHTTPServer((gateway, upstream), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        allowed = sandbox_sh(
            project,
            f"printf 'GET http://{gateway}:{upstream}/ HTTP/1.0\\r\\n\\r\\n'"
            f" | nc -w 5 {gateway} {port}",
        )
        assert "hello from upstream" in allowed
        denied = sandbox_sh(
            project,
            f"printf 'CONNECT not-listed.test:443 HTTP/1.1\\r\\n\\r\\n'"
            f" | nc -w 5 {gateway} {port} | head -1",
        )
        assert denied.startswith("HTTP/1.1 403")
        resolvers = [
            line.split()[1]
            for line in sandbox_sh(project, "cat /etc/resolv.conf").splitlines()
            if line.startswith("nameserver")
        ]
        assert resolvers == [], "names must only be resolved by the proxy"
    finally:
        server.shutdown()
        server.server_close()
    proxy_pid = int(str(state["pid"]))
    os.kill(proxy_pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while is_proxy_process(proxy_pid):  # it exits within about 2 s of SIGTERM
        assert time.monotonic() < deadline, "the egress proxy did not stop on SIGTERM"
        time.sleep(0.1)
    plan = project.asbx("plan")
    assert "sandbox.agent will be started (egress proxy not running)" in plan.stdout
    project.asbx("apply", "-y", check=True)
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0
    project.asbx("destroy", "-y", check=True)
    networks = project.podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"asbx-{project.name}-agent" not in networks
    assert not (
        project.home / "projects" / project.name / "sandboxes" / "agent" / "proxy" / "proxy.json"
    ).exists()
