"""The secret-injecting proxy against a hostile sandbox: every trick that would carry a secret to
another host, past the Host check, or onto an unparsed request fails (in-process proxy, loopback
HTTPS upstreams from a test CA, a client that trusts the project's CA)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from asbx.network.ca import LeafIssuer, ensure_project_ca
from asbx.network.policy import HostPolicy
from asbx.network.proxy import EgressProxy, ProxyLimits, RequestLog
from asbx.network.secrets import SecretGrant
from tests.tls import Upstream, make_ca, serve_https

VALUE = "ghp_adversarial-real-value-42"
PLACEHOLDER = "asbx-secret-github-0a1b2c3d4e5f"


@dataclass
class Rig:
    port: int
    log_path: Path
    project_ca: Path
    granted: Upstream  # 127.0.0.1: the grant's host
    other: Upstream  # 127.0.0.2: allowed, no grant

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def tunnel(self, upstream: Upstream, *, sni: str | None = None) -> ssl.SSLSocket:
        """CONNECT to `upstream`, then TLS trusting only the project's CA."""
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        raw.sendall(f"CONNECT {upstream.entry} HTTP/1.1\r\nHost: {upstream.entry}\r\n\r\n"
                    .encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += raw.recv(1)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        context = ssl.create_default_context(cafile=str(self.project_ca))
        if sni is not None:
            context.check_hostname = False
        return context.wrap_socket(raw, server_hostname=sni or upstream.ip)

    def send(self, upstream: Upstream, data: bytes, *, sni: str | None = None
             ) -> tuple[int, bytes]:
        """One raw request head (and whatever follows) inside the tunnel; the whole answer."""
        with self.tunnel(upstream, sni=sni) as tls:
            tls.sendall(data)
            answer = b""
            with _suppress_reset():
                while chunk := tls.recv(65536):
                    answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body


class _suppress_reset:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, (ConnectionResetError, ssl.SSLError))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    test_ca = make_ca(tmp_path, "test-ca")
    servers = []
    upstreams = []
    for ip in ("127.0.0.1", "127.0.0.2"):
        upstream, server = serve_https(ip, *test_ca.issue(ip, tmp_path))
        upstreams.append(upstream)
        servers.append(server)
    project_ca = ensure_project_ca(tmp_path / "ca", "adversary")
    started: list[tuple[EgressProxy, threading.Thread, RequestLog]] = []

    def start(grant: SecretGrant | None = None, limits: ProxyLimits | None = None,
              extra: tuple[Upstream, ...] = ()) -> Rig:
        grant = grant or SecretGrant("github", ("127.0.0.1",), VALUE,
                                     header="Authorization: Bearer {}")
        log_path = tmp_path / "proxy.log"
        log = RequestLog.to_file(log_path)
        proxy = EgressProxy(HostPolicy([u.entry for u in (*upstreams, *extra)]),
                            host="127.0.0.1",
                            port=0, log=log, limits=limits, secrets=[grant],
                            issuer=LeafIssuer(project_ca),
                            upstream_tls=ssl.create_default_context(cafile=str(test_ca.path)))
        _, port = proxy.bind()
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        started.append((proxy, thread, log))
        return Rig(port, log_path, project_ca.cert_path, *upstreams)

    def second_port() -> Upstream:
        """Another HTTPS upstream on 127.0.0.1 (another port), same test CA."""
        directory = tmp_path / "second"
        directory.mkdir(exist_ok=True)
        upstream, server = serve_https("127.0.0.1", *test_ca.issue("127.0.0.1", directory))
        servers.append(server)
        return upstream

    start.second_port = second_port  # type: ignore[attr-defined]
    yield start
    for proxy, thread, log in started:
        proxy.stop()
        thread.join(5)
        proxy.close()
        log.close()
    for server in servers:
        server.shutdown()
        server.server_close()


def request(rig: Rig, *lines: str, target: str = "/", method: str = "GET",
            version: str = "HTTP/1.1", body: bytes = b"") -> bytes:
    head = [f"{method} {target} {version}", *lines]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def headers_seen(upstream: Upstream, index: int = 0) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in upstream.seen[index]["headers"]]


def wait_for_log(rig: Rig, text: str) -> str:
    deadline = time.monotonic() + 5
    while text not in (log := rig.log()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return log


# -- the Host the secret goes to


def test_a_second_host_header_is_refused(rig: Callable[..., Rig]) -> None:
    r = rig()
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}", "Host: evil.example",
                                          "Connection: close"))
    assert status in (400, 421)
    assert r.granted.seen == []


def test_a_bare_line_feed_cannot_smuggle_a_header_past_the_host_check(
        rig: Callable[..., Rig]) -> None:
    r = rig()
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}",
                                          "X-Note: a\nHost: evil.example", "Connection: close"))
    assert status == 400
    assert r.granted.seen == []


def test_an_obs_fold_continuation_line_is_refused(rig: Callable[..., Rig]) -> None:
    r = rig()
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}", "X-Note: a",
                                          " evil.example", "Connection: close"))
    assert status == 400
    assert r.granted.seen == []


def test_an_absolute_form_target_naming_another_host_is_refused(
        rig: Callable[..., Rig]) -> None:
    """A server takes the host from an absolute-form target over Host (RFC 9112 3.2.2)."""
    r = rig()
    for target in ("https://evil.example/steal", "http://evil.example/", "evil.example:443"):
        status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}",
                                              "Connection: close", target=target))
        assert status in (400, 421), target
    assert r.granted.seen == []
    # the tunnel's own host in absolute form is still a request to it
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}", "Connection: close",
                                          target=f"https://{r.granted.entry}/ok"))
    assert status == 200
    assert ("authorization", f"Bearer {VALUE}") in headers_seen(r.granted)


def test_a_host_header_with_another_port_of_the_same_host_is_that_host(
        rig: Callable[..., Rig]) -> None:
    r = rig()
    status, _ = r.send(r.granted, request(r, "Host: 127.0.0.1:1", "Connection: close"))
    assert status == 200  # same host: the secret is the host's, whatever port it names
    assert ("authorization", f"Bearer {VALUE}") in headers_seen(r.granted)


def test_sni_naming_another_host_changes_nothing(rig: Callable[..., Rig]) -> None:
    r = rig()
    with r.tunnel(r.granted, sni="evil.example") as tls:
        cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == []  # the leaf is the tunnel's, not the SNI's
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}", "Connection: close"),
                       sni="evil.example")
    assert status == 200
    assert len(r.granted.seen) == 1
    assert r.other.seen == []


# -- what is and is not rewritten


def test_the_placeholder_is_replaced_in_headers_only(rig: Callable[..., Rig]) -> None:
    r = rig(SecretGrant("github", ("127.0.0.1",), VALUE, placeholder=PLACEHOLDER))
    body = f"body {PLACEHOLDER}".encode()
    status, _ = r.send(r.granted, request(
        r, f"Host: {r.granted.entry}", f"X-Token: {PLACEHOLDER}", f"Content-Length: {len(body)}",
        "Connection: close", method="POST", target=f"/p?t={PLACEHOLDER}", body=body))
    assert status == 200
    seen = r.granted.seen[0]
    assert ("x-token", VALUE) in headers_seen(r.granted)
    assert seen["path"] == f"/p?t={PLACEHOLDER}"  # the request line: untouched
    assert seen["body"] == body.decode()  # the body: untouched


def test_a_pipelined_second_request_is_not_served(rig: Callable[..., Rig]) -> None:
    """One request per intercepted tunnel: what follows it is never parsed, never injected,
    and the upstream closes after the first answer (the proxy asked it to)."""
    r = rig()
    first = request(r, f"Host: {r.granted.entry}")
    second = request(r, "Host: evil.example", target="/second")
    status, _ = r.send(r.granted, first + second)
    assert status == 200
    assert [seen["path"] for seen in r.granted.seen] == ["/"]


def test_http_1_0_requests_are_injected_and_closed(rig: Callable[..., Rig]) -> None:
    r = rig()
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}", version="HTTP/1.0"))
    assert status == 200
    assert ("authorization", f"Bearer {VALUE}") in headers_seen(r.granted)


def test_a_client_cannot_strip_the_check_by_naming_host_hop_by_hop(
        rig: Callable[..., Rig]) -> None:
    r = rig()
    status, _ = r.send(r.granted, request(r, "Host: evil.example", "Connection: host"))
    assert status == 421
    assert r.granted.seen == []


# -- limits inside the tunnel


def test_huge_headers_inside_tls_get_431(rig: Callable[..., Rig]) -> None:
    r = rig(limits=ProxyLimits(max_header_bytes=4096))
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}", "X-Big: " + "a" * 8000))
    assert status == 431
    assert r.granted.seen == []


def test_slow_headers_inside_tls_get_408(rig: Callable[..., Rig]) -> None:
    r = rig(limits=ProxyLimits(header_timeout=1.0))
    with r.tunnel(r.granted) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        answer = tls.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("dribble", [False, True])
def test_a_client_that_never_finishes_the_tls_handshake_is_cut_off(
        rig: Callable[..., Rig], dribble: bool) -> None:
    """Silent, or sending its hello a byte at a time: the handshake has one deadline overall."""
    r = rig(limits=ProxyLimits(header_timeout=1.0))
    raw = socket.create_connection(("127.0.0.1", r.port), timeout=10)
    raw.sendall(f"CONNECT {r.granted.entry} HTTP/1.1\r\n\r\n".encode())
    assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 500
    started = time.monotonic()
    closed_after = None
    with raw:
        for byte in hello:
            if dribble:
                with _suppress_reset():
                    raw.sendall(bytes([byte]))
            raw.settimeout(0.3)
            try:
                if raw.recv(4096) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed_after = time.monotonic() - started
                break
            if time.monotonic() - started > 8:
                break
    assert closed_after is not None
    assert closed_after < 4
    assert "TLS with the client failed" in wait_for_log(r, "TLS with the client failed")


def test_the_log_names_the_secret_but_never_holds_a_value(rig: Callable[..., Rig]) -> None:
    r = rig(SecretGrant("github", ("127.0.0.1",), VALUE, placeholder=PLACEHOLDER))
    r.send(r.granted, request(r, f"Host: {r.granted.entry}", f"X-Token: {PLACEHOLDER}",
                              "Connection: close", target=f"/{PLACEHOLDER}"))
    r.send(r.granted, request(r, "Host: evil.example", f"X-Token: {PLACEHOLDER}"))
    log = wait_for_log(r, "status=421")
    assert "secret=github" in log
    assert VALUE not in log
    assert json.dumps(VALUE)[1:-1] not in log


# -- what the proxy does not understand, it does not pass on


def test_an_http2_preface_inside_the_tunnel_is_refused(rig: Callable[..., Rig]) -> None:
    """The leaf offers only http/1.1; a client that speaks h2 anyway is not relayed unparsed."""
    r = rig()
    status, _ = r.send(r.granted, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert status == 400
    assert r.granted.seen == []


def test_bytes_sent_with_the_connect_are_refused_not_relayed(rig: Callable[..., Rig]) -> None:
    """A client that does not wait for the 200 would have its first bytes skip the TLS the
    proxy terminates: refused (clients that wait, as curl and Python do, are served)."""
    r = rig()
    with socket.create_connection(("127.0.0.1", r.port), timeout=10) as raw:
        raw.sendall(f"CONNECT {r.granted.entry} HTTP/1.1\r\n\r\n".encode()
                    + request(r, f"Host: {r.granted.entry}"))
        answer = b""
        with _suppress_reset():
            while chunk := raw.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert r.granted.seen == []


def test_a_broken_tls_record_mid_tunnel_ends_that_tunnel_only(rig: Callable[..., Rig]) -> None:
    r = rig()
    tls = r.tunnel(r.granted)
    head = request(r, f"Host: {r.granted.entry}", "Content-Length: 100000", method="POST")
    tls.sendall(head)
    raw = socket.socket(fileno=tls.fileno())  # the same connection, beneath the TLS layer
    with _suppress_reset():
        raw.sendall(b"\x17\x03\x03\x00\x10" + b"\xff" * 16)  # an application record, forged
    raw.detach()
    with _suppress_reset():
        while tls.recv(65536):
            pass
    tls.close()
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}", "Connection: close"))
    assert status == 200  # the proxy serves on


def test_spellings_of_a_name_share_one_leaf(tmp_path: Path) -> None:
    issuer = LeafIssuer(ensure_project_ca(tmp_path / "ca", "adversary"))
    first = issuer.context("api.example.com")
    assert issuer.context("API.Example.COM") is first
    assert issuer.context("aPi.eXample.com") is first


def test_expect_100_continue_is_relayed_and_injected(rig: Callable[..., Rig]) -> None:
    r = rig()
    body = b"payload"
    with r.tunnel(r.granted) as tls:
        tls.sendall(request(r, f"Host: {r.granted.entry}", "Expect: 100-continue",
                            f"Content-Length: {len(body)}", method="POST"))
        interim = tls.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100")
        tls.sendall(body)
        answer = b""
        with _suppress_reset():
            while chunk := tls.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert r.granted.seen[0]["body"] == "payload"
    assert ("authorization", f"Bearer {VALUE}") in headers_seen(r.granted)


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\nHost: evil.example\r\nHost: {entry}\r\n\r\n",  # LF-only request line end
    b"GET / HTTP/1.1\nHost:evil.example\r\nHost: {entry}\r\n\r\n",
    b"GET /\nHost:evil.example HTTP/1.1\r\nHost: {entry}\r\n\r\n",  # LF inside the target
    b"GET / HTTP/1.1\r\nHost: {entry}\rHost: evil.example\r\n\r\n",  # a bare CR
    b"GET / HTTP/1.1\r\nHost: {entry}\x00evil.example\r\n\r\n",  # NUL
    b"GET / HTTP/1.1\r\nHost : evil.example\r\nHost: {entry}\r\n\r\n",  # space before colon
    b"GET / HTTP/1.1\r\nhOsT: {entry}\r\nHOST: evil.example\r\n\r\n",  # case
    b"GET / HTTP/1.1\r\nHost:\r\n\r\n",  # empty
    b"GET / HTTP/1.1\r\nX: y\r\n\r\n",  # none
    b"GET //evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
])
def test_smuggled_heads_never_reach_the_upstream(rig: Callable[..., Rig], raw: bytes) -> None:
    r = rig()
    status, _ = r.send(r.granted, raw.replace(b"{entry}", r.granted.entry.encode()))
    assert status in (400, 421)
    assert r.granted.seen == []


def test_an_intercepted_request_is_not_held_back_by_delayed_acks(
        rig: Callable[..., Rig]) -> None:
    """Small TLS records relayed without TCP_NODELAY waited ~40 ms each for the peer's delayed
    ACK (21 requests/s one at a time, 177/s with it): the fastest of five stays well below."""
    r = rig()
    times = []
    for _ in range(5):
        with r.tunnel(r.granted) as tls:
            started = time.monotonic()
            tls.sendall(request(r, f"Host: {r.granted.entry}", "Connection: close"))
            with _suppress_reset():
                while tls.recv(65536):
                    pass
            times.append(time.monotonic() - started)
    assert min(times) < 0.03, times


def test_a_secret_follows_its_host_to_another_allowed_port(rig: Callable[..., Rig]) -> None:
    """Grants name hosts, not ports: the same host on another port the allowlist allows gets
    the secret too (its certificate verified for that host all the same)."""
    second = rig.second_port()  # type: ignore[attr-defined]
    r = rig(extra=(second,))
    status, _ = r.send(second, request(r, f"Host: {second.entry}", "Connection: close"))
    assert status == 200
    assert ("authorization", f"Bearer {VALUE}") in headers_seen(second)


def test_a_chunked_body_is_relayed_intact_and_never_rewritten(rig: Callable[..., Rig]) -> None:
    r = rig(SecretGrant("github", ("127.0.0.1",), VALUE, placeholder=PLACEHOLDER))
    parts = [b"a" * 70_000, PLACEHOLDER.encode(), b"\r\n0\r\n\r\n", b"end"]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
    status, _ = r.send(r.granted, request(r, f"Host: {r.granted.entry}", f"X-T: {PLACEHOLDER}",
                                          "Transfer-Encoding: chunked", method="POST",
                                          body=chunked))
    assert status == 200
    assert r.granted.seen[0]["body"] == b"".join(parts).decode()
    assert ("x-t", VALUE) in headers_seen(r.granted)
