"""Secrets put in by a real proxy process: only into TLS requests to their hosts, verified
upstream, never written anywhere (tests own a test CA, HTTPS upstreams on loopback, the proxy)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from asbx.network.ca import CertificateError, ProjectCA, ensure_project_ca
from asbx.network.manager import LOG_FILE, ProxyHandle, ensure_proxy, stop_proxy
from asbx.network.secrets import SecretGrant, apply_grants
from tests.tls import Authority, Upstream, make_ca, serve_https

VALUE = "ghp_the-real-token-0123456789"
PLACEHOLDER = "asbx-secret-github-5f2d8c0e9b1a4c3d"


@dataclass
class World:
    run_dir: Path
    project_ca: ProjectCA
    trusted: Upstream  # 127.0.0.1, certificate from the test CA the proxy trusts
    other: Upstream  # 127.0.0.2, same test CA, no secret granted to it
    untrusted: Upstream  # 127.0.0.3, certificate from a CA nobody trusts
    runner: Any

    def grant(self, value: str = VALUE, **kind: str) -> SecretGrant:
        hosts = (self.trusted.ip, self.untrusted.ip)
        kind = kind or {"header": "Authorization: Bearer {}"}
        return SecretGrant("github", hosts, value, **kind)

    def start(self, *grants: SecretGrant) -> ProxyHandle:
        allow = [u.entry for u in (self.trusted, self.other, self.untrusted)]
        return ensure_proxy(self.run_dir, "127.0.0.1", allow, runner=self.runner,
                            secrets=grants, ca=self.project_ca)


@pytest.fixture
def world(tmp_path: Path, runner: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    test_ca = make_ca(tmp_path, "test-ca")
    rogue_ca = make_ca(tmp_path, "rogue-ca")
    servers = []
    upstreams = []
    for ip, ca in (("127.0.0.1", test_ca), ("127.0.0.2", test_ca), ("127.0.0.3", rogue_ca)):
        upstream, server = serve_https(ip, *ca.issue(ip, tmp_path))
        upstreams.append(upstream)
        servers.append(server)
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.path))  # the proxy's trust store
    world = World(tmp_path / "run", ensure_project_ca(tmp_path / "home" / "ca", "proj"),
                  *upstreams, runner=runner)
    world.test_ca = test_ca  # type: ignore[attr-defined]
    yield world
    stop_proxy(world.run_dir)
    for server in servers:
        server.shutdown()
        server.server_close()


def https_via(handle: ProxyHandle, upstream: Upstream, headers: dict[str, str], *,
              trust: Path, method: str = "GET", body: bytes = b"",
              host_header: str | None = None) -> tuple[int, bytes, x509.Certificate]:
    """One HTTPS request through the proxy (CONNECT, then TLS trusting only `trust`)."""
    raw = socket.create_connection((handle.host, handle.port), timeout=10)
    raw.sendall(f"CONNECT {upstream.entry} HTTP/1.1\r\nHost: {upstream.entry}\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += raw.recv(1)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    context = ssl.create_default_context(cafile=str(trust))
    with context.wrap_socket(raw, server_hostname=upstream.ip) as tls:
        peer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
        lines = [f"{method} /path?q=1 HTTP/1.1", f"Host: {host_header or upstream.entry}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), payload, peer


def log_line(path: Path, marker: str, timeout: float = 10.0) -> str:
    """The proxy's log once a line with `marker` is in it: a request's line is written after
    the proxy has closed both of its ends, which can be just after the client read the end."""
    deadline = time.monotonic() + timeout
    while marker not in (text := path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return text


def received(payload: bytes) -> dict[str, str]:
    return {k.lower(): v for k, v in json.loads(payload)["headers"]}


# -- the proxy


def test_a_header_grant_reaches_its_host_only_through_verified_tls(world: World) -> None:
    handle = world.start(world.grant())
    status, payload, cert = https_via(handle, world.trusted, {"Authorization": "Bearer fake"},
                                      trust=world.project_ca.cert_path)
    assert status == 200
    assert received(payload)["authorization"] == f"Bearer {VALUE}"  # set, replacing the fake
    assert cert.issuer == x509.load_pem_x509_certificate(world.project_ca.cert_pem()).subject
    assert "secret=github" in log_line(world.run_dir / LOG_FILE, "secret=")


def test_a_placeholder_is_replaced_for_its_host_and_left_for_others(world: World) -> None:
    handle = world.start(world.grant(placeholder=PLACEHOLDER))
    status, payload, _ = https_via(handle, world.trusted, {"X-Token": f"token {PLACEHOLDER}"},
                                   trust=world.project_ca.cert_path)
    assert status == 200
    assert received(payload)["x-token"] == f"token {VALUE}"
    # an allowed host without the grant: a plain tunnel, the upstream's own certificate,
    # and the placeholder arrives as the sandbox sent it
    test_ca: Authority = world.test_ca  # type: ignore[attr-defined]
    status, payload, cert = https_via(handle, world.other, {"X-Token": PLACEHOLDER},
                                      trust=test_ca.path)
    assert status == 200
    assert received(payload)["x-token"] == PLACEHOLDER
    assert cert.issuer == test_ca.cert.subject


def test_an_upstream_whose_certificate_does_not_verify_gets_no_secret(world: World) -> None:
    handle = world.start(world.grant())
    status, payload, _ = https_via(handle, world.untrusted, {}, trust=world.project_ca.cert_path)
    assert status == 502
    assert b"does not verify" in payload
    assert world.untrusted.seen == []  # the request never left


def test_a_request_naming_another_host_inside_the_tunnel_is_refused(world: World) -> None:
    handle = world.start(world.grant())
    status, _payload, _ = https_via(handle, world.trusted, {}, trust=world.project_ca.cert_path,
                                   host_header="evil.example")
    assert status == 421
    assert world.trusted.seen == []


def test_bodies_are_relayed_intact(world: World) -> None:
    handle = world.start(world.grant())
    body = b"x" * 200_000 + b"end"
    status, payload, _ = https_via(handle, world.trusted, {"Content-Type": "text/plain"},
                                   trust=world.project_ca.cert_path, method="POST", body=body)
    assert status == 200
    assert json.loads(payload)["body"] == body.decode()


def test_plain_http_to_a_granted_host_carries_no_secret(world: World, tmp_path: Path) -> None:
    handle = world.start(world.grant(placeholder=PLACEHOLDER))
    with socket.create_connection((handle.host, handle.port), timeout=10) as sock:
        sock.sendall(f"GET http://{world.trusted.entry}/x HTTP/1.1\r\nHost: "
                     f"{world.trusted.entry}\r\nX-Token: {PLACEHOLDER}\r\n\r\n".encode())
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
    # the upstream speaks TLS only, so nothing useful came back; what matters is the log
    log = log_line(world.run_dir / LOG_FILE, "withheld=")
    assert "withheld=github (plain http: secrets go into https only)" in log
    assert "secret=github" not in log


def test_the_value_is_written_nowhere(world: World) -> None:
    handle = world.start(world.grant(placeholder=PLACEHOLDER))
    https_via(handle, world.trusted, {"X-Token": PLACEHOLDER}, trust=world.project_ca.cert_path)
    # wait for the request's log line, so the value check below covers it too
    assert "secret=github" in log_line(world.run_dir / LOG_FILE, "secret=")
    for path in world.run_dir.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path
    assert VALUE.encode() not in Path(f"/proc/{handle.pid}/cmdline").read_bytes()
    assert VALUE.encode() not in Path(f"/proc/{handle.pid}/environ").read_bytes()
    policy = json.loads((world.run_dir / "policy.json").read_text())
    assert policy["secrets"][0]["fingerprint"].startswith("hmac-sha256:")
    assert oct((world.run_dir / "secret-key").stat().st_mode & 0o777) == "0o600"


def test_same_grants_reuse_the_proxy_and_a_rotated_value_restarts_it(world: World) -> None:
    first = world.start(world.grant())
    assert world.start(world.grant()).pid == first.pid
    rotated = world.start(world.grant("ghp_rotated-value"))
    assert rotated.pid != first.pid
    assert rotated.port == first.port  # the URL baked into the sandbox stays right
    _, payload, _ = https_via(rotated, world.trusted, {}, trust=world.project_ca.cert_path)
    assert received(payload)["authorization"] == "Bearer ghp_rotated-value"
    assert world.start().pid != rotated.pid  # grants withdrawn: restarted without them
    status, _, _cert = https_via(world.start(), world.trusted, {},
                                trust=world.test_ca.path)  # type: ignore[attr-defined]
    assert status == 200  # a plain tunnel again: the upstream's own certificate


def test_a_grant_for_a_host_the_allowlist_refuses_stops_the_proxy_from_starting(
        world: World) -> None:
    grant = SecretGrant("github", ("api.github.com",), VALUE, header="Authorization: {}")
    with pytest.raises(Exception, match="does not allow") as err:
        world.start(grant)
    assert VALUE not in str(err.value)


# -- the CA and the grants


def test_the_project_ca_key_is_private_and_reused(tmp_path: Path) -> None:
    ca = ensure_project_ca(tmp_path / "ca", "proj")
    assert oct(ca.key_path.stat().st_mode & 0o777) == "0o600"
    assert oct(ca.key_path.parent.stat().st_mode & 0o777) == "0o700"
    assert ensure_project_ca(tmp_path / "ca", "proj").cert_pem() == ca.cert_pem()
    os.chmod(ca.key_path, 0o640)
    with pytest.raises(CertificateError, match="can be read by others"):
        ensure_project_ca(tmp_path / "ca", "proj")


def test_grants_set_headers_and_replace_placeholders_in_header_values_only() -> None:
    header = SecretGrant("a", ("h",), "V1", header="Authorization: token {}")
    placeholder = SecretGrant("b", ("h",), "V2", placeholder="PH")
    headers, used = apply_grants(
        [("authorization", "old"), ("X-A", "x PH y"), ("Accept", "*/*")], [header, placeholder])
    assert headers == [("X-A", "x V2 y"), ("Accept", "*/*"), ("Authorization", "token V1")]
    assert used == ["a", "b"]
    assert apply_grants([("Accept", "*/*")], [placeholder]) == ([("Accept", "*/*")], [])


@pytest.mark.parametrize("bad", [
    {"header": "Authorization Bearer {}"},  # no colon
    {"header": "Authorization: Bearer"},  # no {}
    {"header": "X: {} {}"},  # twice
    {"header": "X: {}", "placeholder": "P"},  # both
    {},  # neither
])
def test_a_malformed_grant_is_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        SecretGrant("a", ("h",), "v", **bad)
    with pytest.raises(ValueError, match="line break"):
        SecretGrant("a", ("h",), "v\r\nX-Injected: 1", header="A: {}")
