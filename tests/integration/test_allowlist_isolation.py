"""Allowlist isolation at the host on real podman: only the sandbox's own proxy is reachable,
the proxy serves only its sandbox, and proxies/firewall chains never outlive their network.

Every listener is started by the test on this machine; no traffic leaves it.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asbx.network.firewall import chain_name
from asbx.network.manager import is_proxy_process
from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
sandboxes:
  a:
    image: localhost/asbx/busybox:latest
    network: {allow: ["10.0.0.0/8"]}
  b:
    image: localhost/asbx/busybox:latest
    network: {allow: ["10.0.0.0/8"]}
  c:
    image: localhost/asbx/busybox:latest
    network: open
"""

ONE = """
version: 1
name: NAME
sandboxes:
  agent:
    image: localhost/asbx/busybox:latest
    network: {allow: ["10.0.0.0/8"]}
"""


def proxy_state(project: Project, sandbox: str) -> dict[str, object]:
    path = project.home / "projects" / project.name / "sandboxes" / sandbox / "proxy" / "proxy.json"
    state: dict[str, object] = json.loads(Path(path).read_text())
    return state


def sh(project: Project, sandbox: str, script: str) -> str:
    result = project.podman("exec", f"{project.name}-{sandbox}", "sh", "-c", script)
    return result.stdout + result.stderr


def network(project: Project, sandbox: str) -> dict[str, object]:
    out = project.podman("network", "inspect", f"asbx-{project.name}-{sandbox}").stdout
    found: dict[str, object] = json.loads(out)[0]
    return found


def rules(family: str) -> str:
    return subprocess.run([family, "-w", "-S"], capture_output=True, text=True, check=True).stdout


def listener(family: socket.AddressFamily, host: str) -> Iterator[int]:
    """A TCP server answering "hello" on (host, any port), for as long as the generator lives."""
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    server.bind((host, 0))
    server.listen(16)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"hello from the host\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        server.close()


@pytest.fixture
def host_ports() -> Iterator[tuple[int, int]]:
    """Listeners on 0.0.0.0 and [::] (IPv6 only), as a developer's database would be."""
    v4 = listener(socket.AF_INET, "0.0.0.0")
    v6 = listener(socket.AF_INET6, "::")
    yield next(v4), next(v6)
    for gen in (v4, v6):
        gen.close()


def bridge_link_local(interface: str) -> str:
    """The host's IPv6 link-local address on the bridge (waits out duplicate detection)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", interface, "scope", "link"],
                             capture_output=True, text=True, check=False).stdout
        if out and "tentative" not in out:
            return out.split()[3].split("/")[0]
        time.sleep(0.2)
    raise AssertionError(f"{interface} has no usable IPv6 link-local address")


def other_host_address(exclude: str) -> str:
    """A global IPv4 address of this host outside the sandbox's subnet."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=True).stdout
    subnet = ipaddress.ip_network(exclude)
    for line in out.splitlines():
        address = ipaddress.ip_interface(line.split()[3]).ip
        if address not in subnet:
            return str(address)
    raise AssertionError("this host has no other global IPv4 address")


def test_allowlist_sandbox_reaches_its_proxy_and_nothing_else_on_the_host(
    project: Project, host_ports: tuple[int, int]
) -> None:
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    v4, v6 = host_ports
    a, b = proxy_state(project, "a"), proxy_state(project, "b")
    net_a = network(project, "a")
    subnet_a = str(net_a["subnets"][0]["subnet"])  # type: ignore[index]
    link_local = bridge_link_local(str(net_a["network_interface"]))
    pinned = f"{ipaddress.ip_network(subnet_a).network_address + 2}"  # gateway .1, sandbox .2
    assert f"inet {pinned}/" in sh(project, "a", "ip -4 addr show eth0")
    assert f"-s {pinned}/32 -d {a['host']}/32 -p tcp" in rules("iptables")
    other = other_host_address(subnet_a)

    # The listeners work: an open sandbox reaches them through its gateway (the host).
    open_gateway = str(network_gateway(project, "c"))
    assert "hello from the host" in sh(project, "c", f"nc -w 3 {open_gateway} {v4}")

    for target in (f"{a['host']} {v4}", f"{other} {v4}", f"{link_local}%eth0 {v6}"):
        out = sh(project, "a", f"nc -w 3 {target}; echo rc=$?")
        assert "hello" not in out, f"host listener reachable from sandbox a at {target}"
    other_proxy = sh(project, "a", f"printf 'CONNECT x.test:443 HTTP/1.1\\r\\n\\r\\n' "
                                   f"| nc -w 3 {b['host']} {b['port']}")
    assert "HTTP/1.1" not in other_proxy, "sandbox a reached sandbox b's proxy"
    own_proxy = sh(project, "a", f"printf 'CONNECT x.test:443 HTTP/1.1\\r\\n\\r\\n' "
                                 f"| nc -w 5 {a['host']} {a['port']}")
    assert own_proxy.startswith("HTTP/1.1 403"), own_proxy  # reachable, and deciding

    # An open sandbox routes to a's gateway through the host: a's proxy refuses it.
    stranger = sh(project, "c", f"printf 'CONNECT x.test:443 HTTP/1.1\\r\\n\\r\\n' "
                                f"| nc -w 5 {a['host']} {a['port']}")
    assert stranger.startswith("HTTP/1.1 403"), stranger
    assert "this proxy serves another sandbox" in stranger


def network_gateway(project: Project, sandbox: str) -> str:
    out = project.podman("inspect", f"{project.name}-{sandbox}", "--format",
                         "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}").stdout
    return out.strip()


def test_proxy_outliving_its_network_is_reported_and_stopped_and_destroy_leaves_nothing(
    project: Project,
) -> None:
    project.write(ONE)
    project.asbx("apply", "-y", check=True)
    old_pid = int(str(proxy_state(project, "agent")["pid"]))
    chain = chain_name(project.name, "agent")
    assert chain in rules("iptables")
    assert chain in rules("ip6tables")

    project.podman("rm", "-f", "-t", "0", f"{project.name}-agent")
    assert project.podman("network", "rm", f"asbx-{project.name}-agent").returncode == 0
    assert is_proxy_process(old_pid), "the proxy outlives its network (IP_FREEBIND)"

    plan = project.asbx("plan")
    said = plan.stdout + plan.stderr
    assert f"egress proxy of sandbox.agent (pid {old_pid} on " in said, said
    assert f"firewall chain of sandbox.agent ({chain}): its network is gone" in said, said

    project.asbx("apply", "-y", check=True)
    assert not is_proxy_process(old_pid), "the orphaned proxy still runs after apply"
    new_pid = int(str(proxy_state(project, "agent")["pid"]))
    assert is_proxy_process(new_pid)
    interface = str(network(project, "agent")["network_interface"])
    assert f"-A INPUT -i {interface} " in rules("iptables")
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0

    # A jump removed by hand (a firewall reload, another tool) is drift that apply repairs.
    jump = next(line for line in rules("ip6tables").splitlines()
                if line.startswith("-A INPUT") and line.endswith(f"-j {chain}"))
    subprocess.run(["ip6tables", "-w", "-D", "INPUT", "-i", interface, "-m", "comment",
                    "--comment", f"asbx {project.name}/agent", "-j", chain], check=True)
    assert "host firewall rules missing" in project.asbx("status", check=True).stdout
    plan = project.asbx("plan")
    assert "sandbox.agent will be started (host firewall rules missing)" in plan.stdout
    project.asbx("apply", "-y", check=True)
    assert jump in rules("ip6tables")
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0

    project.asbx("destroy", "-y", check=True)
    for family in ("iptables", "ip6tables"):
        listed = rules(family)
        assert chain not in listed, listed
        assert f"asbx {project.name}/" not in listed, listed
    assert not is_proxy_process(new_pid)
    home = str(project.home).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert home not in cmdline.read_bytes(), f"a process of the project remains: {cmdline}"
        except OSError:
            continue


def test_leftovers_unknown_to_state_are_orphans_that_destroy_removes(project: Project) -> None:
    """After a crash that lost everything but the kernel rules and the proxy process, with
    nothing else to do, `plan` still names them and `destroy` removes them."""
    project.write(ONE)
    project.asbx("apply", "-y", check=True)
    pid = int(str(proxy_state(project, "agent")["pid"]))
    chain = chain_name(project.name, "agent")
    project.podman("rm", "-f", "-t", "0", f"{project.name}-agent")
    project.podman("network", "rm", f"asbx-{project.name}-agent")
    for path in project.home.glob("state.db*"):
        path.unlink()
    project.write(ONE.replace("network: {allow: [\"10.0.0.0/8\"]}", "network: deny"))

    plan = project.asbx("plan")
    said = plan.stdout + plan.stderr
    assert "orphaned allowlist networking" in said, said
    assert f"firewall chain of sandbox.agent ({chain}): not an allowlist sandbox" in said, said

    destroyed = project.asbx("destroy", "-y", check=True)
    assert "Removed 2 leftover(s) of allowlist networking." in destroyed.stderr
    assert not is_proxy_process(pid)
    assert chain not in rules("iptables")
    assert chain not in rules("ip6tables")
