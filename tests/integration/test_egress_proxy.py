"""A real sandbox on a podman --internal network whose only way out is the asbx egress proxy.

Everything stays on this machine: the "upstreams" are HTTP servers on the host (on the internal
network's gateway address and on 127.0.0.1), and the "outside" is a container on a second
podman network. Real sandboxes must not rely on host-local upstreams: anything bound to the
gateway (or 0.0.0.0) is reachable from the sandbox directly, as the last check shows.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from asbx.network.manager import LOG_FILE, ensure_proxy, proxy_env, stop_proxy
from asbx.runtime.command import SubprocessRunner

pytestmark = pytest.mark.integration

IMAGE = "localhost/asbx/busybox:latest"


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        body = f"hello from upstream {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Lab:
    """What the test built: networks, containers, servers; torn down in reverse."""

    env: dict[str, str]
    label: str
    run_dir: Path
    servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {done.stderr}")
        return done

    def network(self, name: str, *extra: str) -> dict[str, Any]:
        """Create an internal network; return what `network inspect` says of it."""
        self.podman("network", "create", "--internal", *extra, "--label", self.label, name)
        inspected: dict[str, Any] = json.loads(self.podman("network", "inspect", name).stdout)[0]
        return inspected

    def egress_network(self, name: str) -> str:
        """An internal network without aardvark-dns, which would forward any name to the
        host's resolver (a DNS tunnel out). Without DNS, podman 4.3 gives an internal network
        no gateway unless subnet and gateway are explicit: let podman pick them first."""
        picked = self.network(name)["subnets"][0]
        self.podman("network", "rm", name)
        made = self.network(name, "--disable-dns", "--subnet", picked["subnet"],
                            "--gateway", picked["gateway"])
        assert made["dns_enabled"] is False
        return str(made["subnets"][0]["gateway"])

    def serve(self, host: str) -> tuple[ThreadingHTTPServer, int]:
        server = ThreadingHTTPServer((host, 0), _Hello)
        server.paths = []  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.servers.append(server)
        return server, server.server_address[1]

    def sh(self, container: str, script: str) -> subprocess.CompletedProcess[str]:
        return self.podman("exec", container, "sh", "-c", script, check=False)

    def cleanup(self) -> None:
        ids = self.podman("ps", "-aq", "--filter", f"label={self.label}", check=False).stdout
        if ids.split():
            self.podman("rm", "-f", "-t", "0", *ids.split(), check=False)
        nets = self.podman("network", "ls", "-q", "--filter", f"label={self.label}",
                           check=False).stdout
        if nets.split():
            self.podman("network", "rm", "-f", *nets.split(), check=False)
        stop_proxy(self.run_dir)
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def lab(podman: dict[str, str], tmp_path: Path) -> Iterator[Lab]:
    built = Lab(podman, f"dev.asbx.test=egress-{uuid.uuid4().hex[:10]}", tmp_path / "proxy")
    try:
        yield built
    finally:
        built.cleanup()


def via_proxy(gateway: str, proxy_port: int, request: str) -> str:
    payload = request.replace("\n", "\\r\\n")
    return f"printf '{payload}' | nc -w 5 {gateway} {proxy_port}"


def test_sandbox_gets_out_only_through_its_proxy(lab: Lab) -> None:
    tag = lab.label.rsplit("-", 1)[1]
    gateway = lab.egress_network(f"asbx-egress-{tag}")
    lab.network(f"asbx-outside-{tag}")
    # The proxy starts before any container: the gateway address does not exist on the host yet.
    handle = ensure_proxy(lab.run_dir, gateway, [gateway, "localhost"], runner=SubprocessRunner())
    env_flags = [flag for item in proxy_env(handle).items() for flag in ("-e", "=".join(item))]
    sandbox = f"asbx-egress-sandbox-{tag}"
    lab.podman("run", "-d", "--name", sandbox, "--label", lab.label, "--network",
               f"asbx-egress-{tag}", "--dns", "none", "--init", *env_flags, IMAGE, "sleep", "300")
    outside = f"asbx-egress-outside-{tag}"
    lab.podman("run", "-d", "--name", outside, "--label", lab.label, "--network",
               f"asbx-outside-{tag}", "--init", IMAGE, "httpd", "-f", "-p", "8080")
    outside_ip = json.loads(lab.podman("inspect", outside).stdout)[0]["NetworkSettings"][
        "Networks"][f"asbx-outside-{tag}"]["IPAddress"]
    listed, listed_port = lab.serve(gateway)  # the bridge exists now that the sandbox runs
    unlisted, unlisted_port = lab.serve("127.0.0.1")
    # An entry without a port allows 80 and 443 only: list the upstreams' ports (the list
    # changes, so the proxy restarts on the same port and the sandbox's URL stays right).
    handle = ensure_proxy(lab.run_dir, gateway, [f"{gateway}:{listed_port}",
                                                 f"localhost:{unlisted_port}"],
                          runner=SubprocessRunner())

    assert lab.sh(sandbox, "echo $HTTPS_PROXY").stdout.strip() == handle.url
    assert "nameserver" not in lab.sh(sandbox, "cat /etc/resolv.conf").stdout
    assert not _dns_answers(gateway)  # and nothing to ask on the gateway either

    got = lab.sh(sandbox, via_proxy(gateway, handle.port,
                                    f"GET http://{gateway}:{listed_port}/plain HTTP/1.0\n\n"))
    assert got.stdout.startswith("HTTP/1.0 200"), got
    assert got.stdout.endswith("hello from upstream /plain\n")

    got = lab.sh(sandbox, via_proxy(gateway, handle.port,
                                    f"CONNECT {gateway}:{listed_port} HTTP/1.1\n\n"
                                    "GET /tunnel HTTP/1.0\n\n"))
    assert got.stdout.startswith("HTTP/1.1 200 Connection established"), got
    assert got.stdout.endswith("hello from upstream /tunnel\n")
    assert listed.paths == ["/plain", "/tunnel"]  # type: ignore[attr-defined]

    for target, reason in ((f"127.0.0.1:{unlisted_port}", "127.0.0.1 is a private"),
                           (f"localhost:{unlisted_port}", "127.0.0.1 is a private"),
                           ("exfil.example.com:443", "not in this sandbox's allowlist")):
        got = lab.sh(sandbox, via_proxy(gateway, handle.port, f"CONNECT {target} HTTP/1.1\n\n"))
        assert got.stdout.startswith("HTTP/1.1 403 Forbidden"), (target, got)
        assert reason in got.stdout
    assert unlisted.paths == []  # type: ignore[attr-defined]

    # No route out: a live server on another network is unreachable without the proxy ...
    with socket.create_connection((outside_ip, 8080), timeout=5):
        pass  # (it is up: the host reaches it)
    direct = lab.sh(sandbox, f"nc -w 3 {outside_ip} 8080 </dev/null")
    assert direct.returncode != 0
    assert "unreachable" in direct.stderr.lower(), direct
    # ... but the gateway itself is reachable: host services bound there (or to 0.0.0.0) are
    # exposed to the sandbox, so real upstreams must never be host-local (docs/network.md).
    direct = lab.sh(sandbox, f"printf 'GET /direct HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gateway} "
                             f"{listed_port}")
    assert direct.stdout.startswith("HTTP/1.0 200"), direct

    log = (lab.run_dir / LOG_FILE).read_text()
    assert f" allowed CONNECT {gateway}:{listed_port} " in log
    assert " denied CONNECT localhost:" in log
    assert " denied CONNECT exfil.example.com:443 " in log


def _dns_answers(server: str) -> bool:
    """Does anything answer a DNS query on server:53? (Asked from the host: same listener.)"""
    query = bytes.fromhex("12340100000100000000000005617362787807657861" "6d706c6500" "00010001")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        try:
            sock.sendto(query, (server, 53))
            sock.recvfrom(512)
        except OSError:  # refused (nothing listens) or timed out
            return False
    return True
