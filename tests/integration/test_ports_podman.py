"""Published ports on real podman: loopback by default, an explicit address, conflicts, status.

Every connection goes to this machine: 127.0.0.1 and the address of the default-route
interface (found with a UDP socket's route lookup, which sends nothing).
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
sandboxes:
  web:
    image: localhost/asbx/busybox:latest
    network: open
    command: ["httpd", "-f", "-p", "80", "-h", "/workspace"]
    setup:
      - echo hello from the sandbox > /workspace/index.html
    ports: PORTS
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def host_address() -> str:
    """The IPv4 address of the interface the default route uses (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("198.51.100.1", 9))  # TEST-NET-2: only the route is looked up
        return str(probe.getsockname()[0])


def fetch(address: str, port: int, timeout: float = 3.0) -> str:
    """GET / over plain TCP; returns the response, or raises OSError."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("latin-1")


def fetch_soon(address: str, port: int) -> str:
    """The response once the server answers (httpd starts with the container)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return fetch(address, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def unreachable(address: str, port: int) -> bool:
    try:
        fetch(address, port, timeout=2)
    except OSError:
        return True
    return False


def test_published_port_answers_on_loopback_only(project: Project) -> None:
    port = free_port()
    project.write(SPEC.replace("PORTS", f'["{port}:80"]'))
    project.asbx("apply", "-y", check=True)

    assert "hello from the sandbox" in fetch_soon("127.0.0.1", port)
    other = host_address()
    assert other != "127.0.0.1"
    assert unreachable(other, port), f"{other}:{port} must not answer: 127.0.0.1 is the default"

    status = json.loads(project.asbx("status", "--json", check=True).stdout)
    web = next(row for row in status["resources"] if row["address"] == "sandbox.web")
    assert web["ports"] == [f"127.0.0.1:{port}->80/tcp"]
    table = project.asbx("status", check=True).stdout
    assert f"127.0.0.1:{port}->80/tcp" in table


def test_an_explicit_address_is_the_only_one_bound(project: Project) -> None:
    port, other = free_port(), host_address()
    project.write(SPEC.replace("PORTS", f'["{other}:{port}:80"]'))
    project.asbx("apply", "-y", check=True)

    assert "hello from the sandbox" in fetch_soon(other, port)
    assert unreachable("127.0.0.1", port)
    inspect = json.loads(project.podman("inspect", f"{project.name}-web").stdout)[0]
    assert inspect["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": other, "HostPort": str(port)}]}


def test_a_port_conflict_in_the_spec_is_an_error_before_anything_runs(project: Project) -> None:
    port = free_port()
    spec = SPEC.replace("PORTS", f'["{port}:80"]') + (
        "  api:\n"
        "    image: localhost/asbx/busybox:latest\n"
        "    network: open\n"
        f'    ports: ["0.0.0.0:{port}:8080"]\n')
    project.write(spec)
    for command in (("validate",), ("plan",), ("apply", "-y")):
        result = project.asbx(*command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert (f"sandboxes.yaml:15:13: sandboxes.api.ports[0]: host port {port}/tcp is "
                "already published by sandbox web (on 127.0.0.1)") in result.stderr
    assert project.containers() == {}


def test_a_port_taken_on_the_host_fails_that_sandbox_with_the_runtime_reason(
        project: Project) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        project.write(SPEC.replace("PORTS", f'["{port}:80"]'))
        result = project.asbx("apply", "-y")
    assert result.returncode == 1
    assert "address already in use" in (result.stdout + result.stderr).lower()


def test_ports_on_an_allowlist_sandbox_are_refused_at_plan(project: Project) -> None:
    project.write(SPEC.replace("network: open", "network: {allow: [api.github.com]}")
                  .replace("PORTS", f'["{free_port()}:80"]'))
    result = project.asbx("plan")
    assert result.returncode == 1
    assert "ports cannot be published with network: allow" in result.stderr
    assert "forwards published ports to an internal network" in result.stderr

